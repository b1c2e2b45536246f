"""Schemathesis against our own OpenAPI schema, with a real key of a shop that has data: every
operation gets ``API_FUZZ_EXAMPLES`` generated requests (default 20: some 400 in all, what CI
runs), each answer checked for server errors and against the schema. ``make fuzz`` runs 100 per
operation and asks for at least 1,000.

The requests go through Django's WSGI handler in this test's thread, each committing on its own
as under gunicorn (an error in one must not poison the next, as it would inside one test
transaction); the intercepts created are sent to the sandbox courier by the tasks they queue.
"""

import contextlib
import itertools
import os
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from claims.models import Claim
from claims.services import claim_file
from intercepts.models import InterceptRequest, ShipmentAnomaly
from intercepts.services.shipping import ship_order
from shops.api_keys import api_key_create
from tests.claims.conftest import evidence_dir, jpeg_bytes, upload  # noqa: F401 (a fixture)
from tests.factories import make_after_sale, make_intercept, sandbox_served
from tests.intercepts.readiness import make_ready, zto_waybill
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,
]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
MIN_REQUESTS = int(os.environ.get("API_FUZZ_MIN_REQUESTS", "200"))

# What every answer must satisfy: no server error, a status the schema lists for the operation
# (its refusals included, ``shops.api.schema``), and headers, content type and body as the schema
# describes them for that status. Left out: the checks that send requests of their own.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture
def fuzz_world(world, sandbox, settings, request):
    """Shop A ready and funded, with after-sales and parcels, an intercept waiting, two that
    succeeded (their fees charged), a claim with a photo on one of them, and an invoice request
    over the fees; orders shipped with an anomaly and orders to ship; its key has no throttle
    to speak of. Evidence is kept under the test's own folder."""
    request.getfixturevalue("evidence_dir")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "1000000/min"},
    }
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner, fund_fen=100_000)
    pairs = [(world.after_sale_a, world.parcel_a)]
    pairs += [make_after_sale(world.shop_a, waybill_no=zto_waybill("2")) for _ in range(6)]
    waiting = make_intercept(world.owner, pairs[1][1], pairs[1][0])
    free, claimed = (
        make_intercept(
            world.owner,
            parcel,
            after_sale,
            InterceptRequest.Status.SUBMITTED,
            InterceptRequest.Status.SUCCEEDED,
        )
        for after_sale, parcel in pairs[2:4]
    )
    claim = claim_file(
        actor=world.owner,
        intercept=claimed,
        reason=Claim.Reason.LOST,
        amount_claimed_fen=100,
        files=[upload("photo.jpg", jpeg_bytes(), "image/jpeg")],
    )
    from billing.models import Wallet
    from billing.services import invoice_request

    invoice = invoice_request(
        actor=world.owner,
        wallet=Wallet.objects.get(shop=world.shop_a),
        invoice_type="digital_normal",
        title="上海某某贸易有限公司",
        taxpayer_id="91330100716105852F",
    )
    # Two orders shipped on one waybill to two receivers (an anomaly), and orders to ship.
    shared = new_waybill()
    for order in (
        paid_order(world.shop_a),
        paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区建国路1号"),
    ):
        ship_order(
            actor=world.owner,
            order=order,
            courier=world.parcel_a.courier,
            waybill_no=shared,
            channel="workbench",
        )
    to_ship = [paid_order(world.shop_a).order_no for _ in range(4)] + [
        paid_order(world.shop_b).order_no
    ]
    _key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="fuzz")
    return {
        "key": raw,
        "after_sale": [a.pk for a, _p in pairs] + [world.after_sale_b.pk],
        "parcel": [p.pk for _a, p in pairs] + [world.parcel_b.pk],
        "intercept": [waiting.pk],
        "invoice": [invoice.pk],
        "claim": [claim.pk],
        "evidence_id": [claim.evidence.get().pk],
        # What a claim names: an intercept free to claim, a claimed one, one still waiting.
        "claim_intercept": [free.pk, claimed.pk, waiting.pk],
        "anomaly": list(ShipmentAnomaly.objects.values_list("pk", flat=True)),
        # What a shipment names: orders to ship (the last one shop B's) and a waybill each.
        "order_no": to_ship,
        "waybill_no": [shared, *(new_waybill() for _ in range(3))],
    }


