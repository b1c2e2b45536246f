"""The ERP API's claims: filing with evidence (multipart, under an Idempotency-Key), the
ceiling before filing, list, detail, evidence files and withdrawal; every endpoint against the
cast of callers (the shop's own key, another shop's, a revoked, an expired, one used from an
address it may not be, none, a signed-in browser without a key), each with its one answer."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.client import encode_multipart
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services as billing_services
from claims import services
from claims.models import Claim, ClaimEvidence
from couriers.models import Courier
from intercepts.models import InterceptRequest
from shops.api_keys import api_key_create, api_key_revoke
from shops.models import ApiKey
from tests.api_client import call, make_keys
from tests.claims.conftest import (
    intercept_succeeded,
    jpeg_bytes,
    pdf_bytes,
    stored_files,
    upload,
)
from tests.factories import OrderLineFactory, ParcelFactory, make_after_sale, make_intercept

pytestmark = pytest.mark.django_db

EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


@pytest.fixture
def keys(world):
    return make_keys(world)


def _file(client, key, intercept_id, *, files=(), idempotency_key="claim-1", **fields):
    """POST a claim as an ERP does: multipart/form-data, the files under ``evidence``."""
    data = {
        "intercept": intercept_id,
        "reason": "lost",
        "amount_claimed_fen": 12900,
        "description": "退回途中丢失",
        **fields,
    }
    if files:
        data["evidence"] = list(files)
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post("/api/v1/claims/", data, headers=headers)


def _photo(name="photo.jpg", data=None):
    return upload(name, data if data is not None else jpeg_bytes(), "image/jpeg")


# --- Filing ----------------------------------------------------------------------------------


def test_file_a_claim_with_a_jpeg(client, world, keys, caught_a, evidence_dir):
    photo = jpeg_bytes()

    response = _file(client, keys.a, caught_a.pk, files=[_photo("外包装.jpg", photo)])

    body = response.json()
    assert response.status_code == 201, body
    assert (body["status"], body["channel"], body["reason"]) == ("submitted", "online", "lost")
    assert (body["goods_value_fen"], body["ceiling_fen"], body["amount_claimed_fen"]) == (
        12900,
        12900,
        12900,
    )
    assert body["intercept"] == caught_a.pk and body["waybill_no"] == world.parcel_a.waybill_no
    assert (body["courier"], body["courier_phone"]) == ("ZTO", "95311")
    [evidence] = body["evidence"]
    assert evidence["name"] == "外包装.jpg"
    assert (evidence["content_type"], evidence["size"]) == ("image/jpeg", len(photo))
    assert evidence["sha256"] == hashlib.sha256(photo).hexdigest()
    assert [(e["from_status"], e["to_status"]) for e in body["events"]] == [(None, "submitted")]
    assert len(stored_files(evidence_dir)) == 1
    claim = Claim.objects.get()
    assert str(claim.filed_by) == f"API:ERP-A#{keys.key_a.prefix}"


def test_a_renamed_executable_is_refused_in_chinese_and_nothing_is_stored(
    client, keys, caught_a, evidence_dir
):
    response = _file(
        client, keys.a, caught_a.pk, files=[_photo("good.jpg"), _photo("photo.jpg", EXECUTABLE)]
    )

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "evidence_refused")
    assert body["message"] == (
        "“photo.jpg”不是照片（JPEG、PNG、WebP）或 PDF（无论文件名如何），凭证只接受这几种文件。"
    )
    assert body["details"] == {"evidence": [body["message"]]}
    assert not Claim.objects.exists()
    assert not ClaimEvidence.objects.exists()
    assert stored_files(evidence_dir) == []


def test_a_zero_byte_file_is_refused_by_the_content_check(client, keys, caught_a, evidence_dir):
    response = _file(client, keys.a, caught_a.pk, files=[_photo("empty.jpg", b"")])

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "evidence_refused")
    assert "“empty.jpg”是空文件" in body["message"]
    assert stored_files(evidence_dir) == []


def test_more_than_the_ceiling_is_refused_with_the_ceiling(client, keys, caught_a, evidence_dir):
    response = _file(client, keys.a, caught_a.pk, amount_claimed_fen=12901, files=[_photo()])

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "over_ceiling")
    assert body["message"] == (
        "此包裹最多可索赔 129.00 元（不超过包裹内商品价值，且最高 1,000.00 元）。"
    )
    assert body["details"] == {"ceiling_fen": 12900}
    assert not Claim.objects.exists()
    assert stored_files(evidence_dir) == []


def test_goods_worth_1500_yuan_are_claimed_up_to_1000(client, world, keys, wallet_a, evidence_dir):
    parcel = ParcelFactory(order__shop=world.shop_a)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=150_000)])
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)

    over = _file(client, keys.a, intercept.pk, amount_claimed_fen=100_001)
    at_most = _file(client, keys.a, intercept.pk, amount_claimed_fen=100_000, idempotency_key="2")

    assert (over.status_code, over.json()["details"]) == (422, {"ceiling_fen": 100_000})
    assert at_most.status_code == 201
    assert (at_most.json()["goods_value_fen"], at_most.json()["ceiling_fen"]) == (150_000, 100_000)


def test_a_claim_on_an_intercept_that_did_not_succeed_is_refused(
    client, world, keys, wallet_a, evidence_dir
):
    accepted = make_intercept(
        world.owner,
        world.parcel_a,
        world.after_sale_a,
        InterceptRequest.Status.SUBMITTED,
        InterceptRequest.Status.ACCEPTED,
    )

    response = _file(client, keys.a, accepted.pk, files=[_photo()])

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "not_succeeded")
    assert body["message"] == "只有拦截成功的包裹才能申请索赔；此拦截的状态为“快递已受理”。"
    assert not Claim.objects.exists()
    assert stored_files(evidence_dir) == []


def test_a_second_claim_on_the_intercept_is_refused(client, keys, claim_a):
    response = _file(client, keys.a, claim_a.intercept_id, idempotency_key="another")

    body = response.json()
    assert (response.status_code, body["code"]) == (422, "already_claimed")
    assert body["message"] == f"此拦截已申请过索赔 #{claim_a.pk}。"
    assert Claim.objects.count() == 1


def test_the_fields_are_checked_before_anything(client, keys, caught_a):
    response = _file(client, keys.a, caught_a.pk, reason="stolen", amount_claimed_fen="12.9")

    body = response.json()
    assert (response.status_code, body["code"]) == (400, "invalid")
    assert set(body["details"]) == {"reason", "amount_claimed_fen"}


def test_a_json_body_is_refused_as_unsupported(client, keys, caught_a):
    body = {"intercept": caught_a.pk, "reason": "lost", "amount_claimed_fen": 100}

    response = call(client, "POST", "/api/v1/claims/", keys.a, body, **{"Idempotency-Key": "j"})

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert not Claim.objects.exists()


# --- Idempotency -----------------------------------------------------------------------------


def test_the_same_key_and_request_replays_the_same_claim(client, keys, caught_a, evidence_dir):
    photo = jpeg_bytes()

    first = _file(client, keys.a, caught_a.pk, files=[_photo(data=photo)])
    again = _file(client, keys.a, caught_a.pk, files=[_photo(data=photo)])

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Claim.objects.count() == 1
    assert len(stored_files(evidence_dir)) == 1


def test_a_replay_sent_with_another_multipart_boundary_is_the_same_request(
    client, keys, caught_a, evidence_dir
):
    """Clients pick a random boundary for each request: the same fields and files are the same
    request, whatever the bytes between them."""
    photo = jpeg_bytes()

    def send(boundary):
        data = {
            "intercept": caught_a.pk,
            "reason": "damaged",
            "amount_claimed_fen": 5000,
            "evidence": [_photo(data=photo)],
        }
        return client.post(
            "/api/v1/claims/",
            encode_multipart(boundary, data),
            content_type=f"multipart/form-data; boundary={boundary}",
            headers={"Authorization": f"Bearer {keys.a}", "Idempotency-Key": "boundary"},
        )

    first, again = send("----erp7MA4YWxkTrZu0gW"), send("----erpQ2hZ0e9fK8XvB3c")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Claim.objects.count() == 1


def test_a_body_larger_than_what_django_holds_in_memory_is_fingerprinted_from_its_files(
    client, keys, caught_a, evidence_dir, settings
):
    """Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE whole; a few photos are
    more than its default 2.5 MB. Their files are fingerprinted where the parser put them."""
    photo = jpeg_bytes(size=(320, 240))
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(photo) // 2

    first = _file(client, keys.a, caught_a.pk, files=[_photo(data=photo)])
    again = _file(client, keys.a, caught_a.pk, files=[_photo(data=photo)])

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_file_name_with_control_characters_is_kept_without_them(
    client, keys, caught_a, evidence_dir
):
    # Django's multipart parser drops them; a NUL would not fit the name's column.
    response = _file(client, keys.a, caught_a.pk, files=[_photo("破损\x00\x07照片.jpg")])

    assert response.status_code == 201, response.content
    assert response.json()["evidence"][0]["name"] == "破损照片.jpg"


def test_the_same_key_with_another_file_is_refused(client, keys, caught_a, evidence_dir):
    _file(client, keys.a, caught_a.pk, files=[_photo(data=jpeg_bytes())])

    other = _file(client, keys.a, caught_a.pk, files=[_photo(data=jpeg_bytes(color=(1, 2, 3)))])

    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Claim.objects.count() == 1
    assert len(stored_files(evidence_dir)) == 1


def test_a_claim_without_an_idempotency_key_is_refused(client, keys, caught_a):
    response = _file(client, keys.a, caught_a.pk, idempotency_key=None)

    assert (response.status_code, response.json()["code"]) == (400, "idempotency_key_required")
    assert not Claim.objects.exists()


def test_a_refusal_is_not_kept_so_the_fixed_request_goes_through(client, keys, caught_a):
    refused = _file(client, keys.a, caught_a.pk, files=[_photo("a.jpg", EXECUTABLE)])
    fixed = _file(client, keys.a, caught_a.pk, files=[_photo("a.jpg")])

    assert (refused.status_code, fixed.status_code) == (422, 201)
    assert "Idempotent-Replayed" not in fixed.headers


# --- The ceiling -----------------------------------------------------------------------------


def _ceiling(client, key, intercept_id):
    return call(client, "GET", f"/api/v1/claims/ceiling/?intercept={intercept_id}", key)


def test_the_ceiling_before_filing(client, world, keys, caught_a):
    response = _ceiling(client, keys.a, caught_a.pk)

    assert response.status_code == 200
    assert response.json() == {
        "intercept": caught_a.pk,
        "parcel": world.parcel_a.pk,
        "waybill_no": world.parcel_a.waybill_no,
        "courier": "ZTO",
        "goods_value_fen": 12900,
        "ceiling_fen": 12900,
        "claimable": True,
        "refusal_code": None,
        "refusal": "",
    }


def test_the_ceiling_says_why_no_claim_can_be_filed(client, keys, claim_a):
    body = _ceiling(client, keys.a, claim_a.intercept_id).json()

    assert (body["claimable"], body["refusal_code"]) == (False, "already_claimed")
    assert body["refusal"] == f"此拦截已申请过索赔 #{claim_a.pk}。"
    assert body["ceiling_fen"] == 12900


def test_the_ceiling_of_an_intercept_still_in_progress(client, world, keys, wallet_a):
    waiting = make_intercept(world.owner, world.parcel_a, world.after_sale_a)

    body = _ceiling(client, keys.a, waiting.pk).json()

    assert (body["claimable"], body["refusal_code"]) == (False, "not_succeeded")
    assert body["refusal"].startswith("只有拦截成功的包裹才能申请索赔")


def test_a_parcel_without_valued_goods_has_nothing_to_claim(
    client, world, keys, wallet_a, evidence_dir
):
    parcel = ParcelFactory(order__shop=world.shop_a)  # no order lines of its own
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)

    ceiling = _ceiling(client, keys.a, intercept.pk).json()
    filed = _file(client, keys.a, intercept.pk, amount_claimed_fen=100)

    assert (ceiling["ceiling_fen"], ceiling["claimable"], ceiling["refusal_code"]) == (
        0,
        False,
        "no_value",
    )
    assert ceiling["refusal"] == "此包裹内商品没有记录价值，无可索赔金额。"
    assert (filed.status_code, filed.json()["code"]) == (422, "no_value")


def test_the_ceiling_needs_an_intercept(client, keys):
    response = call(client, "GET", "/api/v1/claims/ceiling/", keys.a)

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "intercept" in response.json()["details"]


# --- Reading ---------------------------------------------------------------------------------


@pytest.fixture
def claim_b(world):
    """Shop B's own claim, filed by its owner."""
    wallet = billing_services.wallet_open(actor=world.other, shop_id=world.shop_b.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=10_000, external_reference="BANK-CLAIMS-B"
    )
    caught = make_intercept(
        world.other,
        world.parcel_b,
        world.after_sale_b,
        InterceptRequest.Status.SUBMITTED,
        InterceptRequest.Status.SUCCEEDED,
    )
    return services.claim_file(
        actor=world.other, intercept=caught, reason=Claim.Reason.DAMAGED, amount_claimed_fen=500
    )


