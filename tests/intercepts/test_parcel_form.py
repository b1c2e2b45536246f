"""A parcel belongs to the shop that shipped it: recorded once with a waybill no other parcel has,
by shipping its order under the platform's rules (the receiver is the order's, never typed), its
value taken from its order lines, and fixed afterwards except through a recorded correction."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.eligibility import intercept_eligibility
from intercepts.models import (
    InterceptRequest,
    Order,
    Parcel,
    ParcelCorrection,
    Shipment,
    TrackingEvent,
)
from tests.factories import OrderLineFactory, ParcelFactory

ADD = "admin:intercepts_parcel_add"
RECEIVER = {
    "receiver_name": "张三",
    "receiver_phone": "13812341234",
    "receiver_address": "上海市浦东新区幸福路1号",
}


@pytest.fixture(autouse=True)
def _orders_with_receivers(world):
    """The platform sends an order with its receiver; shipping refuses an order without one."""
    Order.objects.filter(pk__in=[world.after_sale_a.order_id, world.after_sale_b.order_id]).update(
        **RECEIVER
    )


def _form(world, **overrides):
    order = world.after_sale_a.order
    data = {
        "order": order.pk,
        "courier": Courier.objects.get(code="ZTO").pk,
        "waybill_no": "73123456789012",
    }
    data.update(overrides)
    return data


def _errors(response) -> str:
    form = response.context["form"]
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _change_url(parcel) -> str:
    return reverse("admin:intercepts_parcel_change", args=[parcel.pk])


def _correct_url(parcel) -> str:
    return reverse("admin:intercepts_parcel_correct_waybill", args=[parcel.pk])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"waybill_no": "YT0000000000000"}, "运单号和物流公司不匹配"),
        ({"waybill_no": "73-1234"}, "运单号和物流公司不匹配"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_nothing_saved(world, login, overrides, message):
    before = Parcel.objects.count()
    response = login(world.agent).post(reverse(ADD), _form(world, **overrides))
    assert response.status_code == 200
    assert message in _errors(response)
    assert Parcel.objects.count() == before


def test_another_shops_order_is_not_a_choice(world, login):
    before = Parcel.objects.count()
    data = _form(world, order=world.after_sale_b.order.pk)
    response = login(world.agent).post(reverse(ADD), data)
    assert response.status_code == 200
    assert "order" in response.context["form"].errors
    assert Parcel.objects.count() == before


def test_valid_parcel_is_saved_with_the_orders_shop_and_lines(world, login):
    # The order's first line went out in parcel_a; this parcel carries the one added since.
    line = OrderLineFactory(order=world.after_sale_a.order)
    response = login(world.agent).post(reverse(ADD), _form(world, waybill_no="73123456789012 "))
    assert response.status_code == 302, _errors(response)
    parcel = Parcel.objects.get(waybill_no="73123456789012")
    assert parcel.shop_id == world.shop_a.pk
    assert list(parcel.lines.values_list("pk", flat=True)) == [line.pk]


def test_recording_a_parcel_ships_the_order_to_its_own_receiver(world, login):
    """A receiver typed into the form (as the old form took) is not the parcel's: the
    platform's order names it, and the shipment is the workbench's, counted by the rules."""
    OrderLineFactory(order=world.after_sale_a.order)
    typed = {"receiver_name": "李四", "receiver_phone": "13900000000", "receiver_address": "别处"}
    response = login(world.agent).post(reverse(ADD), _form(world, **typed))
    assert response.status_code == 302, _errors(response)
    parcel = Parcel.objects.get(waybill_no="73123456789012")
    received = (parcel.receiver_name, parcel.receiver_phone, parcel.receiver_address)
    assert received == tuple(RECEIVER.values())
    shipment = Shipment.objects.get(parcel=parcel)
    assert (shipment.order_id, shipment.channel) == (
        world.after_sale_a.order_id,
        Shipment.Channel.WORKBENCH,
    )


def test_add_form_has_no_receiver_fields(world, login):
    response = login(world.agent).get(reverse(ADD))
    assert list(response.context["form"].fields) == ["order", "courier", "waybill_no"]


def test_declared_value_comes_from_the_order_lines_not_from_the_form(world, login):
    order = world.after_sale_a.order
    OrderLineFactory(order=order, goods_name="羊绒大衣", unit_price_fen=319_800)
    data = _form(world, declared_value_fen="10.00")
    response = login(world.agent).post(reverse(ADD), data)
    assert response.status_code == 302, _errors(response)
    parcel = Parcel.objects.get(waybill_no="73123456789012")
    assert parcel.declared_value_fen == 319_800
    # The under-1,000-yuan rule reads the goods' value, not the typed one.
    results = intercept_eligibility(after_sale=world.after_sale_a, parcel=parcel, action="return")
    [value_cap] = [result for result in results if result.code == "value_cap"]
    assert value_cap.passed is False


@pytest.mark.parametrize("typed", ["{}", "{} ", "{}".lower()])
def test_other_shops_waybill_is_refused(world, login, typed):
    taken = world.parcel_b.waybill_no
    before = Parcel.objects.count()
    data = _form(world, courier=world.parcel_b.courier_id, waybill_no=typed.format(taken))
    response = login(world.agent).post(reverse(ADD), data)
    assert response.status_code == 200
    assert "该运单号已登记在一个包裹上" in _errors(response)
    assert Parcel.objects.count() == before
    assert list(Parcel.objects.filter(waybill_no=taken).values_list("shop_id", flat=True)) == [
        world.shop_b.pk
    ]


def test_database_refuses_a_second_parcel_with_the_same_waybill(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        ParcelFactory(
            order__shop=world.shop_a,
            courier=world.parcel_b.courier,
            waybill_no=world.parcel_b.waybill_no,
        )


def test_database_refuses_a_waybill_stored_in_lower_case(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        ParcelFactory(order__shop=world.shop_a, waybill_no="jt0000000000001")


@pytest.mark.parametrize("who", ["owner", "agent"])
def test_merchant_cannot_change_courier_waybill_or_goods_after_shipping(world, login, who):
    parcel = world.parcel_a
    before = (parcel.courier_id, parcel.waybill_no, list(parcel.lines.all()))
    extra = OrderLineFactory(order=parcel.order)
    data = _form(
        world,
        courier=Courier.objects.get(code="YTO").pk,
        waybill_no=world.parcel_b.waybill_no,
        lines=[extra.pk],
    )
    response = login(world.user(who)).post(_change_url(parcel), data)
    assert response.status_code == 403
    parcel.refresh_from_db()
    assert (parcel.courier_id, parcel.waybill_no, list(parcel.lines.all())) == before


def test_shipped_parcel_page_has_nothing_to_edit(world, login):
    response = login(world.owner).get(_change_url(world.parcel_a))
    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    assert _correct_url(world.parcel_a) in response.content.decode()


def test_waybill_correction_is_recorded_and_tracking_restarts(
    world, login, django_capture_on_commit_callbacks
):
    parcel = world.parcel_a
    old = parcel.waybill_no
    TrackingEvent.objects.create(
        parcel=parcel, occurred_at=parcel.created_at, raw_code="0", stage=ParcelStage.IN_TRANSIT
    )
    data = {"courier": parcel.courier_id, "waybill_no": "73 1234 5678 9999", "reason": "少打一位"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = login(world.agent).post(_correct_url(parcel), data)
    assert response.status_code == 302
    parcel.refresh_from_db()
    assert parcel.waybill_no == "73123456789999"
    assert parcel.stage == ParcelStage.NO_INFO
    assert not parcel.tracking_events.exists()
    assert len(callbacks) == 1  # subscribed to tracking under the right number
    correction = ParcelCorrection.objects.get(parcel=parcel)
    assert (correction.old_waybill_no, correction.new_waybill_no) == (old, "73123456789999")
    assert (correction.actor, correction.reason) == (world.agent, "少打一位")


def test_correction_to_another_shops_waybill_is_refused(world, login):
    parcel = world.parcel_a
    before = parcel.waybill_no
    data = {
        "courier": world.parcel_b.courier_id,
        "waybill_no": world.parcel_b.waybill_no,
        "reason": "改一下",
    }
    response = login(world.owner).post(_correct_url(parcel), data)
    assert response.status_code == 200
    assert "该运单号已登记在一个包裹上" in str(response.context["form"].errors)
    parcel.refresh_from_db()
    assert parcel.waybill_no == before
    assert not ParcelCorrection.objects.exists()


def test_correction_is_refused_once_an_intercept_was_asked(world, login):
    parcel = world.parcel_a
    InterceptRequest.objects.create(
        shop=world.shop_a,
        parcel=parcel,
        after_sale=world.after_sale_a,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        status=InterceptRequest.Status.REJECTED,
        fee_fen=300,
    )
    data = {"courier": parcel.courier_id, "waybill_no": "73123456789999", "reason": "打错了"}
    response = login(world.agent).post(_correct_url(parcel), data)
    assert response.status_code == 200
    assert "已申请过拦截" in str(response.context["form"].errors)
    assert not ParcelCorrection.objects.exists()


def test_correction_needs_a_reason(world, login):
    parcel = world.parcel_a
    data = {"courier": parcel.courier_id, "waybill_no": "73123456789999", "reason": " "}
    response = login(world.agent).post(_correct_url(parcel), data)
    assert response.status_code == 200
    assert not ParcelCorrection.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("agent", 200),
        ("viewer", 403),
        ("other", 404),
        ("cs", 200),  # settles a waybill two shops claim
        ("finance", 403),
        ("anonymous", 302),
    ],
)
def test_correction_page_by_role(world, login, who, status):
    response = login(world.user(who)).get(_correct_url(world.parcel_a))
    assert response.status_code == status


def test_goods_already_in_a_parcel_are_not_counted_again(world, login):
    # The after-sale's order has one line, already in parcel_a: a second parcel has nothing
    # left to carry, so its value would only count the same goods twice.
    before = Parcel.objects.count()
    response = login(world.agent).post(reverse(ADD), _form(world))
    assert response.status_code == 200
    assert "该订单的商品都已发出" in _errors(response)
    assert Parcel.objects.count() == before


def test_a_second_parcel_carries_only_the_goods_not_yet_shipped(world, login):
    order = world.after_sale_a.order
    extra = OrderLineFactory(order=order, unit_price_fen=4_500, quantity=2)
    response = login(world.agent).post(reverse(ADD), _form(world))
    assert response.status_code == 302
    parcel = Parcel.objects.get(waybill_no="73123456789012")
    assert list(parcel.lines.values_list("pk", flat=True)) == [extra.pk]
    assert parcel.declared_value_fen == 9_000


def test_platform_cs_frees_a_waybill_another_shop_recorded_first(world, login):
    """Shop A recorded shop B's waybill before B did; B is refused its own parcel until
    platform customer service corrects A's parcel, with a record of why."""
    zto = Courier.objects.get(code="ZTO")
    theirs = "73999988887777"
    squatted = ParcelFactory(order=world.after_sale_a.order, courier=zto, waybill_no=theirs)
    order_b = world.after_sale_b.order
    OrderLineFactory(order=order_b)
    form_b = {**_form(world, waybill_no=theirs), "order": order_b.pk}
    refused = login(world.other).post(reverse(ADD), form_b)
    assert "该运单号已登记" in _errors(refused)

    corrected = login(world.cs).post(
        _correct_url(squatted),
        {"courier": zto.pk, "waybill_no": "73999988886666", "reason": "乙店投诉：运单号属于乙店"},
    )
    assert corrected.status_code == 302
    correction = ParcelCorrection.objects.get(parcel=squatted)
    assert (correction.old_waybill_no, correction.actor) == (theirs, world.cs)

    recorded = login(world.other).post(reverse(ADD), form_b)
    assert recorded.status_code == 302
    assert Parcel.objects.get(waybill_no=theirs).shop_id == world.shop_b.pk


def test_add_form_finds_the_order_by_autocomplete(world, login):
    body = login(world.agent).get(reverse(ADD)).content.decode()
    assert ('data-ajax--url="/admin/autocomplete/"' in body, "autocomplete.js" in body) == (
        True,
        True,
    )
