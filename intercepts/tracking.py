"""Applying courier scans to parcels: stored once each, and the stage moved by the rules.

The events are the parcel's history: a scan is stored once (unique on parcel, time and courier
code), and the stage is whatever the stored events give in time order (see
``couriers.stages.stage_with_arrivals``), so repeated or reordered pushes change nothing.
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from couriers.stages import ParcelStage, stage_with_arrivals
from couriers.types import TrackingScan
from intercepts.models import Parcel, TrackingEvent


def parcel_apply_scans(*, parcel_id: int, scans: Iterable[TrackingScan], source: str) -> Parcel:
    """Store new scans of one parcel and move its stage; safe to repeat with the same scans."""
    with transaction.atomic():
        parcel = Parcel.objects.select_for_update().get(pk=parcel_id)
        known = set(parcel.tracking_events.values_list("occurred_at", "raw_code"))
        fresh: dict[tuple, TrackingScan] = {}
        for scan in scans:
            key = (scan.occurred_at, scan.raw_code)
            if key not in known:
                fresh.setdefault(key, scan)
        if not fresh:
            return parcel
        history = list(parcel.tracking_events.values_list("occurred_at", "stage"))
        latest_at = parcel.tracking_events.aggregate(latest=Max("occurred_at"))["latest"]
        TrackingEvent.objects.bulk_create(
            [
                TrackingEvent(
                    parcel=parcel,
                    occurred_at=scan.occurred_at,
                    raw_code=scan.raw_code,
                    stage=scan.stage,
                    description=scan.description[:255],
                    location=scan.location[:100],
                    source=source,
                )
                for scan in fresh.values()
            ],
            ignore_conflicts=True,
        )
        arrived = [(scan.occurred_at, scan.stage) for scan in fresh.values()]
        stage, _latest = stage_with_arrivals(
            current=parcel.stage, latest_at=latest_at, history=history, arrived=arrived
        )
        all_events = history + arrived
        fields = {"stage": stage}
        picked = [t for t, s in all_events if s == ParcelStage.PICKED_UP]
        if picked:
            fields["picked_up_at"] = min(picked)
        signed = [t for t, s in all_events if s == ParcelStage.DELIVERED]
        fields["signed_at"] = min(signed) if signed and stage == ParcelStage.DELIVERED else None
        changed = {k: v for k, v in fields.items() if getattr(parcel, k) != v}
        if changed:
            Parcel.objects.filter(pk=parcel.pk).update(**changed, updated_at=timezone.now())
            for name, value in changed.items():
                setattr(parcel, name, value)
    return parcel
