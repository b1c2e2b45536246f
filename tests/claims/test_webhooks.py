"""A claim's status changes reach the shop's ERP as ``claim.status_changed`` webhooks: a real
receiver on 127.0.0.1 checks each delivery with README's verification code and sees the
filing (through the API), the passing to the courier, the approval and the payment, in order,
with the data the API docs and README document."""

import pytest
from django.utils import timezone

from claims import services
from claims.api.examples import WEBHOOK_DATA
from claims.models import Claim
from shops import webhooks
from shops.models import WebhookDelivery
from tests.api_client import make_keys
from tests.claims.conftest import jpeg_bytes, upload
from tests.shops.test_outbound_webhooks import Receiver, verify_webhook

pytestmark = pytest.mark.django_db

# What ``data`` carries, as the schema's claim page and README document it.
DATA_KEYS = set(WEBHOOK_DATA)


def test_a_claims_filing_and_moves_arrive_in_order_and_signed(
    client, world, caught_a, django_capture_on_commit_callbacks
):
    keys = make_keys(world)
    with Receiver([], fail_first=1) as receiver:
        _endpoint, secret = webhooks.webhook_endpoint_create(
            actor=world.owner, shop=world.shop_a, url=receiver.url
        )
        receiver.secrets.append(secret)
        with django_capture_on_commit_callbacks(execute=True):
            filed = client.post(
                "/api/v1/claims/",
                {
                    "intercept": caught_a.pk,
                    "reason": "damaged",
                    "amount_claimed_fen": 12900,
                    "evidence": [upload("破损.jpg", jpeg_bytes(), "image/jpeg")],
                },
                headers={"Authorization": f"Bearer {keys.a}", "Idempotency-Key": "hook-1"},
            )
        claim = Claim.objects.get(pk=filed.json()["id"])
        with django_capture_on_commit_callbacks(execute=True):
            services.claim_send_to_courier(actor=world.cs, claim=claim)
            services.claim_approve(
                actor=world.cs, claim=claim, amount_fen=10000, note="外包装轻微破损，按比例赔付"
            )
            services.claim_pay(actor=world.finance, claim=claim)
        # The filing's first delivery failed: the later events waited behind it. Its retry
        # falls due, then the chain goes on.
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).update(
            next_attempt_at=timezone.now()
        )
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhooks_send_due()

    claim_requests = [
        r for r in receiver.requests if r["json"]["type"] == webhooks.CLAIM_STATUS_CHANGED
    ]
    moves = [
        (r["status"], r["json"]["data"]["from"], r["json"]["data"]["status"])
        for r in claim_requests
    ]
    assert filed.status_code == 201
    assert moves == [
        (500, None, "submitted"),
        (200, None, "submitted"),
        (200, "submitted", "with_courier"),
        (200, "with_courier", "approved"),
        (200, "approved", "paid"),
    ]
    assert all(r["verified"] for r in claim_requests)
    assert all(verify_webhook(r["body"], r["signature"], secret) for r in claim_requests)
    taken = [r["json"] for r in claim_requests if r["status"] == 200]
    assert {(p["shop"], p["type"]) for p in taken} == {("shop-a", "claim.status_changed")}
    assert all(set(p["data"]) == DATA_KEYS for p in taken)
    assert taken[0]["data"] == {
        "id": claim.pk,
        "status": "submitted",
        "from": None,
        "reason": "damaged",
        "channel": "online",
        "intercept": caught_a.pk,
        "waybill": world.parcel_a.waybill_no,
        "courier": "ZTO",
        "amount_claimed_fen": 12900,
        "amount_approved_fen": None,
        "payout": None,
        "updated_at": taken[0]["data"]["updated_at"],
    }
    paid = taken[-1]["data"]
    assert (paid["amount_approved_fen"], paid["payout"]) == (10000, "wallet")
