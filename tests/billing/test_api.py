"""The ERP API's wallet, wallet entries and invoice requests: normal paths, another shop's key
finding nothing, and list queries that do not grow with the page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import services as billing_services
from billing.models import InvoiceRequest
from couriers.models import Courier
from tests.api_client import call, make_keys
from tests.billing.test_statement import USCC
from tests.intercepts.readiness import make_ready

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(world):
    return make_keys(world)


@pytest.fixture
def charged(world):
    """Shop A funded with 10 yuan, and two 3-yuan fees charged through billing."""
    make_ready(world.shop_a, world.owner)
    zto = Courier.objects.get(code="ZTO")
    for n in (1, 2):
        billing_services.wallet_hold(
            shop_id=world.shop_a.pk, reference=f"test-fee:{n}", amount_fen=300, courier=zto
        )
        billing_services.wallet_capture(reference=f"test-fee:{n}")
    return world


def _invoice(client, key, idempotency_key="inv-1", **fields):
    body = {"invoice_type": "digital_normal", "title": "甲店贸易有限公司", "taxpayer_id": USCC}
    return call(
        client,
        "POST",
        "/api/v1/invoice-requests/",
        key,
        {**body, **fields},
        **{"Idempotency-Key": idempotency_key},
    )


def test_the_wallet_shows_available_and_held_money(client, charged, keys):
    response = call(client, "GET", "/api/v1/wallet/", keys.a)

    assert response.json() == {"available_fen": 400, "held_fen": 0}


def test_a_shop_without_a_wallet_is_told_so(client, world, keys):
    response = call(client, "GET", "/api/v1/wallet/", keys.a)

    assert (response.status_code, response.json()["code"]) == (404, "no_wallet")


def test_wallet_entries_list_each_movement_newest_first(client, charged, keys):
    response = call(client, "GET", "/api/v1/wallet/entries/", keys.a)

    rows = response.json()["results"]
    assert [(row["kind"], row["amount_fen"]) for row in rows] == [
        ("capture", 300),
        ("hold", -300),
        ("capture", 300),
        ("hold", -300),
        ("top_up", 1000),
    ]
    assert [row["available_after_fen"] for row in rows] == [400, 400, 700, 700, 1000]


def test_wallet_entries_filter_by_kind(client, charged, keys):
    response = call(client, "GET", "/api/v1/wallet/entries/?kind=top_up", keys.a)

    assert [row["amount_fen"] for row in response.json()["results"]] == [1000]


def test_request_an_invoice_over_the_charged_fees(client, charged, keys):
    response = _invoice(client, keys.a)

    body = response.json()
    assert response.status_code == 201, body
    assert body["amount_fen"] == 600 and body["status"] == "requested"
    assert sorted(line["reference"] for line in body["lines"]) == ["test-fee:1", "test-fee:2"]
    listed = call(client, "GET", "/api/v1/invoice-requests/", keys.a).json()
    got = call(client, "GET", f"/api/v1/invoice-requests/{body['id']}/", keys.a).json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]
    assert got == body


def test_an_invoice_with_nothing_to_invoice_is_refused(client, charged, keys):
    _invoice(client, keys.a)

    again = _invoice(client, keys.a, idempotency_key="inv-2")

    assert (again.status_code, again.json()["code"]) == (422, "refused")
    assert InvoiceRequest.objects.count() == 1


def test_a_bad_credit_code_is_refused_in_chinese(client, charged, keys):
    response = _invoice(client, keys.a, taxpayer_id="91330100716105852A")

    assert (response.status_code, response.json()["code"]) == (422, "refused")
    assert "校验" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        # Shop B has no wallet: it is told so, never shown shop A's.
        ("/api/v1/wallet/", 404, "no_wallet"),
        ("/api/v1/wallet/entries/", 404, "no_wallet"),
        ("/api/v1/invoice-requests/", 200, None),
    ],
)
def test_another_shops_key_sees_none_of_our_money(client, charged, keys, path, status, code):
    _invoice(client, keys.a)

    response = call(client, "GET", path, keys.b)

    assert response.status_code == status
    assert response.json().get("code") == code
    if status == 200:
        assert response.json()["results"] == []


def test_another_shops_wallet_entries_are_its_own(client, charged, keys):
    make_ready(charged.shop_b, charged.other, fund_fen=500)

    response = call(client, "GET", "/api/v1/wallet/entries/", keys.b)

    assert [row["amount_fen"] for row in response.json()["results"]] == [500]


def test_another_shops_key_gets_404_for_our_invoice(client, charged, keys):
    made = _invoice(client, keys.a).json()

    response = call(client, "GET", f"/api/v1/invoice-requests/{made['id']}/", keys.b)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/wallet/entries/", "/api/v1/invoice-requests/"])
def test_list_queries_do_not_grow_with_the_page(client, charged, keys, path):
    for n in (1, 2):
        _invoice(client, keys.a, idempotency_key=f"inv-{n}")
        zto = Courier.objects.get(code="ZTO")
        billing_services.wallet_hold(
            shop_id=charged.shop_a.pk, reference=f"more:{n}", amount_fen=100, courier=zto
        )
        billing_services.wallet_capture(reference=f"more:{n}")

    def queries(n):
        with CaptureQueriesContext(connection) as ctx:
            response = call(client, "GET", f"{path}?page_size={n}", keys.a)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    queries(1)
    assert queries(1) == queries(5)


def test_a_courier_code_with_a_nul_byte_is_refused_as_invalid(client, charged, keys):
    # PostgreSQL refuses NUL in a query; the field refuses it first, as a bad code.
    response = _invoice(client, keys.a, idempotency_key="inv-nul", courier="ZT\x00O")

    assert response.status_code == 400
    assert "courier" in str(response.json())
    assert InvoiceRequest.objects.count() == 0
