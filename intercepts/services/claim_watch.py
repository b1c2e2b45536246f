"""Claim suggestions: intercepts that succeeded and now look worth a claim against the courier.

An intercept is marked "claim suggested" (``claim_suggestion``, ``claim_suggested_at``) with one
reason, the strongest known:

- not back (``NOT_BACK``): it succeeded more than the policy's ``claim_suggest_after_days`` ago
  and is still not completed, so the parcel is neither back at the sender nor delivered at the
  new address. An hourly beat task looks (``claims_suggest_overdue``).
- damaged or lost (``DAMAGED``, ``LOST``): after the parcel was caught its tracking has a damage
  code of its protocol (``couriers.codes.DAMAGE_CODES``) or a lost scan. Looked at whenever
  stored scans include an exception or a loss (``claims_suggest_from_tracking``), and by the
  beat task for the intercepts it finds overdue.

"After the parcel was caught" is read on the courier's own clock where it can be: from the
earliest diversion scan since the request, or the success if that came first (a courier's
callback). A damage scan in the same batch as the diversion, after it, still counts; one from
before the parcel was caught does not.

Each mark is written once: under the row's lock, only over no reason or a weaker one (not back
< damaged < lost), with a history note and a ``claim.suggested`` webhook to the shop's ERP in
the same transaction, as the intercept's results are told. A not-back mark is withdrawn when
the intercept completes (``claim_suggestion_withdraw``, called by the tracking outcome).
"""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from couriers.codes import DAMAGE_CODES, DAMAGE_RAW_CODES
from couriers.stages import ParcelStage
from intercepts.models import InterceptEvent, InterceptPolicy, InterceptRequest, TrackingEvent
from intercepts.services.intercept_requests import intercept_note
from intercepts.services.outcomes import DIVERSION_STAGES, SCAN_CLOCK_SKEW
from shops import webhooks

logger = logging.getLogger(__name__)

Status = InterceptRequest.Status
Reason = InterceptRequest.ClaimSuggestion

# A reason replaces only a weaker one: a parcel late and then scanned damaged is damaged.
STRENGTH = {"": 0, Reason.NOT_BACK: 1, Reason.DAMAGED: 2, Reason.LOST: 3}

# One beat run marks this many per batch, and hands over after this long (Celery's soft time
# limit is 60 s); the next hour's run carries on.
BATCH = 500
BUDGET_S = 40.0

_FIELDS = ("pk", "parcel_id", "created_at", "succeeded_at", "parcel__courier__account__protocol")


def _weaker_than(reason: str) -> list[str]:
    return [known for known, strength in STRENGTH.items() if strength < STRENGTH[reason]]


def _tracking_reasons(rows: list[dict]) -> dict[int, tuple[str, str]]:
    """The strongest reason each intercept's tracking gives after its parcel was caught, with
    the courier code that said it: {intercept id: (reason, raw code)}. Two queries' worth of
    work at most, one here, whatever the number of intercepts and scans."""
    if not rows:
        return {}
    since = min(row["created_at"] for row in rows) - SCAN_CLOCK_SKEW
    scans: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
    for parcel_id, occurred_at, raw_code, stage in TrackingEvent.objects.filter(
        Q(stage__in=DIVERSION_STAGES)
        | Q(stage=ParcelStage.LOST)
        | Q(stage=ParcelStage.EXCEPTION, raw_code__in=DAMAGE_RAW_CODES),
        parcel_id__in={row["parcel_id"] for row in rows},
        occurred_at__gte=since,
    ).values_list("parcel_id", "occurred_at", "raw_code", "stage"):
        scans[parcel_id].append((occurred_at, raw_code, stage))
    reasons = {}
    for row in rows:
        mine = [s for s in scans[row["parcel_id"]] if s[0] >= row["created_at"] - SCAN_CLOCK_SKEW]
        caught = [t for t, _code, stage in mine if stage in DIVERSION_STAGES]
        if row["succeeded_at"] is not None:
            caught.append(row["succeeded_at"])
        if not caught:
            continue
        caught_at = min(caught)
        damage_codes = DAMAGE_CODES.get(row["parcel__courier__account__protocol"] or "", ())
        found = None
        for occurred_at, raw_code, stage in sorted(mine):
            if occurred_at <= caught_at:
                continue
            if stage == ParcelStage.LOST:
                found = (Reason.LOST, raw_code)
                break
            if stage == ParcelStage.EXCEPTION and raw_code in damage_codes and found is None:
                found = (Reason.DAMAGED, raw_code)
        if found is not None:
            reasons[row["pk"]] = found
    return reasons