def test_the_list_shows_only_the_keys_shops_claims(client, keys, claim_a, claim_b):
    listed_a = call(client, "GET", "/api/v1/claims/", keys.a).json()
    listed_b = call(client, "GET", "/api/v1/claims/", keys.b).json()

    assert [row["id"] for row in listed_a["results"]] == [claim_a.pk]
    assert [row["id"] for row in listed_b["results"]] == [claim_b.pk]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("status=submitted", True),
        ("status=withdrawn", False),
        ("reason=lost", True),
        ("courier=ZTO", True),
        ("courier=YTO", False),
        ("created_after=2000-01-01T00:00:00%2B08:00", True),
        ("created_before=2000-01-01T00:00:00Z", False),
        ("updated_since=2999-01-01T00:00:00Z", False),
    ],
)
def test_the_list_filters(client, keys, claim_a, query, found):
    response = call(client, "GET", f"/api/v1/claims/?{query}", keys.a)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == ([claim_a.pk] if found else [])


def test_the_list_filters_by_intercept(client, world, keys, claim_a):
    mine = call(client, "GET", f"/api/v1/claims/?intercept={claim_a.intercept_id}", keys.a)
    other = call(client, "GET", f"/api/v1/claims/?intercept={claim_a.intercept_id + 1}", keys.a)

    assert [row["id"] for row in mine.json()["results"]] == [claim_a.pk]
    assert other.json()["results"] == []


