"""The parcel form: refuses bad money and malformed waybills in Chinese, and saves nothing."""

import pytest
from django.urls import reverse

from couriers.models import Courier
from intercepts.models import Parcel

ADD = "admin:intercepts_parcel_add"


def _form(world, **overrides):
    order = world.after_sale_a.order
    data = {
        "order": order.pk,
        "courier": Courier.objects.get(code="ZTO").pk,
        "waybill_no": "73123456789012",
        "lines": [order.lines.get().pk],
        "declared_value_fen": "129.00",
        "receiver_name": "张三",
        "receiver_phone": "13812341234",
        "receiver_address": "上海市浦东新区幸福路1号",
        "tracking_events-TOTAL_FORMS": "0",
        "tracking_events-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def _errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"declared_value_fen": "-1.00"}, "金额不能为负数"),
        ({"declared_value_fen": "12.345"}, "两位小数"),
        ({"declared_value_fen": "十元"}, "请输入以元为单位的金额"),
        ({"waybill_no": "YT0000000000000"}, "不是中通快递的运单号"),
        ({"waybill_no": "73-1234"}, "不是中通快递的运单号"),
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
    assert "order" in response.context["adminform"].form.errors
    assert Parcel.objects.count() == before


def test_lines_must_belong_to_the_parcels_order(world, login):
    from tests.factories import OrderLineFactory

    stray = OrderLineFactory(order__shop=world.shop_a)
    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk])
    data = _form(world, lines=[stray.pk], waybill_no=world.parcel_a.waybill_no)
    response = login(world.agent).post(url, data)
    assert response.status_code == 200
    assert "lines" in response.context["adminform"].form.errors
    assert list(world.parcel_a.lines.all()) == [world.after_sale_a.order.lines.get()]


def test_change_corrects_waybill_and_lines(world, login):
    from tests.factories import OrderLineFactory

    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk])
    data = _form(world, waybill_no="73999999999999")
    second = OrderLineFactory(order=world.after_sale_a.order)
    data["lines"] = [second.pk]
    response = login(world.agent).post(url, data)
    assert response.status_code == 302, _errors(response)
    world.parcel_a.refresh_from_db()
    assert world.parcel_a.waybill_no == "73999999999999"
    assert list(world.parcel_a.lines.all()) == [second]


def test_valid_parcel_is_saved_in_fen_with_the_orders_shop(world, login):
    response = login(world.agent).post(reverse(ADD), _form(world, waybill_no="73123456789012 "))
    assert response.status_code == 302, _errors(response)
    parcel = Parcel.objects.get(waybill_no="73123456789012")
    assert parcel.declared_value_fen == 12900
    assert parcel.shop_id == world.shop_a.pk
    assert list(parcel.lines.values_list("pk", flat=True)) == [
        world.after_sale_a.order.lines.get().pk
    ]
