"""Applying courier scans to parcels: stored once each, and the stage moved by the rules.

The events are the parcel's history: a scan is stored once (unique on parcel, time and courier
code), and the stage is whatever the stored events give in time order (see
``couriers.stages.stage_with_arrivals``), so repeated or reordered pushes change nothing.

Scans for many parcels are applied together (a poll answers for a chunk of waybills): the rows
are locked in primary-key order, the known events read in one query, the new ones inserted in
one statement, and the parcels updated in one ``UPDATE ... FROM unnest(...)`` (each column a
list, which psycopg sends as one array parameter). A poll also passes how to reschedule, so the
next poll time rides in that same statement.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from couriers.stages import SHIPMENT_FINAL_STAGES, ParcelStage, stage_with_arrivals
from couriers.types import TrackingScan
from intercepts.models import Parcel, TrackingEvent

# Given a parcel (its id) and its stage after the scans, when to ask about it next (None: never).
Reschedule = Callable[[int, str], datetime | None]

# New scans of these stages may make a caught parcel's intercept worth a claim (a damage code,
# a loss): those parcels are looked at once the scans are committed.
CLAIM_WATCH_STAGES = frozenset({ParcelStage.EXCEPTION, ParcelStage.LOST})


def parcel_apply_scans(*, parcel_id: int, scans: Iterable[TrackingScan], source: str) -> Parcel:
    """Store new scans of one parcel and move its stage; safe to repeat with the same scans."""
    parcels_apply_scans(scans_by_parcel={parcel_id: list(scans)}, source=source)
    return Parcel.objects.get(pk=parcel_id)


def parcels_apply_scans(
    *,
    scans_by_parcel: Mapping[int, Iterable[TrackingScan]],
    source: str,
    reschedule: Reschedule | None = None,
) -> dict[int, str]:
    """Store new scans of many parcels and move their stages; returns the changed stages.

    With ``reschedule`` (polling), every parcel named, with scans or without, also gets its next
    poll time from its resulting stage and its failure count cleared, in the same statement.

    Safe to repeat, and safe to run at the same time as a push for the same parcels (the rows
    are locked, always in the same order).
    """
    ids = sorted(scans_by_parcel)
    if not ids:
        return {}
    with transaction.atomic():
        parcels = {
            pk: (stage, picked_up_at, signed_at)
            for pk, stage, picked_up_at, signed_at in Parcel.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "stage", "picked_up_at", "signed_at")
        }
        with_scans = [pk for pk in ids if pk in parcels and scans_by_parcel[pk]]
        history: dict[int, list[tuple]] = defaultdict(list)
        known: dict[int, set[tuple]] = defaultdict(set)
        if with_scans:
            for parcel_id, occurred_at, raw_code, stage in TrackingEvent.objects.filter(
                parcel_id__in=with_scans
            ).values_list("parcel_id", "occurred_at", "raw_code", "stage"):
                history[parcel_id].append((occurred_at, stage))
                known[parcel_id].add((occurred_at, raw_code))

        new_events: list[tuple[int, TrackingScan]] = []
        changes: dict[int, tuple] = {}
        stages_seen: dict[int, set[str]] = {}
        troubled: list[int] = []
        for parcel_id in with_scans:
            current = parcels[parcel_id]
            fresh: dict[tuple, TrackingScan] = {}
            for scan in scans_by_parcel[parcel_id]:
                key = (scan.occurred_at, scan.raw_code)
                if key not in known[parcel_id]:
                    fresh.setdefault(key, scan)
            if not fresh:
                continue
            new_events.extend((parcel_id, scan) for scan in fresh.values())
            if any(scan.stage in CLAIM_WATCH_STAGES for scan in fresh.values()):
                troubled.append(parcel_id)
            past = history[parcel_id]
            arrived = [(scan.occurred_at, scan.stage) for scan in fresh.values()]
            stage, _latest = stage_with_arrivals(
                current=current[0],
                latest_at=max((t for t, _ in past), default=None),
                history=past,
                arrived=arrived,
            )
            everything = past + arrived
            picked = [t for t, s in everything if s == ParcelStage.PICKED_UP]
            signed = [t for t, s in everything if s == ParcelStage.DELIVERED]
            values = (
                stage,
                min(picked) if picked else current[1],
                min(signed) if signed and stage == ParcelStage.DELIVERED else None,
            )
            if values != current:
                changes[parcel_id] = values
                stages_seen[parcel_id] = {stage, *(s for _t, s in arrived)}
        _insert_events(new_events, source)
        if reschedule is None:
            rows = {pk: (*values, None) for pk, values in changes.items()}
        else:
            rows = {}
            for pk, current in parcels.items():
                values = changes.get(pk, current)
                rows[pk] = (*values, reschedule(pk, values[0]))
        _update_parcels(rows, with_schedule=reschedule is not None)
        if stages_seen:
            # A diversion or a delivery settles the parcels' intercept requests once these
            # scans are committed, each in a short transaction of its own: a batch holds no
            # wallet locks, and one request's trouble cannot undo the scans (the reconciler
            # settles from the stored scans whatever is lost here). The import is late: the
            # intercept services import the tracking modules.
            from intercepts.services.outcomes import RESULT_STAGES, intercepts_follow_tracking

            results = {pk: seen for pk, seen in stages_seen.items() if seen & RESULT_STAGES}
            if results:
                transaction.on_commit(
                    lambda: intercepts_follow_tracking(stages_seen=results, source=source)
                )
        checked = [
            pk
            for pk, values in changes.items()
            if values[0] in SHIPMENT_FINAL_STAGES or values[1] != parcels[pk][1]
        ]
        if checked:
            # A pickup before payment, or a final stage that clears a stall (late import: the
            # shipment checks import the services that import this module).
            from intercepts.services.shipment_checks import shipments_check_tracking

            transaction.on_commit(lambda: shipments_check_tracking(parcel_ids=checked))
        if troubled:
            # After the settling above (registered first, so run first): a parcel caught and
            # scanned damaged in one batch is judged with its intercept already succeeded.
            from intercepts.services.claim_watch import claims_suggest_from_tracking

            transaction.on_commit(lambda: claims_suggest_from_tracking(parcel_ids=troubled))
    return {parcel_id: values[0] for parcel_id, values in changes.items()}


def _insert_events(events: list[tuple[int, TrackingScan]], source: str) -> None:
    if not events:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        TrackingEvent.objects.bulk_create(
            [
                TrackingEvent(
                    parcel_id=parcel_id,
                    occurred_at=scan.occurred_at,
                    raw_code=scan.raw_code,
                    stage=scan.stage,
                    description=scan.description[:255],
                    location=scan.location[:100],
                    source=source,
                    received_at=now,
                )
                for parcel_id, scan in events
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        return
    # One statement of six arrays, each one parameter, whatever the number of events.
    table = TrackingEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (parcel_id, occurred_at, raw_code, stage, description, "
            f"location, source, received_at) "
            f"SELECT p, o, c, s, d, l, %s, %s FROM unnest("
            f"%s::bigint[], %s::timestamptz[], %s::varchar[], %s::varchar[], %s::varchar[], "
            f"%s::varchar[]) AS e(p, o, c, s, d, l) "
            f"ON CONFLICT (parcel_id, occurred_at, raw_code) DO NOTHING",
            [
                source,
                now,
                [parcel_id for parcel_id, _scan in events],
                [scan.occurred_at for _pk, scan in events],
                [scan.raw_code for _pk, scan in events],
                [scan.stage for _pk, scan in events],
                [scan.description[:255] for _pk, scan in events],
                [scan.location[:100] for _pk, scan in events],
            ],
        )


def _update_parcels(rows: dict[int, tuple], *, with_schedule: bool) -> None:
    """Write (stage, picked up, signed, next poll) per parcel; the last only ``with_schedule``."""
    if not rows:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        # The embedded SQLite default: few rows at a time, so a statement per parcel is fine.
        for parcel_id, (stage, picked_up_at, signed_at, next_poll_at) in rows.items():
            fields = {"stage": stage, "picked_up_at": picked_up_at, "signed_at": signed_at}
            if with_schedule:
                fields |= {"next_poll_at": next_poll_at, "poll_failures": 0}
                fields |= {"poll_leased_until": None}
            Parcel.objects.filter(pk=parcel_id).update(**fields, updated_at=now)
        return
    assignments = "stage = v.stage, picked_up_at = v.picked_up_at, signed_at = v.signed_at"
    if with_schedule:
        assignments += (
            ", next_poll_at = v.next_poll_at, poll_failures = 0, poll_leased_until = NULL"
        )
    columns = list(zip(*([parcel_id, *values] for parcel_id, values in rows.items()), strict=True))
    table = Parcel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS p SET {assignments}, updated_at = %s "
            f"FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::timestamptz[], "
            f"%s::timestamptz[]) AS v(id, stage, picked_up_at, signed_at, next_poll_at) "
            f"WHERE p.id = v.id",
            [now, *map(list, columns)],
        )
