"""After-sales list: search by whole numbers, filters by courier and stage, masked phones."""

import pytest
from django.urls import reverse

from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.models import AfterSale, mask_phone
from tests.factories import make_after_sale

URL = "admin:intercepts_aftersale_changelist"


def _orders(response):
    return {row.order.order_no for row in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),
        ("+86 138-1234-1234", "138****1234"),
        ("95311", "****5311"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_list_shows_masked_buyer_phone_only(world, login):
    body = login(world.owner).get(reverse(URL)).content.decode()
    assert "138****1234" in body
    assert "13812341234" not in body


def test_search_by_waybill_and_order_number(world, login):
    client = login(world.owner)
    other, _ = make_after_sale(world.shop_a)
    by_waybill = client.get(reverse(URL), {"q": world.parcel_a.waybill_no.lower()})
    assert _orders(by_waybill) == {world.after_sale_a.order.order_no}
    by_order = client.get(reverse(URL), {"q": other.order.order_no})
    assert _orders(by_order) == {other.order.order_no}


def test_search_does_not_reach_another_shop(world, login):
    response = login(world.owner).get(reverse(URL), {"q": world.parcel_b.waybill_no})
    assert _orders(response) == set()


def test_filter_by_courier_and_stage(world, login):
    sf = Courier.objects.get(code="SF")
    sf_sale, _ = make_after_sale(world.shop_a, courier=sf, stage=ParcelStage.OUT_FOR_DELIVERY)
    client = login(world.owner)
    assert _orders(client.get(reverse(URL), {"courier": sf.pk})) == {sf_sale.order.order_no}
    by_stage = client.get(reverse(URL), {"stage": ParcelStage.OUT_FOR_DELIVERY})
    assert _orders(by_stage) == {sf_sale.order.order_no}
    by_status = client.get(reverse(URL), {"status": AfterSale.Status.REFUNDED})
    assert _orders(by_status) == set()


def test_pages_move_forward_without_counting(world, login, settings):
    for _ in range(25):
        make_after_sale(world.shop_a)
    client = login(world.owner)
    first = client.get(reverse(URL))
    second = client.get(reverse(URL), {"p": 2})
    assert first.context["cl"].has_next_page is True
    assert second.context["cl"].has_next_page is False
    assert len(_orders(first)) == 20 and len(_orders(second)) == 6
    assert not _orders(first) & _orders(second)
    assert client.get(reverse(URL), {"p": 0}).status_code == 302  # back to a valid page


def test_parcel_list_search_finds_the_parcel_or_its_orders_parcels(world, login):
    client = login(world.owner)
    url = reverse("admin:intercepts_parcel_changelist")
    by_waybill = client.get(url, {"q": world.parcel_a.waybill_no})
    assert [p.pk for p in by_waybill.context["cl"].result_list] == [world.parcel_a.pk]
    by_order = client.get(url, {"q": world.after_sale_a.order.order_no})
    assert [p.pk for p in by_order.context["cl"].result_list] == [world.parcel_a.pk]
    assert client.get(url, {"q": world.parcel_b.waybill_no}).context["cl"].result_list == []


def test_order_list_search_by_waybill(world, login):
    client = login(world.owner)
    url = reverse("admin:intercepts_order_changelist")
    response = client.get(url, {"q": world.parcel_a.waybill_no})
    assert [o.pk for o in response.context["cl"].result_list] == [world.after_sale_a.order_id]
