"""What happened to a sent intercept: the courier's callbacks and the parcel's tracking.

A diversion scan (intercepted, returning, redirecting) succeeds a request, delivery before any
diversion fails it, and the parcel back at the sender (or delivered at the new address)
completes it. Every move goes through ``intercept_set_status`` with the statuses it expects.
"""

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.adapters.common import FailureReason, InterceptUpdate
from couriers.stages import TERMINAL_STAGES, ParcelStage
from intercepts.models import InterceptEvent, InterceptRequest, Parcel, TrackingEvent
from intercepts.services.intercept_requests import intercept_set_status
from intercepts.tracking.polling import intercept_poll_delay

logger = logging.getLogger(__name__)


Status = InterceptRequest.Status


Source = InterceptEvent.Source


# Scans that show the courier caught the parcel, and those that end the request's story.
DIVERSION_STAGES = frozenset(
    {
        ParcelStage.INTERCEPTED,
        ParcelStage.REDIRECTING,
        ParcelStage.RETURNING,
        ParcelStage.RETURNED,
    }
)


RESULT_STAGES = DIVERSION_STAGES | {ParcelStage.DELIVERED}


# Scans are timed by the courier's clock: a result scan a little before the request is kept.
SCAN_CLOCK_SKEW = timedelta(minutes=10)


def after_acceptance(intercept: InterceptRequest, reference: str) -> None:
    """What follows the courier's acceptance, however it came: its reference kept (a callback
    may have accepted the request before the answer arrived, without one) and an early poll."""
    if reference:
        InterceptRequest.objects.filter(pk=intercept.pk, courier_reference="").update(
            courier_reference=reference[:64]
        )
    _poll_soon(intercept.parcel_id)


def _poll_soon(parcel_id: int) -> None:
    """Bring the parcel's next tracking poll forward: its result is awaited."""
    soon = timezone.now() + intercept_poll_delay()
    Parcel.objects.filter(pk=parcel_id).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__gt=soon)
    ).exclude(stage__in=TERMINAL_STAGES).update(next_poll_at=soon)


def intercepts_settle_from_tracking(*, limit: int = 1000) -> int:
    """Requests waiting for a result their parcel's tracking already shows (the settling that
    follows a tracking update was lost with its worker): settled from the stored scans."""
    # Only requests the parcel's stage would move: nothing lingers to be looked at each run.
    Action = InterceptRequest.Action
    waiting = (
        InterceptRequest.objects.filter(
            Q(status__in=(Status.SUBMITTED, Status.ACCEPTED), parcel__stage__in=RESULT_STAGES)
            | Q(status=Status.SUCCEEDED, action=Action.RETURN, parcel__stage=ParcelStage.RETURNED)
            | Q(
                status=Status.SUCCEEDED,
                action=Action.REDIRECT,
                parcel__stage=ParcelStage.DELIVERED,
            )
        )
        .values_list("parcel_id", "created_at")
        .order_by("pk")[:limit]
    )
    stages_seen = {
        parcel_id: parcel_stages_since(parcel_id, created_at) for parcel_id, created_at in waiting
    }
    return intercepts_follow_tracking(stages_seen=stages_seen, source="reconciler")


def parcel_stages_since(parcel_id: int, since) -> set[str]:
    """The stages of a parcel's stored scans since a request was made, and its stage now."""
    scanned = TrackingEvent.objects.filter(
        parcel_id=parcel_id, occurred_at__gte=since - SCAN_CLOCK_SKEW
    ).values_list("stage", flat=True)
    return set(scanned) | set(Parcel.objects.filter(pk=parcel_id).values_list("stage", flat=True))


def _event_source(source: str) -> str:
    if source == "poll":
        return Source.POLL
    if source == "reconciler":
        return Source.RECONCILER
    return Source.PUSH


def intercepts_follow_tracking(*, stages_seen: Mapping[int, set[str]], source: str) -> int:
    """Move the requests on these parcels by the stages their new scans showed.

    ``stages_seen`` maps a parcel to every stage among its new scans (and its resulting
    stage); only parcels that saw a result stage are looked at. Returns how many moved.
    """
    relevant = [pk for pk, stages in stages_seen.items() if stages & RESULT_STAGES]
    if not relevant:
        return 0
    event_source = _event_source(source)
    moved = 0
    requests = InterceptRequest.objects.filter(
        parcel_id__in=relevant, status__in=(Status.SUBMITTED, Status.ACCEPTED, Status.SUCCEEDED)
    ).order_by("pk")
    for intercept in requests:
        try:
            moved += _follow(intercept, stages_seen[intercept.parcel_id], event_source)
        except Exception:
            # One request's trouble (a hold gone missing) must not stop the others; the
            # reconciler settles it again from the stored scans.
            logger.exception("Settling intercept #%s from tracking failed", intercept.pk)
    return moved


