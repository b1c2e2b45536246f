"""The ERP API's shipments and shipment anomalies: shipping an order under the rules against fake
shipping (each refusal with the platform's code and words), idempotent replays, the lists with
their filters, and another shop's key finding nothing."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from intercepts.models import Order, Shipment, ShipmentAnomaly
from intercepts.services import shipment_checks
from tests.api_client import call, make_keys
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = pytest.mark.django_db

SHIPMENTS = "/api/v1/shipments/"
ANOMALIES = "/api/v1/shipment-anomalies/"


@pytest.fixture
def keys(world):
    return make_keys(world)


def _ship(client, key, order_no, waybill_no, courier="ZTO", idempotency_key=None):
    body = {"order_no": order_no, "courier": courier, "waybill_no": waybill_no}
    key_header = idempotency_key or f"ship-{order_no}-{waybill_no}-{courier}"
    return call(client, "POST", SHIPMENTS, key, body, **{"Idempotency-Key": key_header})


# Shipping.


def test_shipping_an_order_answers_201_with_the_shipment(client, world, keys):
    order = paid_order(world.shop_a)
    waybill = new_waybill()

    response = _ship(client, keys.a, order.order_no, waybill.lower())

    body = response.json()
    shipment = Shipment.objects.get(order=order)
    assert response.status_code == 201, body
    assert body == {
        "id": shipment.pk,
        "order_no": order.order_no,
        "courier": "ZTO",
        "waybill_no": waybill,
        "parcel": shipment.parcel_id,
        "flagged": False,
        "channel": "api",
        "shipped_at": body["shipped_at"],
        "created": True,
    }
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED


def test_the_shipment_names_the_key_in_the_orders_history(client, world, keys):
    order = paid_order(world.shop_a)

    _ship(client, keys.a, order.order_no, new_waybill())

    event = order.events.get(to_status=Order.Status.SHIPPED)
    assert str(event.actor) == f"API:ERP-A#{keys.key_a.prefix}"


def test_shipping_again_with_the_same_waybill_answers_200_and_changes_nothing(client, world, keys):
    order = paid_order(world.shop_a)
    waybill = new_waybill()
    first = _ship(client, keys.a, order.order_no, waybill, idempotency_key="first")

    again = _ship(client, keys.a, order.order_no, waybill, idempotency_key="second")

    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}
    assert Shipment.objects.filter(order=order).count() == 1


def test_the_same_idempotency_key_replays_the_first_answer(client, world, keys):
    order = paid_order(world.shop_a)
    waybill = new_waybill()
    first = _ship(client, keys.a, order.order_no, waybill, idempotency_key="same")

    replay = _ship(client, keys.a, order.order_no, waybill, idempotency_key="same")

    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_the_same_idempotency_key_with_another_waybill_is_refused(client, world, keys):
    order = paid_order(world.shop_a)
    _ship(client, keys.a, order.order_no, new_waybill(), idempotency_key="same")

    other = _ship(client, keys.a, order.order_no, new_waybill(), idempotency_key="same")

    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Shipment.objects.filter(order=order).count() == 1


def test_shipping_without_an_idempotency_key_is_refused(client, world, keys):
    order = paid_order(world.shop_a)
    body = {"order_no": order.order_no, "courier": "ZTO", "waybill_no": new_waybill()}

    response = call(client, "POST", SHIPMENTS, keys.a, body)

    assert (response.status_code, response.json()["code"]) == (400, "idempotency_key_required")
    assert not Shipment.objects.exists()


def test_a_waybill_that_does_not_fit_the_courier_is_refused_with_4009(client, world, keys):
    order = paid_order(world.shop_a)

    response = _ship(client, keys.a, order.order_no, "ABC123")

    assert response.status_code == 422
    assert response.json() == {"code": "4009", "message": "运单号和物流公司不匹配", "details": {}}
    assert not Shipment.objects.exists()


def test_a_second_receiver_on_a_waybill_is_shipped_and_flagged(client, world, keys):
    waybill = new_waybill()
    first = paid_order(world.shop_a)
    second = paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区建国路1号")
    _ship(client, keys.a, first.order_no, waybill)

    response = _ship(client, keys.a, second.order_no, waybill)

    assert (response.status_code, response.json()["flagged"]) == (201, True)
    anomaly = ShipmentAnomaly.objects.get(order=second)
    assert anomaly.kind == ShipmentAnomaly.Kind.SHARED_WAYBILL


def test_a_third_receiver_on_a_waybill_is_refused(client, world, keys):
    waybill = new_waybill()
    for phone, address in (
        ("13812341234", "上海市浦东新区幸福路1号"),
        ("13900000000", "北京市朝阳区建国路1号"),
    ):
        order = paid_order(world.shop_a, phone=phone, address=address)
        _ship(client, keys.a, order.order_no, waybill)
    third = paid_order(world.shop_a, phone="13700000000", address="广州市天河区体育西路2号")

    response = _ship(client, keys.a, third.order_no, waybill)

    assert response.status_code == 422
    assert response.json() == {
        "code": "three_addresses",
        "message": "当前运单号对应3个收件地址，上传失败",
        "details": {},
    }
    assert not Shipment.objects.filter(order=third).exists()


def test_another_shops_order_is_not_found_like_an_order_that_does_not_exist(client, world, keys):
    theirs = paid_order(world.shop_b)

    response = _ship(client, keys.a, theirs.order_no, new_waybill())
    nobodys = _ship(client, keys.a, "NO-SUCH-ORDER", new_waybill())

    assert (response.status_code, response.json()["code"]) == (422, "order_not_found")
    assert response.json() == nobodys.json()
    theirs.refresh_from_db()
    assert theirs.status == Order.Status.PAID
    assert not Shipment.objects.exists()


def test_an_unknown_courier_is_refused(client, world, keys):
    order = paid_order(world.shop_a)

    response = _ship(client, keys.a, order.order_no, new_waybill(), courier="NOPE")

    assert (response.status_code, response.json()["code"]) == (422, "courier_unknown")


def test_a_waybill_of_another_shops_parcel_is_refused(client, world, keys):
    theirs = paid_order(world.shop_b)
    waybill = new_waybill()
    _ship(client, keys.b, theirs.order_no, waybill)
    ours = paid_order(world.shop_a)

    response = _ship(client, keys.a, ours.order_no, waybill)

    assert (response.status_code, response.json()["code"]) == (422, "waybill_taken")


def test_a_body_without_the_waybill_is_invalid(client, world, keys):
    order = paid_order(world.shop_a)
    body = {"order_no": order.order_no, "courier": "ZTO"}

    response = call(client, "POST", SHIPMENTS, keys.a, body, **{"Idempotency-Key": "k"})

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "waybill_no" in response.json()["details"]


# Lists.


@pytest.fixture
def shipped(client, world, keys):
    """Shop A: two orders on one waybill for two receivers (the second flagged), one order on
    a waybill of its own; shop B: one order shipped."""
    shared, own = new_waybill(), new_waybill()
    first = paid_order(world.shop_a)
    second = paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区建国路1号")
    third = paid_order(world.shop_a)
    for order, waybill in ((first, shared), (second, shared), (third, own)):
        assert _ship(client, keys.a, order.order_no, waybill).status_code == 201
    theirs = paid_order(world.shop_b)
    assert _ship(client, keys.b, theirs.order_no, new_waybill()).status_code == 201
    return {"orders": [first, second, third], "shared": shared, "own": own}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:300]
    return [row["id"] for row in response.json()["results"]]


def _shipment_ids(*orders) -> list[int]:
    return list(
        Shipment.objects.filter(order__in=orders).order_by("-id").values_list("pk", flat=True)
    )


def test_the_list_holds_the_shops_shipments_newest_first(client, world, keys, shipped):
    response = call(client, "GET", SHIPMENTS, keys.a)

    assert _ids(response) == _shipment_ids(*shipped["orders"])


@pytest.mark.parametrize(
    ("query", "picked"),
    [
        ("flagged=true", [1]),
        ("flagged=false", [0, 2]),
        ("order_no={orders[2].order_no}", [2]),
        ("waybill_no={shared_spaced}", [0, 1]),
    ],
)
def test_the_list_filters(client, world, keys, shipped, query, picked):
    spaced = " ".join([shipped["shared"][:4].lower(), shipped["shared"][4:]])
    url = f"{SHIPMENTS}?" + query.format(orders=shipped["orders"], shared_spaced=spaced)

    response = call(client, "GET", url, keys.a)

    assert _ids(response) == _shipment_ids(*[shipped["orders"][i] for i in picked])


def test_the_anomaly_list_gives_the_reason_and_the_settlement_hold(client, world, keys, shipped):
    later = timezone.now() + timedelta(days=10, minutes=1)
    shipment_checks.shipments_scan_overdue(now=later)
    third = shipped["orders"][2]

    response = call(
        client, "GET", f"{ANOMALIES}?kind=stalled_10d&order_no={third.order_no}", keys.a
    )

    [row] = response.json()["results"]
    anomaly = ShipmentAnomaly.objects.get(order=third, kind="stalled_10d")
    assert row == {
        "id": anomaly.pk,
        "order_no": third.order_no,
        "courier": "ZTO",
        "waybill_no": shipped["own"],
        "parcel": anomaly.parcel_id,
        "kind": "stalled_10d",
        "status": "open",
        "reason": "发货 10 天仍无签收、拒收或退回：订单结算暂停，买家自动确认收货时间延后。",
        "detected_at": row["detected_at"],
        "explanation": "",
        "closed_at": None,
        "settlement_held": True,
    }


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ("", {"shared_waybill"}),
        ("kind=shared_waybill", {"shared_waybill"}),
        ("kind=stalled_6d", set()),
        ("status=open", {"shared_waybill"}),
        ("status=dismissed", set()),
    ],
)
def test_the_anomaly_list_filters_by_kind_and_status(client, world, keys, shipped, query, kinds):
    response = call(client, "GET", f"{ANOMALIES}?{query}", keys.a)

    assert response.status_code == 200
    assert {row["kind"] for row in response.json()["results"]} == kinds


def test_an_unknown_kind_is_an_invalid_filter(client, world, keys):
    response = call(client, "GET", f"{ANOMALIES}?kind=nonsense", keys.a)

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_another_shops_key_finds_none_of_our_shipments_or_anomalies(client, world, keys, shipped):
    anomaly = ShipmentAnomaly.objects.get(order=shipped["orders"][1])
    theirs = Shipment.objects.filter(shop=world.shop_b).values_list("pk", flat=True)

    listed = call(client, "GET", SHIPMENTS, keys.b)
    anomalies = call(client, "GET", ANOMALIES, keys.b)
    detail = call(client, "GET", f"{ANOMALIES}{anomaly.pk}/", keys.b)

    assert _ids(listed) == list(theirs)
    assert _ids(anomalies) == []
    assert (detail.status_code, detail.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize("path", [SHIPMENTS, ANOMALIES])
def test_list_queries_do_not_grow_with_the_page(client, world, keys, path):
    for _ in range(3):
        waybill = new_waybill()
        _ship(client, keys.a, paid_order(world.shop_a).order_no, waybill)
        other = paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区建国路1号")
        _ship(client, keys.a, other.order_no, waybill)

    def queries(n):
        with CaptureQueriesContext(connection) as ctx:
            response = call(client, "GET", f"{path}?page_size={n}", keys.a)
        assert len(response.json()["results"]) == n
        return len(ctx.captured_queries)

    assert queries(1) == queries(3)


@pytest.mark.parametrize("field", ["order_no", "courier", "waybill_no"])
def test_a_nul_byte_in_the_body_is_invalid_not_a_server_error(client, world, keys, field):
    body = {"order_no": paid_order(world.shop_a).order_no, "courier": "ZTO"}
    body["waybill_no"] = new_waybill()
    body[field] = body[field][:2] + "\x00" + body[field][2:]

    response = call(client, "POST", SHIPMENTS, keys.a, body, **{"Idempotency-Key": "nul"})

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert not Shipment.objects.exists()


@pytest.mark.parametrize(
    "url",
    [f"{SHIPMENTS}?order_no=A%00B", f"{SHIPMENTS}?waybill_no=7%003", f"{ANOMALIES}?order_no=%00"],
)
def test_a_nul_byte_in_a_filter_is_invalid_not_a_server_error(client, world, keys, url):
    response = call(client, "GET", url, keys.a)

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
