"""Intercepts and the couriers: sending requests and withdrawals, and reading the results.

Courier calls happen here, in Celery tasks, outside any transaction; every change they lead to
goes through ``services.intercept_set_status`` with the statuses it expects to move from, so a
second run, a late answer or a push that overtook the answer moves nothing twice.

- A request is sent once it is created: moved to submitted first (the claim), then the courier
  asked; its answer accepts or rejects it. No answer (a timeout, a worker that died) leaves it
  submitted, and the reconciler asks again. Asked again, a courier that already holds our
  instruction says so ("already intercepted"), which is its acceptance.
- Results come from the courier's intercept callbacks (``intercept_updates_apply``) and from
  tracking (``intercepts_follow_tracking``, called by every tracking update): a diversion scan
  (intercepted, returning, redirecting) succeeds a request, delivery before any diversion fails
  it, and the parcel back at the sender (or delivered at the new address) completes it.
"""

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.core.cache import cache
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.adapters import get_adapter
from couriers.adapters.base import AuthenticationError, CourierError, RefusedError, Waybill
from couriers.adapters.common import FailureReason, InterceptUpdate
from couriers.adapters.sf import SERVICE_CODES as SF_SERVICE_CODES
from couriers.ratelimit import RateLimiter
from couriers.stages import TERMINAL_STAGES, ParcelStage
from intercepts.eligibility import ADAPTER_ACTIONS
from intercepts.models import InterceptEvent, InterceptRequest, Parcel, TrackingEvent
from intercepts.polling import intercept_poll_delay, protocol_code
from intercepts.services import intercept_note, intercept_set_status
from shops.models import EwaybillAccount

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

# The reconciler asks again about a request unanswered this long, then less and less often.
RECONCILE_AFTER = timedelta(seconds=60)
RECONCILE_MAX_WAIT = timedelta(minutes=30)
# After this many sends without an answer the request fails and its fee is released.
MAX_SEND_ATTEMPTS = 8
# A request still created this long after it was made lost its task (a broker outage).
SEND_LOST_AFTER = timedelta(seconds=60)
RECONCILE_LOCK = "intercepts:reconcile:running"
RECONCILE_LOCK_S = 600
# Scans are timed by the courier's clock: a result scan a little before the request is kept.
SCAN_CLOCK_SKEW = timedelta(minutes=10)


def _waybill(intercept: InterceptRequest, protocol: str) -> Waybill:
    parcel = intercept.parcel
    ewaybill_account = (
        EwaybillAccount.objects.filter(shop_id=parcel.shop_id, courier_id=parcel.courier_id)
        .values_list("account_no", flat=True)
        .first()
    )
    return Waybill(
        waybill_no=parcel.waybill_no,
        courier_code=parcel.courier.code,
        protocol_code=protocol_code(parcel.courier, protocol),
        phone_tail=parcel.receiver_phone[-4:],
        ewaybill_account=ewaybill_account or "",
    )


def _close(adapter) -> None:
    close = getattr(adapter, "close", None)  # HTTP adapters keep a connection open
    if close is not None:
        close()


def _load(intercept_id: int) -> InterceptRequest | None:
    return (
        InterceptRequest.objects.select_related("parcel__courier__account")
        .filter(pk=intercept_id)
        .first()
    )


def intercept_send(*, intercept_id: int) -> str:
    """Send a created request to its courier and record the answer; returns what happened.

    Only a request still created is sent here (claimed by moving it to submitted), so running
    this twice sends once; a request left submitted is the reconciler's.
    """
    intercept = _load(intercept_id)
    if intercept is None or intercept.status != Status.CREATED:
        return "skipped"
    claimed = intercept_set_status(
        intercept=intercept,
        to_status=Status.SUBMITTED,
        source=Source.SYSTEM,
        from_statuses=(Status.CREATED,),
        send_attempts=F("send_attempts") + 1,
        last_sent_at=timezone.now(),
    )
    if not claimed:
        return "skipped"
    return _ask_courier(intercept, source=Source.COURIER_ANSWER, resent=False)


