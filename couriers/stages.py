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
