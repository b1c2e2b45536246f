"""Every ERP API endpoint against every kind of caller that must not reach shop A's records:
no key, a signed-in browser session, a revoked key, an expired key, a key used from an address
its allow-list leaves out, and another shop's valid key. Each gets its one expected answer, and
nothing of shop A's changes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import services as billing_services
from intercepts.models import InterceptRequest
from shops.api_keys import api_key_create, api_key_revoke
from shops.models import ApiKey
from tests.api_client import call
from tests.factories import MembershipFactory, ShopFactory, sandbox_served
from tests.intercepts.readiness import make_ready

pytestmark = pytest.mark.django_db

# (method, path, body): every operation, naming shop A's records.
ENDPOINTS = [
    ("GET", "/api/v1/after-sales/", None),
    ("GET", "/api/v1/after-sales/{after_sale}/", None),
    ("GET", "/api/v1/parcels/", None),
    ("GET", "/api/v1/parcels/{parcel}/", None),
    ("GET", "/api/v1/parcels/{parcel}/eligibility/", None),
    ("GET", "/api/v1/intercepts/", None),
    ("GET", "/api/v1/intercepts/{intercept}/", None),
    ("POST", "/api/v1/intercepts/", "intercept"),
    ("POST", "/api/v1/intercepts/{intercept}/withdraw/", None),
    ("GET", "/api/v1/wallet/", None),
    ("GET", "/api/v1/wallet/entries/", None),
    ("GET", "/api/v1/invoice-requests/", None),
    ("GET", "/api/v1/invoice-requests/{invoice}/", None),
    ("POST", "/api/v1/invoice-requests/", "invoice"),
]
IDS = [f"{method} {path}" for method, path, _body in ENDPOINTS]

# What another shop's valid key is answered: nothing of shop A's, its own (empty) wallet.
OTHER_SHOP = {
    "GET /api/v1/after-sales/": (200, "empty"),
    "GET /api/v1/after-sales/{after_sale}/": (404, "not_found"),
    "GET /api/v1/parcels/": (200, "empty"),
    "GET /api/v1/parcels/{parcel}/": (404, "not_found"),
    "GET /api/v1/parcels/{parcel}/eligibility/": (404, "not_found"),
    "GET /api/v1/intercepts/": (200, "empty"),
    "GET /api/v1/intercepts/{intercept}/": (404, "not_found"),
    "POST /api/v1/intercepts/": (404, "not_found"),
    "POST /api/v1/intercepts/{intercept}/withdraw/": (404, "not_found"),
    "GET /api/v1/wallet/": (200, "zero"),
    "GET /api/v1/wallet/entries/": (200, "empty"),
    "GET /api/v1/invoice-requests/": (200, "empty"),
    "GET /api/v1/invoice-requests/{invoice}/": (404, "not_found"),
    # Its own wallet has no charged fee to invoice.
    "POST /api/v1/invoice-requests/": (422, "refused"),
}


@pytest.fixture
def shop_a(world, sandbox):
    """Shop A ready, with an open intercept and an invoice over one charged fee."""
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    _key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-A")
    intercept = call(
        _client(),
        "POST",
        "/api/v1/intercepts/",
        raw,
        _body("intercept", world),
        **{"Idempotency-Key": "a-1"},
    ).json()
    zto = world.parcel_a.courier
    billing_services.wallet_hold(
        shop_id=world.shop_a.pk, reference="fee:1", amount_fen=300, courier=zto
    )
    billing_services.wallet_capture(reference="fee:1")
    invoice = call(
        _client(),
        "POST",
        "/api/v1/invoice-requests/",
        raw,
        _body("invoice", world),
        **{"Idempotency-Key": "a-2"},
    ).json()
    return {
        "after_sale": world.after_sale_a.pk,
        "parcel": world.parcel_a.pk,
        "intercept": intercept["id"],
        "invoice": invoice["id"],
    }


def _client():
    from django.test import Client

    return Client()


def _body(kind, world):
    if kind == "intercept":
        return {
            "after_sale": world.after_sale_a.pk,
            "parcel": world.parcel_a.pk,
            "action": "return",
        }
    if kind == "invoice":
        return {
            "invoice_type": "digital_normal",
            "title": "某某贸易有限公司",
            "taxpayer_id": "91330100716105852F",
        }
    return None


def _request(client, world, ids, endpoint, key, **headers):
    method, path, body = endpoint
    if method == "POST":
        headers.setdefault("Idempotency-Key", f"matrix-{path}")
    return call(client, method, path.format(**ids), key, _body(body, world), **headers)


def _shop_a_unchanged(ids):
    intercept = InterceptRequest.objects.get(pk=ids["intercept"])
    assert intercept.status == "created"
    assert InterceptRequest.objects.count() == 1


def _key(world, **fields):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-X", **fields)
    return key, raw


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_no_key(client, world, shop_a, endpoint):
    response = _request(client, world, shop_a, endpoint, None)

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    _shop_a_unchanged(shop_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_signed_in_owners_browser_session(client, world, shop_a, endpoint):
    client.force_login(world.owner)

    response = _request(client, world, shop_a, endpoint, None)

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    _shop_a_unchanged(shop_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_revoked_key(client, world, shop_a, endpoint):
    key, raw = _key(world)
    api_key_revoke(actor=world.owner, key=key)

    response = _request(client, world, shop_a, endpoint, raw)

    assert (response.status_code, response.json()["code"]) == (401, "key_revoked")
    _shop_a_unchanged(shop_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_an_expired_key(client, world, shop_a, endpoint):
    key, raw = _key(world, expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = _request(client, world, shop_a, endpoint, raw)

    assert (response.status_code, response.json()["code"]) == (401, "key_expired")
    _shop_a_unchanged(shop_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_a_key_from_a_disallowed_address(client, world, shop_a, endpoint):
    _k, raw = _key(world, allowed_ips=["192.0.2.0/24"])

    response = _request(client, world, shop_a, endpoint, raw)

    assert (response.status_code, response.json()["code"]) == (403, "ip_not_allowed")
    _shop_a_unchanged(shop_a)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_another_shops_key(client, world, shop_a, endpoint):
    shop_c = ShopFactory(name="丙店", code="shop-c")
    owner_c = MembershipFactory(user__username="owner-c", shop=shop_c).user
    make_ready(shop_c, owner_c, fund_fen=0)
    _key_c, raw_c = api_key_create(actor=owner_c, shop=shop_c, name="ERP-C")
    status, expected = OTHER_SHOP[f"{endpoint[0]} {endpoint[1]}"]

    response = _request(client, world, shop_a, endpoint, raw_c)

    assert response.status_code == status
    body = response.json()
    if expected == "empty":
        assert body["results"] == []
    elif expected == "zero":
        assert body == {"available_fen": 0, "held_fen": 0}
    else:
        assert body["code"] == expected
    _shop_a_unchanged(shop_a)