def _ask_courier(intercept: InterceptRequest, *, source: str, resent: bool) -> str:
    account = intercept.parcel.courier.account
    if account is None or not account.is_active:
        intercept_set_status(
            intercept=intercept,
            to_status=Status.REJECTED,
            source=source,
            from_statuses=(Status.SUBMITTED,),
            note=_("The courier has no gateway account that takes intercepts."),
            failure_code=FailureReason.CARRIER_NOT_SUPPORTED,
            failure_reason=_("The courier has no gateway account that takes intercepts."),
        )
        return "rejected"
    limiter = RateLimiter(f"account:{account.pk}", per_second=account.requests_per_second)
    if not limiter.acquire(max_wait_s=5):
        intercept_note(
            intercept=intercept, source=source, note=_("The courier's rate limit; asked later.")
        )
        return "unanswered"
    adapter = get_adapter(account.config())
    try:
        answer = adapter.request_intercept(
            _waybill(intercept, account.protocol),
            action=ADAPTER_ACTIONS[intercept.action],
            reason=intercept.reason or _("The buyer asked for a refund"),
            new_address=intercept.new_address or None,
        )
    except RefusedError as exc:
        if resent and exc.reason_code == FailureReason.ALREADY_INTERCEPTED:
            # Our earlier send reached the courier; only its answer was lost.
            moved = intercept_set_status(
                intercept=intercept,
                to_status=Status.ACCEPTED,
                source=source,
                from_statuses=(Status.SUBMITTED,),
                note=_("The courier already had this request."),
                payload={"reason_code": exc.reason_code, "reason": exc.reason},
            )
            # The gateways do not repeat their reference on a duplicate; SF's is the service
            # code it was asked for, known without asking.
            reference = ""
            if account.protocol == "sf":
                reference = SF_SERVICE_CODES.get(ADAPTER_ACTIONS[intercept.action], "")
            _accepted(intercept, reference)
            return "accepted" if moved else "skipped"
        moved = intercept_set_status(
            intercept=intercept,
            to_status=Status.REJECTED,
            source=source,
            from_statuses=(Status.SUBMITTED,),
            note=exc.reason,
            payload={"reason_code": exc.reason_code, "reason": exc.reason},
            failure_code=exc.reason_code,
            failure_reason=exc.reason[:255],
        )
        return "rejected" if moved else "skipped"
    except CourierError as exc:
        # Timeouts, resets, a gateway error, bad credentials: no answer; asked again later.
        # Bad credentials need someone to fix the account, so they are logged as errors.
        level = logging.ERROR if isinstance(exc, AuthenticationError) else logging.WARNING
        logger.log(level, "Intercept #%s: no answer from %s: %s", intercept.pk, account, exc)
        intercept_note(
            intercept=intercept,
            source=source,
            note=_("No answer from the courier (%(error)s); it will be asked again.")
            % {"error": str(exc)[:150]},
        )
        return "unanswered"
    finally:
        _close(adapter)
    moved = intercept_set_status(
        intercept=intercept,
        to_status=Status.ACCEPTED,
        source=source,
        from_statuses=(Status.SUBMITTED,),
        payload={"reference": answer.reference, "raw": answer.raw[:2000]},
        courier_reference=answer.reference[:64],
    )
    _accepted(intercept, answer.reference)
    return "accepted" if moved else "skipped"


def _accepted(intercept: InterceptRequest, reference: str) -> None:
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


# --- The reconciler ----------------------------------------------------------------------------


def reconcile_wait(attempts: int) -> timedelta:
    """How long after its last send an unanswered request is asked about again."""
    return min(RECONCILE_AFTER * 2 ** max(0, attempts - 1), RECONCILE_MAX_WAIT)


def intercepts_reconcile(*, now=None, limit: int = 100) -> dict[str, int]:
    """Settle what a lost answer, task or push left behind: resend the unanswered, send the
    unsent, retry stale withdrawals, and settle requests whose parcel's tracking already shows
    the result. One run at a time (beat starts one a minute; a slow courier can make a run
    longer than that)."""
    if not cache.add(RECONCILE_LOCK, 1, timeout=int(RECONCILE_LOCK_S)):
        return {"locked": 1}
    try:
        return _reconcile(now or timezone.now(), limit)
    finally:
        cache.delete(RECONCILE_LOCK)


def _reconcile(now, limit: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    unsent = InterceptRequest.objects.filter(
        status=Status.CREATED, created_at__lt=now - SEND_LOST_AFTER
    ).values_list("pk", flat=True)[:limit]
    for pk in unsent:
        count(intercept_send(intercept_id=pk))
    # Few requests are ever unanswered at once; read them all and take the due ones, oldest
    # first, so that requests waiting out their back-off never crowd out due ones.
    candidates = InterceptRequest.objects.filter(
        status=Status.SUBMITTED, last_sent_at__lt=now - RECONCILE_AFTER
    ).order_by("last_sent_at")
    due = [
        pk
        for pk, attempts, last_sent_at in candidates.values_list(
            "pk", "send_attempts", "last_sent_at"
        )[:5000]
        if last_sent_at <= now - reconcile_wait(attempts)
    ]
    for pk in due[:limit]:
        count(intercept_resend(intercept_id=pk, now=now))
    stale_withdrawals = InterceptRequest.objects.filter(
        status=Status.ACCEPTED, withdraw_requested_at__lt=now - RECONCILE_AFTER
    ).values_list("pk", flat=True)[:limit]
    for pk in stale_withdrawals:
        count(intercept_withdraw_send(intercept_id=pk))
    if intercepts_settle_from_tracking(limit=limit * 10):
        count("settled_from_tracking")
    return outcomes


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
        parcel_id: _stages_since(parcel_id, created_at) for parcel_id, created_at in waiting
    }
    return intercepts_follow_tracking(stages_seen=stages_seen, source="reconciler")