def _note(intercept: InterceptRequest, reason: str, raw_code: str, days: int) -> str:
    redirect = intercept.action == InterceptRequest.Action.REDIRECT
    if reason == Reason.NOT_BACK:
        if redirect:
            return _(
                "Claim suggested: the parcel is not delivered at the new address %(days)d days "
                "after the intercept succeeded."
            ) % {"days": days}
        return _(
            "Claim suggested: the parcel is not back %(days)d days after the intercept succeeded."
        ) % {"days": days}
    if reason == Reason.DAMAGED:
        return _("Claim suggested: tracking shows the parcel damaged (courier code %(code)s).") % {
            "code": raw_code
        }
    return _("Claim suggested: tracking shows the parcel lost.")


def claim_suggest(
    *, intercept_id: int, reason: str, raw_code: str = "", days: int = 0, now=None
) -> bool:
    """Mark one intercept "claim suggested" for ``reason``; True if this call marked it.

    Nothing changes for an intercept already marked for this reason or a stronger one, or no
    longer in a status the reason applies to (not back: succeeded; damaged or lost: succeeded
    or completed). The mark, its history note and the ``claim.suggested`` webhook are written
    together under the intercept's row lock, so two runs at once mark it once.
    """
    statuses = (Status.SUCCEEDED,) if reason == Reason.NOT_BACK else InterceptRequest.CAUGHT
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            InterceptRequest.objects.select_for_update()
            .only("pk", "shop", "status", "action", "claim_suggestion")
            .filter(pk=intercept_id)
            .first()
        )
        if current is None or current.status not in statuses:
            return False
        if STRENGTH[current.claim_suggestion] >= STRENGTH[reason]:
            return False
        InterceptRequest.objects.filter(
            pk=intercept_id, claim_suggestion__in=_weaker_than(reason)
        ).update(claim_suggestion=reason, claim_suggested_at=now)
        # History notes are kept in the site's language, whoever's request or task wrote them.
        with translation.override(settings.LANGUAGE_CODE):
            note = _note(current, reason, raw_code, days)
        intercept_note(intercept=current, source=InterceptEvent.Source.SYSTEM, note=note)
        _emit_claim_suggested(intercept_id, shop_id=current.shop_id)
    return True


def _emit_claim_suggested(intercept_id: int, *, shop_id: int) -> None:
    """Tell the shop's ERP (its webhooks) that a claim is suggested, as its intercept results
    are told; inside the mark's transaction, after the row was written."""

    def data() -> dict:
        row = (
            InterceptRequest.objects.filter(pk=intercept_id)
            .values(
                "status",
                "action",
                "parcel__waybill_no",
                "parcel__courier__code",
                "claim_suggestion",
                "succeeded_at",
                "claim_suggested_at",
            )
            .get()
        )
        return {
            "id": intercept_id,
            "status": row["status"],
            "action": row["action"],
            "waybill": row["parcel__waybill_no"],
            "courier": row["parcel__courier__code"],
            "reason": row["claim_suggestion"],
            "succeeded_at": row["succeeded_at"],
            "suggested_at": row["claim_suggested_at"],
        }

    webhooks.webhook_emit(
        shop_id=shop_id,
        event_type=webhooks.CLAIM_SUGGESTED,
        object_type="intercept",
        object_id=intercept_id,
        data=data,
    )


