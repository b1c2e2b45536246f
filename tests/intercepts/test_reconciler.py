"""The reconciler on requests whose settling was lost: it reads the parcel's stored scans since
the request was made, so a redirect delivered at its new address completes instead of failing,
and a return delivered to the buyer fails."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import FeeRule, Hold
from couriers.models import Courier
from couriers.types import TrackingScan
from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_create, intercept_set_status
from intercepts.services.sending import intercepts_reconcile
from intercepts.tracking.scans import parcel_apply_scans
from tests.intercepts.readiness import make_ready

S = InterceptRequest.Status


def _sent(world, action: str) -> InterceptRequest:
    """A request sent a while ago whose answer never came."""
    make_ready(world.shop_a, world.owner)
    FeeRule.objects.create(
        courier=Courier.objects.get(code="ZTO"),
        action="redirect",
        valid_from=timezone.now() - timedelta(days=1),
        amount_fen=500,
    )
    intercept = intercept_create(
        actor=world.agent,
        parcel=world.parcel_a,
        action=action,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=world.after_sale_a,
        new_address={"name": "李四", "phone": "139", "city": "杭州市", "address": "文三路"}
        if action == "redirect"
        else None,
    )
    intercept_set_status(
        intercept=intercept,
        to_status=S.SUBMITTED,
        source=InterceptEvent.Source.SYSTEM,
        send_attempts=1,
        last_sent_at=timezone.now() - timedelta(minutes=5),
    )
    return intercept


def _scans(parcel, *stages):
    """Stored in a test's transaction, which never commits: the settling that would follow
    the commit is lost, as with a worker killed right after it."""
    start = timezone.now()
    parcel_apply_scans(
        parcel_id=parcel.pk,
        scans=[
            TrackingScan(
                waybill_no=parcel.waybill_no,
                occurred_at=start + timedelta(minutes=index),
                raw_code=stage,
                stage=stage,
            )
            for index, stage in enumerate(stages)
        ],
        source="poll",
    )


@pytest.mark.parametrize(
    ("action", "stages", "outcome", "hold"),
    [
        ("redirect", ("redirecting", "delivered"), S.COMPLETED, Hold.Status.CAPTURED),
        ("return", ("delivered",), S.FAILED, Hold.Status.RELEASED),
        ("return", ("returning", "returned"), S.COMPLETED, Hold.Status.CAPTURED),
    ],
)
def test_a_lost_answer_is_settled_from_the_scans(world, action, stages, outcome, hold):
    intercept = _sent(world, action)
    _scans(world.parcel_a, *stages)
    assert InterceptRequest.objects.get(pk=intercept.pk).status == S.SUBMITTED
    result = intercepts_reconcile(now=timezone.now() + timedelta(minutes=2))
    assert result == {str(outcome): 1}
    intercept.refresh_from_db()
    assert intercept.status == outcome
    assert Hold.objects.get(reference=intercept.hold_reference).status == hold
    balances = billing_selectors.wallet_balances(shop_id=world.shop_a.pk)
    assert balances.held_fen == 0


def test_an_accepted_request_is_settled_from_the_scans(world):
    intercept = _sent(world, "return")
    intercept_set_status(
        intercept=intercept, to_status=S.ACCEPTED, source=InterceptEvent.Source.COURIER_ANSWER
    )
    _scans(world.parcel_a, "intercepted", "returning")
    assert intercepts_reconcile() == {"settled_from_tracking": 1}
    assert InterceptRequest.objects.get(pk=intercept.pk).status == S.SUCCEEDED
    # Nothing lingers for the next run to look at again.
    assert intercepts_reconcile() == {}