def test_the_list_pages_by_cursor(client, world, keys, claim_a):
    response = call(client, "GET", "/api/v1/claims/?page_size=1", keys.a)

    assert set(response.json()) == {"next", "previous", "results"}


def test_a_claim_with_its_evidence_history_and_the_couriers_phone(client, keys, claim_a):
    response = call(client, "GET", f"/api/v1/claims/{claim_a.pk}/", keys.a)

    body = response.json()
    assert response.status_code == 200
    assert (body["courier_name"], body["courier_phone"]) == (
        "中通快递",
        Courier.objects.get(code="ZTO").service_phone,
    )
    [evidence] = body["evidence"]
    stored = ClaimEvidence.objects.get()
    assert evidence == {
        "id": stored.pk,
        "name": "photo.jpg",
        "content_type": "image/jpeg",
        "size": stored.size,
        "sha256": stored.sha256,
        "uploaded_at": evidence["uploaded_at"],
    }
    assert [e["to_status"] for e in body["events"]] == ["submitted"]
    # No file path or URL of the storage is ever shown.
    assert stored.file.name not in response.content.decode()


def test_the_list_queries_do_not_grow_with_the_page(client, world, keys, wallet_a, evidence_dir):
    for _ in range(5):
        after_sale, parcel = make_after_sale(world.shop_a)
        caught = intercept_succeeded(world, parcel=parcel, after_sale=after_sale)
        services.claim_file(
            actor=world.owner, intercept=caught, reason="lost", amount_claimed_fen=100
        )

    def queries(n):
        with CaptureQueriesContext(connection) as ctx:
            response = call(client, "GET", f"/api/v1/claims/?page_size={n}", keys.a)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    queries(1)  # the key's first use stamps its last-used time
    assert queries(2) == queries(5)