def _follow(intercept: InterceptRequest, seen: set[str], event_source: str) -> int:
    """Move one request by the stages its parcel's new scans showed; returns the moves made."""
    moved = 0
    status = intercept.status
    if status in (Status.SUBMITTED, Status.ACCEPTED):
        if seen & DIVERSION_STAGES:
            if intercept_set_status(
                intercept=intercept,
                to_status=Status.SUCCEEDED,
                source=event_source,
                from_statuses=(Status.SUBMITTED, Status.ACCEPTED),
                note=_("Tracking shows the parcel caught."),
            ):
                moved += 1
                status = Status.SUCCEEDED
        elif ParcelStage.DELIVERED in seen:
            reason = _("The parcel was delivered before the intercept took effect.")
            moved += intercept_set_status(
                intercept=intercept,
                to_status=Status.FAILED,
                source=event_source,
                from_statuses=(Status.SUBMITTED, Status.ACCEPTED),
                note=reason,
                failure_code=FailureReason.ALREADY_DELIVERED,
                failure_reason=reason,
            )
            return moved
    if status == Status.SUCCEEDED:
        returning = intercept.action == InterceptRequest.Action.RETURN
        arrived = ParcelStage.RETURNED if returning else ParcelStage.DELIVERED
        if arrived in seen:
            # The claim watch imports this module's stages.
            from intercepts.services.claim_watch import claim_suggestion_withdraw

            with transaction.atomic():
                if intercept_set_status(
                    intercept=intercept,
                    to_status=Status.COMPLETED,
                    source=event_source,
                    from_statuses=(Status.SUCCEEDED,),
                    note=_("Back at the sender.")
                    if returning
                    else _("Delivered to the new address."),
                ):
                    moved += 1
                    # The parcel came back: "not back in time" no longer holds.
                    claim_suggestion_withdraw(intercept=intercept)
    return moved


def intercept_updates_apply(*, account_id: int, updates: list[dict]) -> int:
    """Apply a courier's intercept callbacks (kuaidi100 results, SF notices); returns how many
    requests moved. A callback for a request we no longer hold open changes nothing."""
    moved = 0
    for update in updates:
        waybill_no = update.get("waybill_no") or ""
        intercept = (
            InterceptRequest.objects.filter(
                parcel__waybill_no=waybill_no,
                parcel__courier__account_id=account_id,
                status__in=(Status.SUBMITTED, Status.ACCEPTED),
            )
            .order_by("-pk")
            .first()
        )
        if intercept is None:
            continue
        reference = update.get("reference") or ""
        if intercept.courier_reference and reference and reference != intercept.courier_reference:
            logger.info("Intercept callback for %s names %s, not ours", waybill_no, reference)
            continue
        payload = {key: str(value) for key, value in update.items() if value not in (None, "")}
        status = update.get("status")
        if status == InterceptUpdate.SUCCEEDED:
            to_status, fields = Status.SUCCEEDED, {}
            note = update.get("reason") or _("The courier reports the parcel caught.")
        elif status == InterceptUpdate.FAILED:
            reason = update.get("reason") or _("The courier could not catch the parcel.")
            to_status, note = Status.FAILED, reason
            fields = {
                "failure_code": update.get("reason_code") or FailureReason.MISSED_AT_NODE,
                "failure_reason": reason[:255],
            }
        elif status == InterceptUpdate.IN_PROGRESS and intercept.status == Status.SUBMITTED:
            to_status, fields, note = Status.ACCEPTED, {}, _("The courier is working on it.")
        else:
            continue
        try:
            if intercept_set_status(
                intercept=intercept,
                to_status=to_status,
                source=Source.PUSH,
                from_statuses=(Status.SUBMITTED, Status.ACCEPTED),
                note=note,
                payload=payload,
                **fields,
            ):
                moved += 1
                if to_status == Status.ACCEPTED:
                    after_acceptance(intercept, reference)
        except Exception:
            # One request's trouble must not stop the others; tracking settles it later.
            logger.exception("Applying a courier callback to intercept #%s failed", intercept.pk)
    return moved
