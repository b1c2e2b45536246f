"""The ERP API's after-sales, parcels, eligibility and intercepts: each endpoint's normal path,
idempotent creates, and another shop's key finding nothing."""

import threading
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Wallet
from intercepts.models import InterceptRequest, TrackingEvent
from intercepts.tasks import api_idempotency_purge
from tests.api_client import call, make_keys
from tests.factories import make_after_sale, sandbox_served
from tests.intercepts.readiness import make_ready, zto_waybill

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(world):
    return make_keys(world)


@pytest.fixture
def ready(world, sandbox):
    """Shop A ready to intercept, ZTO served by the sandbox courier (nothing reaches it unless
    a test commits)."""
    # Kuaidi100 insists on a callback URL for ZTO; nobody listens at this one.
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    return world


def _create(client, key, world, idempotency_key="order-1", **extra):
    body = {
        "after_sale": world.after_sale_a.pk,
        "parcel": world.parcel_a.pk,
        "action": "return",
        **extra,
    }
    return call(
        client, "POST", "/api/v1/intercepts/", key, body, **{"Idempotency-Key": idempotency_key}
    )


# Normal paths.


def test_after_sales_list_and_detail(client, world, keys):
    listed = call(client, "GET", "/api/v1/after-sales/", keys.a).json()
    detail = call(client, "GET", f"/api/v1/after-sales/{world.after_sale_a.pk}/", keys.a).json()

    assert [row["id"] for row in listed["results"]] == [world.after_sale_a.pk]
    assert detail["order_no"] == world.after_sale_a.order.order_no
    assert detail["parcel_ids"] == [world.parcel_a.pk]
    assert detail["kind"] == "refund_only" and detail["status"] == "pending"


def test_parcel_detail_carries_its_tracking_events_oldest_first(client, world, keys):
    parcel = world.parcel_a
    for minutes, code in ((30, "1002"), (10, "1001")):
        TrackingEvent.objects.create(
            parcel=parcel,
            occurred_at=parcel.created_at.replace(microsecond=0) - timedelta(minutes=minutes),
            raw_code=code,
            stage="in_transit",
            description=code,
        )

    detail = call(client, "GET", f"/api/v1/parcels/{parcel.pk}/", keys.a).json()

    assert detail["waybill_no"] == parcel.waybill_no
    assert detail["receiver_phone"] == "138****1234"
    assert [event["raw_code"] for event in detail["tracking_events"]] == ["1002", "1001"]


def test_eligibility_gives_every_rule_the_fee_and_the_chance(client, ready, keys):
    response = call(
        client, "GET", f"/api/v1/parcels/{ready.parcel_a.pk}/eligibility/?action=return", keys.a
    )

    body = response.json()
    assert response.status_code == 200
    assert body["eligible"] is True
    assert body["after_sale"] == ready.after_sale_a.pk
    assert body["fee_fen"] == 300  # ZTO return, seeded
    assert {rule["code"] for rule in body["rules"]} >= {"stage_window", "wallet_funds"}
    assert body["chance"] == {"probability": 0.88, "from_own_outcomes": False, "outcomes": 0}


def test_eligibility_names_the_refusing_rules_in_chinese(client, world, keys):
    # Shop A has signed nothing and has no wallet.
    body = call(client, "GET", f"/api/v1/parcels/{world.parcel_a.pk}/eligibility/", keys.a).json()

    refused = {rule["code"]: rule["message"] for rule in body["rules"] if rule["passed"] is False}
    assert body["eligible"] is False
    assert refused["agreement_signed"] == "店铺尚未签署拦截服务协议。"


def test_create_an_intercept_holds_its_fee(client, ready, keys):
    response = _create(client, keys.a, ready)

    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "created" and body["channel"] == "api"
    assert body["fee_fen"] == 300 and body["fee_state"] == "held"
    assert body["waybill_no"] == ready.parcel_a.waybill_no


def test_create_a_change_of_address_needs_the_address(client, ready, keys):
    response = _create(client, keys.a, ready, action="redirect")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "new_address" in response.json()["details"]


def test_an_ineligible_create_names_the_rules_and_holds_nothing(client, world, keys):
    response = _create(client, keys.a, world)

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "ineligible")
    assert "agreement_signed" in {rule["code"] for rule in body["details"]["rules"]}
    assert not InterceptRequest.objects.exists()


def test_get_list_and_withdraw_an_intercept(client, ready, keys):
    made = _create(client, keys.a, ready).json()

    got = call(client, "GET", f"/api/v1/intercepts/{made['id']}/", keys.a).json()
    listed = call(client, "GET", "/api/v1/intercepts/?status=created", keys.a).json()
    withdrawn = call(client, "POST", f"/api/v1/intercepts/{made['id']}/withdraw/", keys.a)

    assert got["id"] == made["id"]
    assert [row["id"] for row in listed["results"]] == [made["id"]]
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "cancelled"
    assert withdrawn.json()["fee_state"] == "released"