def claim_suggestion_withdraw(*, intercept: InterceptRequest) -> bool:
    """Drop a not-back mark once the intercept completed (the parcel came back, or reached the
    new address); a damage or loss mark stays. Call it in the completing move's transaction."""
    if not InterceptRequest.objects.filter(
        pk=intercept.pk, status=Status.COMPLETED, claim_suggestion=Reason.NOT_BACK
    ).update(claim_suggestion="", claim_suggested_at=None):
        return False
    with translation.override(settings.LANGUAGE_CODE):
        if intercept.action == InterceptRequest.Action.REDIRECT:
            note = _("Claim suggestion withdrawn: the parcel was delivered at the new address.")
        else:
            note = _("Claim suggestion withdrawn: the parcel is back at the sender.")
    intercept_note(intercept=intercept, source=InterceptEvent.Source.SYSTEM, note=note)
    return True


def claims_suggest_from_tracking(*, parcel_ids: Iterable[int]) -> int:
    """Mark the caught intercepts on these parcels whose stored tracking, after the catch,
    shows damage or loss; returns how many were marked. Called once new scans with an
    exception or a loss are committed; bounded queries for the whole set of parcels."""
    parcel_ids = sorted(set(parcel_ids))
    if not parcel_ids:
        return 0
    rows = list(
        InterceptRequest.objects.filter(
            parcel_id__in=parcel_ids, status__in=InterceptRequest.CAUGHT
        )
        .exclude(claim_suggestion=Reason.LOST)
        .order_by("pk")
        .values(*_FIELDS, "claim_suggestion")
    )
    marked_for = {row["pk"]: row["claim_suggestion"] for row in rows}
    marked = 0
    for pk, (reason, raw_code) in _tracking_reasons(rows).items():
        if STRENGTH[marked_for[pk]] >= STRENGTH[reason]:
            continue  # marked so already: no lock taken, nothing written
        try:
            marked += claim_suggest(intercept_id=pk, reason=reason, raw_code=raw_code)
        except Exception:
            # One intercept's trouble must not stop the others (nor undo the scans).
            logger.exception("Suggesting a claim on intercept #%s failed", pk)
    return marked


def claims_suggest_overdue(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Mark the intercepts that succeeded more than the policy's days ago and are still not
    completed; returns how many were marked. Tracking that shows damage or loss gives its
    stronger reason instead. Safe to run twice: a marked intercept leaves the queue."""
    now = now or timezone.now()
    days = InterceptPolicy.current().claim_suggest_after_days
    due = InterceptRequest.objects.filter(
        status=Status.SUCCEEDED,
        claim_suggested_at__isnull=True,
        succeeded_at__lte=now - timedelta(days=days),
    ).order_by("succeeded_at", "pk")
    deadline = time.monotonic() + BUDGET_S
    marked, after = 0, None
    while True:
        page = due
        if after is not None:
            # Keyset paging: one that failed to mark is not met again in this run.
            page = due.filter(
                Q(succeeded_at__gt=after[0]) | Q(succeeded_at=after[0], pk__gt=after[1])
            )
        rows = list(page.values(*_FIELDS)[:batch])
        if not rows:
            break
        tracking = _tracking_reasons(rows)
        for row in rows:
            reason, raw_code = tracking.get(row["pk"], (Reason.NOT_BACK, ""))
            try:
                marked += claim_suggest(
                    intercept_id=row["pk"], reason=reason, raw_code=raw_code, days=days, now=now
                )
            except Exception:
                logger.exception("Suggesting a claim on intercept #%s failed", row["pk"])
        after = (rows[-1]["succeeded_at"], rows[-1]["pk"])
        if len(rows) < batch or time.monotonic() > deadline:
            break
    return marked