# --- Evidence files --------------------------------------------------------------------------


def _evidence_url(claim):
    evidence = claim.evidence.get()
    return f"/api/v1/claims/{claim.pk}/evidence/{evidence.pk}/"


def test_the_shops_key_fetches_an_evidence_file(client, keys, caught_a, evidence_dir):
    scan = pdf_bytes()
    made = _file(client, keys.a, caught_a.pk, files=[upload("签收单.pdf", scan)]).json()
    url = f"/api/v1/claims/{made['id']}/evidence/{made['evidence'][0]['id']}/"

    response = call(client, "GET", url, keys.a, Accept="application/json")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == scan
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "private, no-store"


def test_an_evidence_file_of_another_claim_is_not_found_under_this_one(
    client, world, keys, claim_a, wallet_a
):
    after_sale, parcel = make_after_sale(world.shop_a)
    caught = intercept_succeeded(world, parcel=parcel, after_sale=after_sale)
    second = services.claim_file(
        actor=world.owner,
        intercept=caught,
        reason="lost",
        amount_claimed_fen=100,
        files=[_photo()],
    )
    evidence = second.evidence.get()

    response = call(client, "GET", f"/api/v1/claims/{claim_a.pk}/evidence/{evidence.pk}/", keys.a)

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


# --- Withdrawal ------------------------------------------------------------------------------


