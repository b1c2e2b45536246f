"""Sending intercept requests and withdrawals to the couriers, and the reconciler.

Courier calls happen here, in Celery tasks, outside any transaction; every change they lead to
goes through ``intercept_set_status`` with the statuses it expects to move from, so a second run,
a late answer or a push that overtook the answer moves nothing twice.

A request is sent once it is created: moved to submitted first (the claim), then the courier
asked; its answer accepts or rejects it. No answer (a timeout, a worker that died) leaves it
submitted, and the reconciler asks again. Asked again, a courier that already holds our
instruction says so ("already intercepted"), which is its acceptance.
"""

import logging
from datetime import timedelta

from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.adapters import get_adapter
from couriers.adapters.base import (
    AuthenticationError,
    CourierError,
    RateLimitedError,
    RefusedError,
    TransientError,
    Waybill,
)
from couriers.adapters.common import FailureReason
from couriers.adapters.sf import SERVICE_CODES as SF_SERVICE_CODES
from couriers.ratelimit import RateLimiter
from intercepts.eligibility import ADAPTER_ACTIONS
from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_note, intercept_set_status
from intercepts.services.outcomes import (
    RESULT_STAGES,
    after_acceptance,
    intercepts_follow_tracking,
    intercepts_settle_from_tracking,
    parcel_stages_since,
)
from intercepts.tracking.polling import protocol_code
from shops.models import EwaybillAccount

logger = logging.getLogger(__name__)


Status = InterceptRequest.Status


Source = InterceptEvent.Source


# The reconciler asks again about a request unanswered this long, then less and less often.
RECONCILE_AFTER = timedelta(seconds=60)


RECONCILE_MAX_WAIT = timedelta(minutes=30)


# After this many sends without an answer the request fails and its fee is released.
MAX_SEND_ATTEMPTS = 8


# A request still created this long after it was made lost its task (a broker outage).
SEND_LOST_AFTER = timedelta(seconds=60)


RECONCILE_LOCK = "intercepts:reconcile:running"


RECONCILE_LOCK_S = 600


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


def why_unanswered(exc: CourierError) -> str:
    """Why the courier gave no answer, in the merchant's words; the technical detail (an
    exception's text, in English) goes to the log only."""
    if isinstance(exc, AuthenticationError):
        return _("the platform's gateway account was refused; platform staff are looking at it")
    if isinstance(exc, RateLimitedError):
        return _("the courier's gateway is busy")
    if isinstance(exc, TransientError):
        return _("the courier's gateway could not be reached or did not answer in time")
    return _("the courier's gateway answered with an error")


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
            after_acceptance(intercept, reference)
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
            % {"error": why_unanswered(exc)},
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
    after_acceptance(intercept, answer.reference)
    return "accepted" if moved else "skipped"


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
        count(intercept_withdrawal_send(intercept_id=pk))
    if intercepts_settle_from_tracking(limit=limit * 10):
        count("settled_from_tracking")
    return outcomes


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
                intercept.parcel_id: parcel_stages_since(intercept.parcel_id, intercept.created_at)
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


def intercept_withdrawal_send(*, intercept_id: int) -> str:
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