def _resource(path: str) -> str | None:
    for prefix, name in (
        ("/after-sales/", "after_sale"),
        ("/parcels/", "parcel"),
        ("/intercepts/", "intercept"),
        ("/invoice-requests/", "invoice"),
        ("/claims/", "claim"),
        ("/shipment-anomalies/", "anomaly"),
    ):
        if path.startswith(prefix):
            return name
    return None


def _strategy(operation):
    """Valid requests and, as often, requests the schema says are wrong (bad types, missing
    fields, out-of-range values): both must be answered without a server error."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # nothing to get wrong (no parameter, no body)
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def test_fuzz_every_operation_with_a_real_key(fuzz_world, capsys):
    app = WSGIHandler()
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    counter = itertools.count(1)
    statuses: Counter = Counter()
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {fuzz_world['key']}"}

    def steer(case) -> None:
        """Point two requests in three at this shop's real objects (else nearly every id is a
        404), and give most POSTs a fresh Idempotency-Key: generated keys are short and collide,
        which would answer replays and 422s instead of running the view. Every fifth keeps its
        generated key and Authorization header, so their own checks and replays are fuzzed too."""
        n = next(counter)
        real = fuzz_world
        if n % 3 and "id" in (case.path_parameters or {}):
            name = _resource(case.operation.path.removeprefix("/api/v1"))
            if name:
                case.path_parameters["id"] = real[name][n % len(real[name])]
        if n % 3 and "evidence_id" in (case.path_parameters or {}):
            case.path_parameters["evidence_id"] = real["evidence_id"][0]
        if n % 3 and isinstance(case.body, dict):
            for field in ("after_sale", "parcel"):
                if field in case.body:
                    case.body[field] = real[field][n % len(real[field])]
            if "intercept" in case.body:
                case.body["intercept"] = real["claim_intercept"][(n // 3) % 3]
            if "order_no" in case.body:
                case.body["order_no"] = real["order_no"][n % len(real["order_no"])]
                if n % 2:
                    case.body["courier"] = "ZTO"
                    case.body["waybill_no"] = real["waybill_no"][n % len(real["waybill_no"])]
        if n % 3 and isinstance(case.query, dict) and "intercept" in case.query:
            case.query["intercept"] = real["claim_intercept"][(n // 3) % 3]
        if n % 5:  # negative cases spoil the key's header too; most should reach the view
            case.headers = {**(case.headers or {}), **auth}
        if case.method == "POST" and n % 5:
            case.headers = {**(case.headers or {}), "Idempotency-Key": f"fuzz-{n}"}

    for operation in operations:

        @given(case=_strategy(operation))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            steer(case)
            response = case.call(headers=auth)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=auth)
            except (AssertionError, BaseExceptionGroup) as exc:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{str(exc)[:2000]}"
                )

        fuzz()

    total, errors = sum(statuses.values()), sum(n for s, n in statuses.items() if s >= 500)
    with capsys.disabled():  # on the terminal even when output is captured (make fuzz)
        print(
            f"\nAPI fuzz: {total} requests over {len(operations)} operations, "
            f"{errors} answered 5xx; statuses {dict(sorted(statuses.items()))}"
        )
    assert not failures, "\n\n".join(failures[:10])
    assert errors == 0
    assert total >= MIN_REQUESTS


@pytest.mark.parametrize("when", ["0281-10-06T14:26:03-16:53", "0001-01-01T00:00:00+05:00"])
def test_a_date_whose_offset_postgresql_refuses_is_compared_in_utc_or_refused(
    client, fuzz_world, when
):
    """Found by the fuzzer: an offset beyond ±15:59 reached PostgreSQL and answered 500."""
    response = client.get(
        "/api/v1/invoice-requests/",
        {"created_before": when},
        headers={"Authorization": f"Bearer {fuzz_world['key']}"},
    )

    assert response.status_code in (200, 400), response.content[:200]