def test_withdrawing_an_ended_intercept_is_refused_in_the_error_shape(client, ready, keys):
    made = _create(client, keys.a, ready).json()
    call(client, "POST", f"/api/v1/intercepts/{made['id']}/withdraw/", keys.a)

    again = call(client, "POST", f"/api/v1/intercepts/{made['id']}/withdraw/", keys.a)

    assert again.status_code == 422
    assert again.json() == {
        "code": "refused",
        "message": "该拦截已结束，无法撤回。",
        "details": {},
    }


def test_lists_filter_by_updated_since(client, ready, keys):
    made = _create(client, keys.a, ready).json()
    later = "2999-01-01T00:00:00Z"

    since = quote(made["updated_at"])  # "+08:00" must not read as a space
    since_then = call(client, "GET", f"/api/v1/intercepts/?updated_since={since}", keys.a).json()
    in_future = call(client, "GET", f"/api/v1/intercepts/?updated_since={later}", keys.a).json()

    assert [row["id"] for row in since_then["results"]] == [made["id"]]
    assert in_future["results"] == []


def test_history_rows_name_the_key(client, ready, keys):
    response = _create(client, keys.a, ready)

    intercept = InterceptRequest.objects.get(pk=response.json()["id"])
    assert intercept.channel == InterceptRequest.Channel.API
    [event] = intercept.events.all()
    assert str(event.actor) == f"API:ERP-A#{keys.key_a.prefix}"
    assert str(intercept.requested_by) == str(event.actor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_api_intercept_reaches_the_courier(ready, keys):
    from django.test import Client

    # A number the sandbox puts in transit (its last digit picks the stage).
    ready.parcel_a.waybill_no = zto_waybill("2")
    ready.parcel_a.save(update_fields=["waybill_no"])

    response = _create(Client(), keys.a, ready)

    # The send task, queued on commit, ran (eagerly) against the sandbox courier over HTTP.
    intercept = InterceptRequest.objects.get(pk=response.json()["id"])
    assert intercept.status == InterceptRequest.Status.ACCEPTED, intercept.failure_reason
    assert intercept.courier_reference.startswith("T")


# Idempotency.


def test_the_same_key_and_body_replays_the_first_answer(client, ready, keys):
    first = _create(client, keys.a, ready)
    again = _create(client, keys.a, ready)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert InterceptRequest.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(client, ready, keys):
    _create(client, keys.a, ready)

    other = _create(client, keys.a, ready, reason="another")

    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert InterceptRequest.objects.count() == 1


def test_a_create_without_an_idempotency_key_is_refused(client, ready, keys):
    body = {"after_sale": ready.after_sale_a.pk, "parcel": ready.parcel_a.pk, "action": "return"}

    response = call(client, "POST", "/api/v1/intercepts/", keys.a, body)

    assert (response.status_code, response.json()["code"]) == (400, "idempotency_key_required")


def test_keys_are_per_shop(client, ready, keys):
    make_ready(ready.shop_b, ready.other)
    body_b = {"after_sale": ready.after_sale_b.pk, "parcel": ready.parcel_b.pk, "action": "return"}

    first = _create(client, keys.a, ready, idempotency_key="same")
    second = call(
        client, "POST", "/api/v1/intercepts/", keys.b, body_b, **{"Idempotency-Key": "same"}
    )

    assert (first.status_code, second.status_code) == (201, 201)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_key_while_the_first_is_running_answers_409(ready, keys):
    """Two requests really in flight: the first waits on the wallet's row lock (held here), so
    the second with the same key arrives while the first is still running."""
    from django.test import Client

    wallet_id = Wallet.objects.get(shop=ready.shop_a).pk
    answers = {}

    def first_request():
        try:
            answers["first"] = _create(Client(), keys.a, ready, idempotency_key="race")
        finally:
            connections.close_all()

    locker = connections.create_connection("default")
    try:
        with locker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM billing_wallet WHERE id = %s FOR UPDATE", [wallet_id])
            thread = threading.Thread(target=first_request)
            thread.start()
            # Wait until the first request has claimed the key and is blocked on the lock.
            deadline = time.monotonic() + 10
            while not _claimed("race") and time.monotonic() < deadline:
                time.sleep(0.02)
            answers["second"] = _create(Client(), keys.a, ready, idempotency_key="race")
            cursor.execute("COMMIT")
        thread.join(timeout=20)
    finally:
        locker.close()

    assert (answers["second"].status_code, answers["second"].json()["code"]) == (
        409,
        "idempotency_in_progress",
    )
    assert answers["first"].status_code == 201
    assert InterceptRequest.objects.count() == 1
    third = _create(Client(), keys.a, ready, idempotency_key="race")
    assert third.status_code == 201 and third.headers["Idempotent-Replayed"] == "true"


def _claimed(key: str) -> bool:
    from shops.models import ApiIdempotencyRecord

    with transaction.atomic():
        return ApiIdempotencyRecord.objects.filter(key=key).exists()


# Another shop's key.

OBJECT_PATHS = [
    "/api/v1/after-sales/{after_sale}/",
    "/api/v1/parcels/{parcel}/",
    "/api/v1/parcels/{parcel}/eligibility/",
    "/api/v1/intercepts/{intercept}/",
]
LIST_PATHS = [
    "/api/v1/after-sales/",
    "/api/v1/parcels/",
    "/api/v1/intercepts/",
]


@pytest.fixture
def shop_a_intercept(ready, keys, client):
    return _create(client, keys.a, ready).json()["id"]


@pytest.mark.parametrize("path", OBJECT_PATHS)
def test_another_shops_key_gets_404_for_every_object(client, ready, keys, shop_a_intercept, path):
    url = path.format(
        after_sale=ready.after_sale_a.pk, parcel=ready.parcel_a.pk, intercept=shop_a_intercept
    )

    response = call(client, "GET", url, keys.b)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_another_shops_key_cannot_withdraw(client, ready, keys, shop_a_intercept):
    response = call(client, "POST", f"/api/v1/intercepts/{shop_a_intercept}/withdraw/", keys.b)

    assert response.status_code == 404
    assert InterceptRequest.objects.get(pk=shop_a_intercept).status == "created"


def test_another_shops_key_cannot_intercept_our_parcel(client, ready, keys):
    make_ready(ready.shop_b, ready.other)

    response = _create(client, keys.b, ready)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert not InterceptRequest.objects.exists()


@pytest.mark.parametrize("path", LIST_PATHS)
def test_another_shops_key_lists_none_of_our_records(client, ready, keys, shop_a_intercept, path):
    from shops.api_keys import api_key_create
    from tests.factories import MembershipFactory, ShopFactory

    shop_c = ShopFactory(name="丙店", code="shop-c")
    owner_c = MembershipFactory(user__username="owner-c", shop=shop_c).user
    _key, raw_c = api_key_create(actor=owner_c, shop=shop_c, name="ERP-C")

    response = call(client, "GET", path, raw_c)

    assert response.status_code == 200
    assert response.json()["results"] == []


# Query counts.


@pytest.mark.parametrize("path", LIST_PATHS)
def test_list_queries_do_not_grow_with_the_page(client, world, keys, path):
    def queries(n):
        with CaptureQueriesContext(connection) as ctx:
            response = call(client, "GET", f"{path}?page_size={n}", keys.a)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    for _ in range(6):
        make_after_sale(world.shop_a)
    queries(1)  # the key's first use stamps its last-used time, once a minute at most
    small, large = queries(2), queries(6)

    assert small == large


def test_answers_past_their_keeping_time_are_purged_and_the_key_is_free_again(
    client, ready, keys, settings
):
    from shops.models import ApiIdempotencyRecord

    first = _create(client, keys.a, ready)
    call(client, "POST", f"/api/v1/intercepts/{first.json()['id']}/withdraw/", keys.a)
    ApiIdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    assert api_idempotency_purge() == 1
    again = _create(client, keys.a, ready)

    # Not replayed: a new request, for the same parcel (the first one was withdrawn).
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert InterceptRequest.objects.count() == 2


def test_a_retry_takes_over_a_claim_whose_request_died(client, ready, keys):
    """The first request claimed the key, made the intercept and died before answering: a retry
    after the abandon time gets that intercept, not a 409 for 24 hours nor a second one."""
    from shops.models import ApiIdempotencyRecord

    first = _create(client, keys.a, ready, idempotency_key="dies")
    record = ApiIdempotencyRecord.objects.get(key="dies")
    ApiIdempotencyRecord.objects.filter(pk=record.pk).update(
        status="running", response_status=None, response_body=None
    )

    too_soon = _create(client, keys.a, ready, idempotency_key="dies")
    ApiIdempotencyRecord.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(minutes=6)
    )
    retried = _create(client, keys.a, ready, idempotency_key="dies")

    assert (too_soon.status_code, too_soon.json()["code"]) == (409, "idempotency_in_progress")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert retried.json()["id"] == first.json()["id"]
    assert InterceptRequest.objects.count() == 1
    assert ApiIdempotencyRecord.objects.get(pk=record.pk).status == "done"


def test_a_refusal_is_not_replayed_so_a_retry_after_the_fix_goes_through(
    client, world, sandbox, keys
):
    from intercepts.models import InterceptPolicy
    from intercepts.services.policy import shop_sign_agreement

    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    world.shop_a.intercept_agreement_signed_at = None
    world.shop_a.save(update_fields=["intercept_agreement_signed_at"])

    refused = _create(client, keys.a, world, idempotency_key="fix-then-retry")
    shop_sign_agreement(
        actor=world.owner, shop=world.shop_a, version=InterceptPolicy.current().agreement_version
    )
    retried = _create(client, keys.a, world, idempotency_key="fix-then-retry")

    assert (refused.status_code, refused.json()["code"]) == (422, "ineligible")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
