"""Scans applied to parcels: stored once, reordering changes nothing, the stage never goes back."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from couriers.stages import ParcelStage as S
from couriers.types import TrackingScan
from intercepts.models import Parcel, TrackingEvent
from intercepts.tracking.scans import parcel_apply_scans
from tests.factories import ParcelFactory

T0 = timezone.now() - timedelta(days=3)


def scan(parcel, hours, stage, code=None):
    return TrackingScan(
        waybill_no=parcel.waybill_no,
        occurred_at=T0 + timedelta(hours=hours),
        raw_code=code or stage,
        stage=stage,
        description=f"{stage} scan",
    )


@pytest.fixture
def parcel(db):
    return ParcelFactory(stage=S.LABEL_CREATED)


def test_scans_move_the_stage_and_set_the_times(parcel):
    scans = [
        scan(parcel, 1, S.PICKED_UP),
        scan(parcel, 5, S.IN_TRANSIT),
        scan(parcel, 9, S.DELIVERED),
    ]
    result = parcel_apply_scans(parcel_id=parcel.pk, scans=scans, source="test")
    parcel.refresh_from_db()
    assert parcel.stage == result.stage == S.DELIVERED
    assert parcel.picked_up_at == scans[0].occurred_at
    assert parcel.signed_at == scans[2].occurred_at
    assert parcel.tracking_events.count() == 3


def test_a_repeated_push_changes_nothing(parcel):
    scans = [scan(parcel, 1, S.PICKED_UP), scan(parcel, 5, S.IN_TRANSIT)]
    parcel_apply_scans(parcel_id=parcel.pk, scans=scans, source="test")
    before = Parcel.objects.get(pk=parcel.pk).updated_at
    parcel_apply_scans(parcel_id=parcel.pk, scans=scans + scans, source="test")
    assert parcel.tracking_events.count() == 2
    assert Parcel.objects.get(pk=parcel.pk).updated_at == before


def test_a_late_scan_is_kept_but_does_not_move_the_stage_back(parcel):
    parcel_apply_scans(parcel_id=parcel.pk, scans=[scan(parcel, 8, S.OUT_FOR_DELIVERY)], source="t")
    parcel_apply_scans(parcel_id=parcel.pk, scans=[scan(parcel, 2, S.IN_TRANSIT)], source="t")
    parcel.refresh_from_db()
    assert parcel.stage == S.OUT_FOR_DELIVERY
    assert set(parcel.tracking_events.values_list("stage", flat=True)) == {
        S.OUT_FOR_DELIVERY,
        S.IN_TRANSIT,
    }


def test_reordered_pushes_end_where_the_time_order_ends(parcel):
    other = ParcelFactory(stage=S.LABEL_CREATED)
    events = [(1, S.PICKED_UP), (2, S.REDIRECTING), (3, S.IN_TRANSIT), (7, S.DELIVERED)]
    for hours, stage in events:
        parcel_apply_scans(parcel_id=parcel.pk, scans=[scan(parcel, hours, stage)], source="t")
    for hours, stage in reversed(events):
        parcel_apply_scans(parcel_id=other.pk, scans=[scan(other, hours, stage)], source="t")
    parcel.refresh_from_db()
    other.refresh_from_db()
    assert parcel.stage == other.stage == S.DELIVERED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres
def test_concurrent_identical_pushes_store_each_scan_once():
    parcel = ParcelFactory(stage=S.LABEL_CREATED)
    scans = [
        scan(parcel, h, st) for h, st in [(1, S.PICKED_UP), (4, S.IN_TRANSIT), (6, S.DELIVERED)]
    ]
    barrier = threading.Barrier(6)
    errors = []

    def push():
        try:
            barrier.wait()
            parcel_apply_scans(parcel_id=parcel.pk, scans=scans, source="t")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=push) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert TrackingEvent.objects.filter(parcel=parcel).count() == 3
    assert Parcel.objects.get(pk=parcel.pk).stage == S.DELIVERED


def test_many_parcels_in_one_call(parcel):
    from intercepts.tracking.scans import parcels_apply_scans

    other = ParcelFactory(stage=S.LABEL_CREATED)
    untouched = ParcelFactory(stage=S.IN_TRANSIT)
    changed = parcels_apply_scans(
        scans_by_parcel={
            parcel.pk: [scan(parcel, 1, S.PICKED_UP), scan(parcel, 1, S.PICKED_UP)],
            other.pk: [scan(other, 2, S.IN_TRANSIT), scan(other, 6, S.DELIVERED)],
            untouched.pk: [],
            999_999: [scan(parcel, 3, S.DELIVERED)],  # a parcel gone since it was queued
        },
        source="poll",
    )
    assert changed == {parcel.pk: S.PICKED_UP, other.pk: S.DELIVERED}
    assert parcel.tracking_events.count() == 1 and other.tracking_events.count() == 2
    other.refresh_from_db()
    assert other.signed_at == T0 + timedelta(hours=6)
    untouched.refresh_from_db()
    assert untouched.stage == S.IN_TRANSIT
    # The same call again changes nothing.
    again = parcels_apply_scans(
        scans_by_parcel={other.pk: [scan(other, 2, S.IN_TRANSIT), scan(other, 6, S.DELIVERED)]},
        source="poll",
    )
    assert again == {}
