"""The shipment endpoints against the cast of callers: shop A's own key, another shop's valid
key, a revoked key, an expired key, a key used from an address its allow-list leaves out, no key,
and a signed-in browser session without a key. Each gets its one expected answer, and only shop
A's own key changes anything of shop A's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from intercepts.models import Order, Shipment, ShipmentAnomaly
from shops.api_keys import api_key_create, api_key_revoke
from shops.models import ApiKey
from tests.api_client import call
from tests.factories import MembershipFactory, ShopFactory
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("GET", "/api/v1/shipments/"),
    ("POST", "/api/v1/shipments/"),
    ("GET", "/api/v1/shipment-anomalies/"),
    ("GET", "/api/v1/shipment-anomalies/{anomaly}/"),
]
IDS = [f"{method} {path}" for method, path in ENDPOINTS]

# (caller, endpoint) -> (status, what the body says).
OWN = {
    "GET /api/v1/shipments/": (200, "shop_a"),
    "POST /api/v1/shipments/": (201, "shipped"),
    "GET /api/v1/shipment-anomalies/": (200, "shop_a"),
    "GET /api/v1/shipment-anomalies/{anomaly}/": (200, "shop_a"),
}
OTHER_SHOP = {
    "GET /api/v1/shipments/": (200, "empty"),
    "POST /api/v1/shipments/": (422, "order_not_found"),
    "GET /api/v1/shipment-anomalies/": (200, "empty"),
    "GET /api/v1/shipment-anomalies/{anomaly}/": (404, "not_found"),
}
REFUSED = {
    "revoked": (401, "key_revoked"),
    "expired": (401, "key_expired"),
    "address": (403, "ip_not_allowed"),
    "none": (401, "not_authenticated"),
    "session": (401, "not_authenticated"),
}


@pytest.fixture
def shop_a(world):
    """Shop A with two orders shipped on one waybill to two receivers (an anomaly on the
    second) and an order waiting to ship, which the POST names."""
    from intercepts.services.shipping import ship_order

    waybill = new_waybill()
    first = paid_order(world.shop_a)
    second = paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区建国路1号")
    for order in (first, second):
        ship_order(
            actor=world.owner,
            order=order,
            courier=world.parcel_a.courier,
            waybill_no=waybill,
            channel=Shipment.Channel.WORKBENCH,
        )
    waiting = paid_order(world.shop_a)
    return {
        "anomaly": ShipmentAnomaly.objects.get(order=second).pk,
        "waiting": waiting,
        "waybill": new_waybill(),
    }


def _caller(client, world, kind):
    """The key (or None) and the client of one of the cast."""
    if kind == "own":
        return api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-A")[1]
    if kind == "other":
        shop_c = ShopFactory(name="丙店", code="shop-c")
        owner_c = MembershipFactory(user__username="owner-c", shop=shop_c).user
        return api_key_create(actor=owner_c, shop=shop_c, name="ERP-C")[1]
    if kind == "revoked":
        key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-X")
        api_key_revoke(actor=world.owner, key=key)
        return raw
    if kind == "expired":
        key, raw = api_key_create(
            actor=world.owner,
            shop=world.shop_a,
            name="ERP-X",
            expires_at=timezone.now() + timedelta(days=1),
        )
        ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        return raw
    if kind == "address":
        return api_key_create(
            actor=world.owner, shop=world.shop_a, name="ERP-X", allowed_ips=["192.0.2.0/24"]
        )[1]
    if kind == "session":
        client.force_login(world.owner)
    return None


def _request(client, shop_a, endpoint, key):
    method, path = endpoint
    if method == "POST":
        body = {
            "order_no": shop_a["waiting"].order_no,
            "courier": "ZTO",
            "waybill_no": shop_a["waybill"],
        }
        return call(client, method, path, key, body, **{"Idempotency-Key": "matrix"})
    return call(client, method, path.format(**shop_a), key)


def _shop_a_as_set_up(shop_a) -> bool:
    waiting = Order.objects.get(pk=shop_a["waiting"].pk)
    return (
        waiting.status == Order.Status.PAID
        and Shipment.objects.count() == 2
        and ShipmentAnomaly.objects.get(pk=shop_a["anomaly"]).status == "open"
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_shop_as_own_key(client, world, shop_a, endpoint):
    key = _caller(client, world, "own")
    status, expected = OWN[f"{endpoint[0]} {endpoint[1]}"]

    response = _request(client, shop_a, endpoint, key)

    assert response.status_code == status, response.content[:300]
    body = response.json()
    if expected == "shipped":
        assert body["order_no"] == shop_a["waiting"].order_no and body["created"] is True
    elif "results" in body:
        assert len(body["results"]) == (2 if "shipments" in endpoint[1] else 1)
    else:
        assert body["id"] == shop_a["anomaly"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_another_shops_key(client, world, shop_a, endpoint):
    key = _caller(client, world, "other")
    status, expected = OTHER_SHOP[f"{endpoint[0]} {endpoint[1]}"]

    response = _request(client, shop_a, endpoint, key)

    assert response.status_code == status
    body = response.json()
    if expected == "empty":
        assert body["results"] == []
    else:
        assert body["code"] == expected
    assert _shop_a_as_set_up(shop_a)


@pytest.mark.parametrize("caller", list(REFUSED))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_callers_refused(client, world, shop_a, endpoint, caller):
    key = _caller(client, world, caller)

    response = _request(client, shop_a, endpoint, key)

    assert (response.status_code, response.json()["code"]) == REFUSED[caller]
    assert _shop_a_as_set_up(shop_a)