def _withdraw(client, key, claim):
    return call(client, "POST", f"/api/v1/claims/{claim.pk}/withdraw/", key)


def test_withdraw_a_claim(client, keys, claim_a):
    response = _withdraw(client, keys.a, claim_a)

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "withdrawn"
    assert [(e["from_status"], e["to_status"]) for e in body["events"]] == [
        (None, "submitted"),
        ("submitted", "withdrawn"),
    ]


def test_withdrawing_twice_answers_the_withdrawn_claim(client, keys, claim_a):
    first = _withdraw(client, keys.a, claim_a)
    again = _withdraw(client, keys.a, claim_a)

    assert (again.status_code, again.json()) == (200, first.json())
    assert claim_a.events.count() == 2


def test_an_approved_claim_can_no_longer_be_withdrawn(client, world, keys, claim_a):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=12900)

    response = _withdraw(client, keys.a, claim_a)

    assert response.status_code == 422
    assert response.json() == {
        "code": "not_withdrawable",
        "message": "“已核准”的索赔不能再撤回。",
        "details": {},
    }
    claim_a.refresh_from_db()
    assert claim_a.status == Claim.Status.APPROVED


# --- The cast --------------------------------------------------------------------------------

OPERATIONS = [
    "POST /api/v1/claims/",
    "GET /api/v1/claims/",
    "GET /api/v1/claims/ceiling/",
    "GET /api/v1/claims/{claim}/",
    "GET /api/v1/claims/{claim}/evidence/{evidence}/",
    "POST /api/v1/claims/{claim}/withdraw/",
]
# What each caller is answered: (status, what the body shows).
EXPECTED = {
    "own": {
        "POST /api/v1/claims/": (201, "filed"),
        "GET /api/v1/claims/": (200, "ours"),
        "GET /api/v1/claims/ceiling/": (200, "ceiling"),
        "GET /api/v1/claims/{claim}/": (200, "ours"),
        "GET /api/v1/claims/{claim}/evidence/{evidence}/": (200, "file"),
        "POST /api/v1/claims/{claim}/withdraw/": (200, "withdrawn"),
    },
    "other": {
        "POST /api/v1/claims/": (404, "not_found"),
        "GET /api/v1/claims/": (200, "empty"),
        "GET /api/v1/claims/ceiling/": (404, "not_found"),
        "GET /api/v1/claims/{claim}/": (404, "not_found"),
        "GET /api/v1/claims/{claim}/evidence/{evidence}/": (404, "not_found"),
        "POST /api/v1/claims/{claim}/withdraw/": (404, "not_found"),
    },
    "revoked": dict.fromkeys(OPERATIONS, (401, "key_revoked")),
    "expired": dict.fromkeys(OPERATIONS, (401, "key_expired")),
    "elsewhere": dict.fromkeys(OPERATIONS, (403, "ip_not_allowed")),
    "none": dict.fromkeys(OPERATIONS, (401, "not_authenticated")),
    # The owner signed in to the workbench, no key: a cookie is not a key.
    "session": dict.fromkeys(OPERATIONS, (401, "not_authenticated")),
}
CALLERS = list(EXPECTED)


