"""Holes closed: mixed roles, probing hidden values through URL lookups, counting, odd input."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from couriers.models import Courier, CourierAccount
from intercepts.models import Order, Parcel
from shops.models import ShopMembership
from tests.factories import (
    AfterSaleFactory,
    MembershipFactory,
    OrderLineFactory,
    ParcelFactory,
    UserFactory,
    make_after_sale,
)


@pytest.fixture
def mixed(world):
    """Owner of shop A, only a viewer of shop B."""
    user = MembershipFactory(user__username="mixed", shop=world.shop_a).user
    MembershipFactory(user=user, shop=world.shop_b, role=ShopMembership.Role.VIEWER)
    return user


def _parcel_form(order, waybill="73123456789012"):
    return {
        "order": order.pk,
        "courier": Courier.objects.get(code="ZTO").pk,
        "waybill_no": waybill,
        "declared_value_fen": "10.00",
        "receiver_name": "张三",
        "receiver_phone": "13812341234",
        "receiver_address": "上海市",
        "tracking_events-TOTAL_FORMS": "0",
        "tracking_events-INITIAL_FORMS": "0",
    }


def test_viewer_role_in_one_shop_cannot_add_there_with_a_write_role_elsewhere(world, mixed, login):
    client = login(mixed)
    before = Parcel.objects.count()
    response = client.post(
        reverse("admin:intercepts_parcel_add"), _parcel_form(world.after_sale_b.order)
    )
    # Shop B's order is not among the choices of a user who only views shop B.
    assert response.status_code == 200
    assert "order" in response.context["form"].errors
    assert Parcel.objects.count() == before
    # ...while the shop where the user is owner still works (for goods not yet in a parcel).
    OrderLineFactory(order=world.after_sale_a.order)
    Order.objects.filter(pk=world.after_sale_a.order_id).update(
        receiver_name="张三", receiver_phone="13812341234", receiver_address="上海市"
    )
    ok = client.post(reverse("admin:intercepts_parcel_add"), _parcel_form(world.after_sale_a.order))
    assert ok.status_code == 302
    assert Parcel.objects.count() == before + 1


def test_viewer_role_in_one_shop_cannot_change_its_parcels(world, mixed, login):
    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_b.pk])
    response = login(mixed).post(url, _parcel_form(world.after_sale_b.order, "73999999999999"))
    assert response.status_code == 403
    world.parcel_b.refresh_from_db()
    assert world.parcel_b.waybill_no != "73999999999999"


@pytest.mark.parametrize(
    ("route", "lookup"),
    [
        ("admin:intercepts_order_changelist", "buyer_phone__startswith"),
        ("admin:intercepts_parcel_changelist", "receiver_phone__startswith"),
        ("admin:intercepts_aftersale_changelist", "order__buyer_phone__startswith"),
        ("admin:intercepts_aftersale_changelist", "shop__name__startswith"),
    ],
)
def test_url_lookups_outside_the_filters_are_refused(world, login, route, lookup):
    response = login(world.viewer).get(reverse(route), {lookup: "138"})
    assert response.status_code == 400


def test_gateway_secrets_cannot_be_probed_through_the_list(world, login):
    CourierAccount.objects.create(
        name="k100", protocol="kuaidi100", base_url="https://k.example.com", secret="s3cr3tXY"
    )
    url = reverse("admin:couriers_courieraccount_changelist")
    assert login(world.finance).get(url, {"secret__startswith": "s"}).status_code == 400


def test_declared_filters_still_work(world, login):
    url = reverse("admin:intercepts_aftersale_changelist")
    assert login(world.owner).get(url, {"status__exact": "pending"}).status_code == 200
    assert login(world.cs).get(url, {"shop": world.shop_a.code}).status_code == 200


def test_autocomplete_and_deep_pages_never_count(world, login):
    for _ in range(3):
        make_after_sale(world.shop_a)
    client = login(world.cs)
    with CaptureQueriesContext(connection) as ctx:
        auto = client.get(
            reverse("admin:autocomplete"),
            {"app_label": "intercepts", "model_name": "parcel", "field_name": "order", "term": ""},
        )
        deep = client.get(reverse("admin:intercepts_aftersale_changelist"), {"p": 3})
    assert auto.status_code == 200 and deep.status_code == 200
    assert auto.json()["results"]
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize("page", ["99999999999999999999", "100001", "-1"])
def test_absurd_page_numbers_are_not_a_server_error(world, login, page):
    response = login(world.owner).get(reverse("admin:intercepts_aftersale_changelist"), {"p": page})
    # Django's changelist answers a page it cannot show by going back to the list with ?e=1.
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "sNaN", "1e30", "-Infinity"])
def test_non_finite_or_huge_amounts_are_refused_in_chinese(amount):
    from django import forms
    from django.utils import translation

    from billing.money import YuanFormField

    with translation.override("zh-hans"):
        field = YuanFormField()
        with pytest.raises(forms.ValidationError) as refused:
            field.clean(amount)
        assert "请输入以元为单位的金额" in " ".join(refused.value.messages)


def test_search_finds_own_order_even_when_many_shops_share_its_number(world, login):
    mine = AfterSaleFactory(order__shop=world.shop_a, shop=world.shop_a, order__order_no="SAME-1")
    for _ in range(3):
        AfterSaleFactory(order__order_no="SAME-1")
    response = login(world.owner).get(
        reverse("admin:intercepts_aftersale_changelist"), {"q": "SAME-1"}
    )
    assert [a.pk for a in response.context["cl"].result_list] == [mine.pk]


def test_superuser_cannot_edit_shop_status_in_the_form(world, login):
    root = UserFactory(username="root", is_superuser=True)
    response = login(root).get(reverse("admin:shops_shop_change", args=[world.shop_a.pk]))
    assert "status" not in response.context["adminform"].form.fields


def test_shipping_carries_only_the_orders_own_goods(world):
    from intercepts.models import Shipment
    from intercepts.services.shipping import ship_order

    stray_order = ParcelFactory(order__shop=world.shop_a).order
    Order.objects.filter(pk=stray_order.pk).update(
        receiver_name="张三", receiver_phone="13812341234", receiver_address="上海市"
    )
    stray_order.refresh_from_db()
    own = OrderLineFactory(order=stray_order)
    parcel = ship_order(
        actor=world.owner,
        order=stray_order,
        courier=Courier.objects.get(code="ZTO"),
        waybill_no="73123456789012",
        channel=Shipment.Channel.WORKBENCH,
    ).shipment.parcel
    # Never a line of another order (the after-sale's), only this order's goods not yet shipped.
    assert list(parcel.lines.values_list("pk", flat=True)) == [own.pk]