def _stages_since(parcel_id: int, since) -> set[str]:
    """The stages of a parcel's stored scans since a request was made, and its stage now."""
    scanned = TrackingEvent.objects.filter(
        parcel_id=parcel_id, occurred_at__gte=since - SCAN_CLOCK_SKEW
    ).values_list("stage", flat=True)
    return set(scanned) | set(Parcel.objects.filter(pk=parcel_id).values_list("stage", flat=True))


def intercept_resend(*, intercept_id: int, now=None) -> str:
    """Ask the courier again about a request left submitted. Claimed by a conditional update of
    its send time, so two reconcilers never ask at once."""
    now = now or timezone.now()
    intercept = _load(intercept_id)
    if intercept is None or intercept.status != Status.SUBMITTED:
        return "skipped"
    claimed = InterceptRequest.objects.filter(
        pk=intercept.pk, status=Status.SUBMITTED, last_sent_at=intercept.last_sent_at
    ).update(send_attempts=F("send_attempts") + 1, last_sent_at=now)
    if not claimed:
        return "skipped"
    # What tracking already shows settles it without asking.
    stage = intercept.parcel.stage
    if stage in RESULT_STAGES:
        intercepts_follow_tracking(
            stages_seen={
                intercept.parcel_id: _stages_since(intercept.parcel_id, intercept.created_at)
            },
            source="reconciler",
        )
        intercept.refresh_from_db()
        if intercept.status != Status.SUBMITTED:
            return str(intercept.status)
    if intercept.send_attempts + 1 > MAX_SEND_ATTEMPTS:
        reason = _("The courier did not answer after %(count)d tries.") % {
            "count": MAX_SEND_ATTEMPTS
        }
        intercept_set_status(
            intercept=intercept,
            to_status=Status.FAILED,
            source=Source.RECONCILER,
            from_statuses=(Status.SUBMITTED,),
            note=reason,
            failure_code=FailureReason.TIMEOUT,
            failure_reason=reason,
        )
        return "failed"
    return _ask_courier(intercept, source=Source.RECONCILER, resent=True)


# --- Withdrawals ---------------------------------------------------------------------------------


def intercept_withdraw_send(*, intercept_id: int) -> str:
    """Ask the courier to drop an accepted request the merchant withdrew; safe to run twice."""
    intercept = _load(intercept_id)
    if (
        intercept is None
        or intercept.status != Status.ACCEPTED
        or intercept.withdraw_requested_at is None
    ):
        return "skipped"
    # Claimed by moving the asked-at time, so a second run (or the reconciler) does not ask
    # the courier at the same time.
    claimed = InterceptRequest.objects.filter(
        pk=intercept.pk,
        status=Status.ACCEPTED,
        withdraw_requested_at=intercept.withdraw_requested_at,
    ).update(withdraw_requested_at=timezone.now())
    if not claimed:
        return "skipped"
    account = intercept.parcel.courier.account
    if account is None or not account.is_active:
        return _withdrawal_refused(
            intercept, _("The courier has no gateway account that takes withdrawals.")
        )
    adapter = get_adapter(account.config())
    try:
        answer = adapter.cancel_intercept(
            _waybill(intercept, account.protocol), reference=intercept.courier_reference
        )
    except RefusedError as exc:
        return _withdrawal_refused(intercept, exc.reason)
    except CourierError as exc:
        logger.warning("Withdrawing intercept #%s: no answer: %s", intercept.pk, exc)
        return _withdrawal_refused(
            intercept, _("The courier did not answer; try again in a moment.")
        )
    finally:
        _close(adapter)
    moved = intercept_set_status(
        intercept=intercept,
        to_status=Status.CANCELLED,
        source=Source.COURIER_ANSWER,
        from_statuses=(Status.ACCEPTED,),
        note=_("The courier dropped the request."),
        payload={"raw": answer.raw[:2000]},
    )
    return "cancelled" if moved else "skipped"


def _withdrawal_refused(intercept: InterceptRequest, reason: str) -> str:
    InterceptRequest.objects.filter(pk=intercept.pk).update(withdraw_requested_at=None)
    intercept_note(
        intercept=intercept,
        source=Source.COURIER_ANSWER,
        note=_("Withdrawal refused: %(reason)s") % {"reason": reason},
    )
    return "withdrawal_refused"


# --- Results -------------------------------------------------------------------------------------


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
            moved += intercept_set_status(
                intercept=intercept,
                to_status=Status.COMPLETED,
                source=event_source,
                from_statuses=(Status.SUCCEEDED,),
                note=_("Back at the sender.") if returning else _("Delivered to the new address."),
            )
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
                    _accepted(intercept, reference)
        except Exception:
            # One request's trouble must not stop the others; tracking settles it later.
            logger.exception("Applying a courier callback to intercept #%s failed", intercept.pk)
    return moved