@pytest.fixture
def cast(world, keys, claim_a):
    """Shop A's claim (with its photo) and a second intercept of shop A that succeeded, to file
    on; the keys of the cast."""
    after_sale, parcel = make_after_sale(world.shop_a)
    second = intercept_succeeded(world, parcel=parcel, after_sale=after_sale)
    revoked, raw_revoked = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP-old")
    api_key_revoke(actor=world.owner, key=revoked)
    expired, raw_expired = api_key_create(
        actor=world.owner,
        shop=world.shop_a,
        name="ERP-expired",
        expires_at=timezone.now() + timedelta(days=1),
    )
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    _elsewhere, raw_elsewhere = api_key_create(
        actor=world.owner, shop=world.shop_a, name="ERP-office", allowed_ips=["192.0.2.0/24"]
    )
    return {
        "keys": {
            "own": keys.a,
            "other": keys.b,
            "revoked": raw_revoked,
            "expired": raw_expired,
            "elsewhere": raw_elsewhere,
            "none": None,
            "session": None,
        },
        "claim": claim_a,
        "evidence": claim_a.evidence.get(),
        "second": second,
    }


def _ask(client, cast, operation, key):
    method, path = operation.split(" ", 1)
    claim = cast["claim"]
    url = path.format(claim=claim.pk, evidence=cast["evidence"].pk)
    if operation == "POST /api/v1/claims/":
        return _file(client, key, cast["second"].pk, files=[_photo()], amount_claimed_fen=100)
    if operation == "GET /api/v1/claims/ceiling/":
        url += f"?intercept={claim.intercept_id}"
    return call(client, method, url, key)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_endpoint_answers_each_caller_once_and_for_all(
    client, world, cast, operation, caller
):
    expected_status, expected = EXPECTED[caller][operation]
    if caller == "session":
        client.force_login(world.owner)

    response = _ask(client, cast, operation, cast["keys"][caller])

    assert response.status_code == expected_status
    claim = cast["claim"]
    if expected == "file":
        assert b"".join(response.streaming_content) == cast["evidence"].file.open("rb").read()
        return
    body = response.json()
    if expected == "filed":
        assert body["intercept"] == cast["second"].pk and body["status"] == "submitted"
    elif expected == "ours":
        ids = [row["id"] for row in body["results"]] if "results" in body else [body["id"]]
        assert ids == [claim.pk]
    elif expected == "ceiling":
        assert (body["intercept"], body["ceiling_fen"]) == (claim.intercept_id, 12900)
    elif expected == "withdrawn":
        assert body["status"] == "withdrawn"
    elif expected == "empty":
        assert body["results"] == []
    else:
        assert body["code"] == expected
    if caller != "own":
        # Nothing of shop A's changed.
        claim.refresh_from_db()
        assert claim.status == Claim.Status.SUBMITTED
        assert Claim.objects.count() == 1
        assert ClaimEvidence.objects.count() == 1
