"""The unified parcel stage, ordered by progress, shared by every courier protocol."""

import functools

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class ParcelStage(models.TextChoices):
    NO_INFO = "no_info", _("No tracking yet")
    LABEL_CREATED = "label_created", _("Label created")
    PICKED_UP = "picked_up", _("Picked up")
    IN_TRANSIT = "in_transit", _("In transit")
    AT_DESTINATION_CITY = "at_destination_city", _("At destination city")
    AT_DELIVERY_STATION = "at_delivery_station", _("At delivery station")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    AWAITING_COLLECTION = "awaiting_collection", _("In locker or station")
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")
    DELIVERED = "delivered", _("Delivered")
    REJECTED = "rejected", _("Refused by receiver")
    INTERCEPTED = "intercepted", _("Intercepted")
    REDIRECTING = "redirecting", _("Redirecting to new address")
    RETURNING = "returning", _("Returning to sender")
    RETURNED = "returned", _("Returned to sender")
    HANDED_TO_OTHER_CARRIER = "handed_over", _("Handed to another courier")
    CUSTOMS = "customs", _("In customs")
    EXCEPTION = "exception", _("Exception")
    CANCELLED = "cancelled", _("Cancelled")
    LOST = "lost", _("Lost")
    STALE = "stale", _("No updates")


TERMINAL_STAGES = frozenset(
    {ParcelStage.DELIVERED, ParcelStage.RETURNED, ParcelStage.CANCELLED, ParcelStage.LOST}
)

# Where a shipment's journey ends for the platform's shipment checks: signed, refused by the
# receiver, or back with the sender (Kuaishou's 签收、拒收、退回).
SHIPMENT_FINAL_STAGES = frozenset(
    {ParcelStage.DELIVERED, ParcelStage.REJECTED, ParcelStage.RETURNED}
)

# Between pickup and delivery: the parcel is on the courier's network and not yet signed.
IN_FLIGHT_STAGES = frozenset(
    {
        ParcelStage.PICKED_UP,
        ParcelStage.IN_TRANSIT,
        ParcelStage.AT_DESTINATION_CITY,
        ParcelStage.AT_DELIVERY_STATION,
        ParcelStage.OUT_FOR_DELIVERY,
        ParcelStage.AWAITING_COLLECTION,
        ParcelStage.DELIVERY_FAILED,
    }
)


@functools.cache
def _stage_labels(language: str | None) -> dict[str, str]:
    return {stage.value: str(stage.label) for stage in ParcelStage}


def stage_label(stage: str) -> str:
    """The stage's name in the active language; lists show many, so labels are cached."""
    return _stage_labels(get_language()).get(stage, stage)


# Progress along the parcel's way; a stage is only replaced by one at least as far along,
# except for the moves in ``_ALSO_ALLOWED`` below.
STAGE_RANK: dict[str, int] = {
    ParcelStage.NO_INFO: 0,
    ParcelStage.LABEL_CREATED: 10,
    ParcelStage.PICKED_UP: 20,
    ParcelStage.IN_TRANSIT: 30,
    ParcelStage.CUSTOMS: 30,
    ParcelStage.HANDED_TO_OTHER_CARRIER: 30,
    ParcelStage.AT_DESTINATION_CITY: 40,
    ParcelStage.AT_DELIVERY_STATION: 50,
    ParcelStage.OUT_FOR_DELIVERY: 60,
    ParcelStage.DELIVERY_FAILED: 65,
    ParcelStage.AWAITING_COLLECTION: 70,
    ParcelStage.REJECTED: 75,
    ParcelStage.DELIVERED: 80,
    ParcelStage.INTERCEPTED: 85,
    ParcelStage.REDIRECTING: 86,
    ParcelStage.RETURNING: 90,
    ParcelStage.RETURNED: 100,
    ParcelStage.CANCELLED: 100,
    ParcelStage.LOST: 100,
    # Problem stages say nothing about progress; they are left by the next real scan.
    ParcelStage.EXCEPTION: 25,
    ParcelStage.STALE: 25,
}

