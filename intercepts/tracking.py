"""Applying courier scans to parcels: stored once each, and the stage moved by the rules.

The events are the parcel's history: a scan is stored once (unique on parcel, time and courier
code), and the stage is whatever the stored events give in time order (see
``couriers.stages.stage_with_arrivals``), so repeated or reordered pushes change nothing.

Scans for many parcels are applied together (a poll answers for a batch of waybills): the rows
are locked in primary-key order, the known events read in one query, the new ones inserted in
one statement, and the changed parcels updated in one ``UPDATE ... FROM (VALUES ...)``.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.db import connection, transaction
from django.utils import timezone

from couriers.stages import ParcelStage, stage_with_arrivals
from couriers.types import TrackingScan
from intercepts.models import Parcel, TrackingEvent


def parcel_apply_scans(*, parcel_id: int, scans: Iterable[TrackingScan], source: str) -> Parcel:
    """Store new scans of one parcel and move its stage; safe to repeat with the same scans."""
    parcels_apply_scans(scans_by_parcel={parcel_id: list(scans)}, source=source)
    return Parcel.objects.get(pk=parcel_id)


def parcels_apply_scans(
    *, scans_by_parcel: Mapping[int, Iterable[TrackingScan]], source: str
) -> dict[int, str]:
    """Store new scans of many parcels and move their stages; returns the changed stages.

    Safe to repeat, and safe to run at the same time as a push for the same parcels (the rows
    are locked, always in the same order).
    """
    ids = sorted(scans_by_parcel)
    if not ids:
        return {}
    with transaction.atomic():
        parcels = {
            parcel.pk: parcel
            for parcel in Parcel.objects.select_for_update()
            .filter(pk__in=ids)
            .only("pk", "stage", "picked_up_at", "signed_at")
            .order_by("pk")
        }
        history: dict[int, list[tuple]] = defaultdict(list)
        known: dict[int, set[tuple]] = defaultdict(set)
        for parcel_id, occurred_at, raw_code, stage in TrackingEvent.objects.filter(
            parcel_id__in=parcels
        ).values_list("parcel_id", "occurred_at", "raw_code", "stage"):
            history[parcel_id].append((occurred_at, stage))
            known[parcel_id].add((occurred_at, raw_code))

        new_events: list[TrackingEvent] = []
        changes: dict[int, tuple] = {}
        for parcel_id in ids:
            parcel = parcels.get(parcel_id)
            if parcel is None:  # gone since it was queued
                continue
            fresh: dict[tuple, TrackingScan] = {}
            for scan in scans_by_parcel[parcel_id]:
                key = (scan.occurred_at, scan.raw_code)
                if key not in known[parcel_id]:
                    fresh.setdefault(key, scan)
            if not fresh:
                continue
            new_events.extend(
                TrackingEvent(
                    parcel_id=parcel_id,
                    occurred_at=scan.occurred_at,
                    raw_code=scan.raw_code,
                    stage=scan.stage,
                    description=scan.description[:255],
                    location=scan.location[:100],
                    source=source,
                )
                for scan in fresh.values()
            )
            past = history[parcel_id]
            arrived = [(scan.occurred_at, scan.stage) for scan in fresh.values()]
            stage, _latest = stage_with_arrivals(
                current=parcel.stage,
                latest_at=max((t for t, _ in past), default=None),
                history=past,
                arrived=arrived,
            )
            everything = past + arrived
            picked = [t for t, s in everything if s == ParcelStage.PICKED_UP]
            signed = [t for t, s in everything if s == ParcelStage.DELIVERED]
            values = (
                stage,
                min(picked) if picked else parcel.picked_up_at,
                min(signed) if signed and stage == ParcelStage.DELIVERED else None,
            )
            if values != (parcel.stage, parcel.picked_up_at, parcel.signed_at):
                changes[parcel_id] = values
        TrackingEvent.objects.bulk_create(new_events, ignore_conflicts=True, batch_size=1000)
        _update_parcels(changes)
    return {parcel_id: values[0] for parcel_id, values in changes.items()}


def _update_parcels(changes: dict[int, tuple]) -> None:
    if not changes:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        # The embedded SQLite default: few rows at a time, so a statement per parcel is fine.
        for parcel_id, (stage, picked_up_at, signed_at) in changes.items():
            Parcel.objects.filter(pk=parcel_id).update(
                stage=stage, picked_up_at=picked_up_at, signed_at=signed_at, updated_at=now
            )
        return
    rows = list(changes.items())
    placeholders = ", ".join(["(%s, %s, %s::timestamptz, %s::timestamptz)"] * len(rows))
    params: list = []
    for parcel_id, (stage, picked_up_at, signed_at) in rows:
        params += [parcel_id, stage, picked_up_at, signed_at]
    table = Parcel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS p SET stage = v.stage, picked_up_at = v.picked_up_at, "
            f"signed_at = v.signed_at, updated_at = %s "
            f"FROM (VALUES {placeholders}) AS v(id, stage, picked_up_at, signed_at) "
            f"WHERE p.id = v.id",
            [now, *params],
        )