# The forward path a parcel takes to a receiver (again, after a redirect or a problem).
_FORWARD_PATH = frozenset(
    {
        ParcelStage.PICKED_UP,
        ParcelStage.IN_TRANSIT,
        ParcelStage.CUSTOMS,
        ParcelStage.HANDED_TO_OTHER_CARRIER,
        ParcelStage.AT_DESTINATION_CITY,
        ParcelStage.AT_DELIVERY_STATION,
        ParcelStage.OUT_FOR_DELIVERY,
        ParcelStage.DELIVERY_FAILED,
        ParcelStage.AWAITING_COLLECTION,
        ParcelStage.REJECTED,
        ParcelStage.DELIVERED,
    }
)
_PROBLEMS = frozenset({ParcelStage.EXCEPTION, ParcelStage.STALE})

# Moves to a lower rank that really happen: a redirected parcel travels the forward path again
# to its new address; a parcel that failed delivery goes out again; after a problem the next
# real scan says where the parcel is; a delivered parcel can still be returned (§7.1).
_ALSO_ALLOWED: dict[str, frozenset] = {
    ParcelStage.REDIRECTING: _FORWARD_PATH,
    ParcelStage.DELIVERY_FAILED: frozenset(
        {ParcelStage.OUT_FOR_DELIVERY, ParcelStage.AT_DELIVERY_STATION}
    ),
    ParcelStage.EXCEPTION: _FORWARD_PATH | {ParcelStage.STALE},
    ParcelStage.STALE: _FORWARD_PATH | {ParcelStage.EXCEPTION},
    ParcelStage.DELIVERED: frozenset({ParcelStage.RETURNING}),
}


def stage_after(current: str, new: str) -> str:
    """The stage once an event of stage ``new`` happens to a parcel in stage ``current``.

    Events are meant to be applied in the order they happened (see ``stage_from_events``).
    """
    if new == current:
        return current
    if new in _ALSO_ALLOWED.get(current, ()):
        return new
    if current in TERMINAL_STAGES:
        return current
    if new in _PROBLEMS:
        # A problem report does not undo progress made, and a terminal stage is final.
        return (
            new if STAGE_RANK[current] <= STAGE_RANK[ParcelStage.AWAITING_COLLECTION] else current
        )
    return new if STAGE_RANK[new] >= STAGE_RANK[current] else current


def _event_order(event: tuple) -> tuple:
    occurred_at, stage = event
    # Two scans in the same second are taken in progress order, so the result never depends on
    # the order in which they were received.
    return (occurred_at, STAGE_RANK[stage], stage)


def stage_from_events(events, start: str = ParcelStage.NO_INFO) -> str:
    """Fold ``(occurred_at, stage)`` events in the order they happened."""
    stage = start
    for _occurred_at, event_stage in sorted(events, key=_event_order):
        stage = stage_after(stage, event_stage)
    return stage


def stage_with_arrivals(*, current: str, latest_at, history, arrived) -> tuple[str, object]:
    """The stage after new events arrive, and the time of the latest event now known.

    ``history`` holds the events applied before (oldest to newest or in any order), ``arrived``
    the new ones. Events newer than everything seen continue from the current stage; if any
    arrived late, the stage is worked out again from the whole history in time order. Either
    way the result is the same as if every event had arrived in the order it happened, so a
    late scan never undoes later progress; only a late final scan (delivered, cancelled ...)
    that happened before the others is taken as the parcel's real end.
    """
    arrived = list(arrived)
    if not arrived:
        return current, latest_at
    times = [occurred_at for occurred_at, _ in arrived]
    if latest_at is None or min(times) > latest_at:
        stage = stage_from_events(arrived, start=current)
    else:
        stage = stage_from_events([*history, *arrived])
    newest = max(times)
    return stage, newest if latest_at is None else max(latest_at, newest)
