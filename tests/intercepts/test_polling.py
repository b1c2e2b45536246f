"""Polling over real HTTP against the sandbox courier: claim, query, apply, reschedule.

The sandbox here runs on a near-frozen clock (one simulated second per real second), so its
truth about each parcel holds still while we poll, even through injected faults.
"""

import itertools
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from couriers.models import Courier, CourierAccount
from couriers.sandbox import FaultOptions
from couriers.stages import TERMINAL_STAGES
from intercepts.models import Parcel
from intercepts.tasks import parcels_poll, parcels_poll_due
from intercepts.tracking import polling
from tests.factories import ParcelFactory, sandbox_served

_numbers = itertools.count(1)


def _account(sandbox, protocol: str, code: str) -> Courier:
    sandbox_served(sandbox, protocol, [code], requests_per_second=200, batch_size=10)
    return Courier.objects.get(code=code)


def _parcels(courier, digits: str) -> list[Parcel]:
    now = timezone.now()
    return [
        ParcelFactory(
            courier=courier,
            waybill_no=f"{courier.code[:2]}{next(_numbers):09d}1{digit}",
            stage="no_info",
            next_poll_at=now - timedelta(minutes=1),
        )
        for digit in digits
    ]


def _truth(sandbox, parcel) -> str | None:
    truth = sandbox.truth(parcel.waybill_no)  # None until a request has reached the sandbox
    return truth and truth["stage"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("protocol", "code", "digits"),
    [
        ("kdniao", "YUNDA", "1234567"),
        # SF's route codes cannot tell a destination-city hub from any other, nor report a
        # locker: only the stages it can say are compared.
        ("sf", "SF", "12457"),
    ],
)
def test_polled_parcels_take_the_couriers_stage_and_are_rescheduled(
    sandbox, protocol, code, digits
):
    courier = _account(sandbox, protocol, code)
    parcels = _parcels(courier, digits)
    claimed = polling.parcels_claim_due()
    assert sorted(claimed[courier.pk]) == sorted(p.pk for p in parcels)
    assert polling.parcels_claim_due() == {}  # leased: nobody claims them twice
    result = parcels_poll(courier.pk, claimed[courier.pk])
    assert result == {"polled": len(parcels), "failed": 0}
    now = timezone.now()
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.stage == _truth(sandbox, parcel), parcel.waybill_no
        assert parcel.tracking_events.exists()
        if parcel.stage in TERMINAL_STAGES:
            assert parcel.next_poll_at is None
        else:
            assert parcel.next_poll_at > now + timedelta(minutes=30)
    # Running the same task again changes nothing.
    events = sum(p.tracking_events.count() for p in parcels)
    parcels_poll(courier.pk, claimed[courier.pk])
    assert sum(p.tracking_events.count() for p in parcels) == events


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_parcel_converges_while_the_courier_fails_often(sandbox):
    courier = _account(
        sandbox,
        "kdniao",
        "YUNDA",
    )
    CourierAccount.objects.filter(pk=courier.account_id).update(batch_size=1)
    parcels = _parcels(courier, "12345678" * 3)
    sandbox.faults = FaultOptions(error_rate=0.3, timeout_rate=0.05, hang_s=2.0)
    try:
        for _round in range(12):
            Parcel.objects.filter(
                pk__in=[p.pk for p in parcels], next_poll_at__isnull=False
            ).exclude(poll_failures=0).update(
                next_poll_at=timezone.now()
            )  # back-off elapsed (time is compressed here)
            parcels_poll_due()
            if all(Parcel.objects.get(pk=p.pk).stage == _truth(sandbox, p) for p in parcels):
                break
    finally:
        sandbox.faults = FaultOptions()
    failures = Parcel.objects.filter(pk__in=[p.pk for p in parcels], poll_failures__gt=0)
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.stage == _truth(sandbox, parcel), parcel.waybill_no
    assert not failures.exists() or all(p.next_poll_at for p in failures)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_courier_down_loses_nothing_and_backs_off(sandbox):
    courier = _account(sandbox, "sf", "SF")
    parcels = _parcels(courier, "234")
    sandbox.faults = FaultOptions(error_rate=1.0)
    try:
        claimed = polling.parcels_claim_due()
        assert parcels_poll(courier.pk, claimed[courier.pk]) == {"polled": 0, "failed": 3}
    finally:
        sandbox.faults = FaultOptions()
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.poll_failures == 1
        assert parcel.next_poll_at is not None and parcel.stage == "no_info"
    assert polling.backoff_delay(2) > polling.backoff_delay(1)


@pytest.mark.django_db
def test_a_courier_without_an_account_is_asked_again_later():
    courier = Courier.objects.get(code="EMS")
    assert courier.account_id is None
    parcels = _parcels(courier, "12")
    claimed = polling.parcels_claim_due()
    assert polling.parcels_poll(courier_id=courier.pk, parcel_ids=claimed[courier.pk]) == {
        "polled": 0,
        "failed": 2,
    }
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.poll_failures == 1 and parcel.next_poll_at > timezone.now()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_lease_left_by_a_dead_worker_runs_out_and_the_parcel_is_claimed_again(sandbox):
    courier = _account(sandbox, "kuaidi100", "ZTO")
    parcels = _parcels(courier, "23")
    claimed = polling.parcels_claim_due()  # ... and the worker dies before polling them
    assert sorted(claimed[courier.pk]) == sorted(p.pk for p in parcels)
    assert polling.parcels_claim_due(now=timezone.now() + polling.LEASE / 2) == {}
    later = timezone.now() + polling.LEASE + timedelta(seconds=1)
    again = polling.parcels_claim_due(now=later)
    assert sorted(again[courier.pk]) == sorted(p.pk for p in parcels)
    # Polled this time: the lease is dropped and the next poll set by the stage.
    parcels_poll(courier.pk, again[courier.pk])
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.poll_leased_until is None
        assert parcel.next_poll_at is None or parcel.next_poll_at > timezone.now()


@pytest.mark.django_db
def test_a_parcel_whose_intercept_awaits_its_result_is_polled_often(world, sandbox):
    from intercepts.models import InterceptEvent, InterceptRequest
    from intercepts.services.intercept_requests import intercept_create, intercept_set_status
    from tests.intercepts.readiness import make_ready

    make_ready(world.shop_a, world.owner)
    courier = _account(sandbox, "kdniao", "YUNDA")
    waiting, quiet = _parcels(courier, "22")
    Parcel.objects.filter(pk__in=[waiting.pk, quiet.pk]).update(shop=world.shop_a)
    waiting.refresh_from_db()
    intercept = intercept_create(
        actor=world.owner,
        parcel=waiting,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
    )
    for status in (InterceptRequest.Status.SUBMITTED, InterceptRequest.Status.ACCEPTED):
        intercept_set_status(
            intercept=intercept, to_status=status, source=InterceptEvent.Source.COURIER_ANSWER
        )

    before = timezone.now()
    polling.parcels_poll(courier_id=courier.pk, parcel_ids=[waiting.pk, quiet.pk])
    waiting.refresh_from_db()
    quiet.refresh_from_db()
    assert waiting.stage == quiet.stage == "in_transit"
    assert waiting.next_poll_at - before <= polling.intercept_poll_delay() + timedelta(seconds=5)
    assert quiet.next_poll_at - before >= timedelta(hours=1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "batch_size", "per_second", "chunk"),
    [
        ("sf", 10, 200, 1000),  # 100 requests of ten waybills
        ("sf", 50, 200, 1000),  # SF's route query takes ten at most
        ("kuaidi100", 10, 200, 100),  # a single-waybill query: 100 requests
        ("sf", 10, 2, 300),  # 2 requests a second: 30 requests of ten in 15 s
        ("kdniao", 1, 1, 15),
    ],
)
def test_a_poll_task_is_sized_to_its_gateway(protocol, batch_size, per_second, chunk):
    account = CourierAccount.objects.create(
        name=f"chunk-{protocol}-{batch_size}-{per_second}",
        protocol=protocol,
        base_url="http://127.0.0.1:9",
        batch_size=batch_size,
        requests_per_second=per_second,
    )
    assert polling.poll_chunk_size(account) == chunk


@pytest.mark.django_db
def test_claimed_parcels_are_cut_into_tasks_per_courier():
    slow = CourierAccount.objects.create(
        name="slow", protocol="kuaidi100", base_url="http://127.0.0.1:9", requests_per_second=1
    )
    zto, sf = Courier.objects.get(code="ZTO"), Courier.objects.get(code="SF")
    Courier.objects.filter(pk=zto.pk).update(account=slow)
    Courier.objects.filter(pk=sf.pk).update(account=None)
    chunks = polling.poll_chunks({zto.pk: list(range(40)), sf.pk: list(range(100, 250))})
    assert [(courier_id, len(ids)) for courier_id, _courier, ids in chunks] == [
        (zto.pk, 15),
        (zto.pk, 15),
        (zto.pk, 10),
        (sf.pk, 100),  # no account: polled only to back off, a hundred at a time
        (sf.pk, 50),
    ]
    assert [pk for _id, _courier, ids in chunks[:3] for pk in ids] == list(range(40))
    assert {courier.code for _id, courier, _ids in chunks} == {"ZTO", "SF"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("protocol", "code", "raw_code"), [("kdniao", "YUNDA", "414"), ("kuaidi100", "ZTO", "209")]
)
def test_a_damage_the_courier_reports_is_stored_with_its_code(sandbox, protocol, code, raw_code):
    courier = _account(sandbox, protocol, code)
    [parcel] = _parcels(courier, "2")
    sandbox.world.parcel(parcel.waybill_no)  # the courier has it in transit ...
    sandbox.world.mishap(parcel.waybill_no, "damaged")  # ... and damages it

    claimed = polling.parcels_claim_due()
    assert parcels_poll(courier.pk, claimed[courier.pk]) == {"polled": 1, "failed": 0}

    event = parcel.tracking_events.get(raw_code=raw_code)
    assert event.stage == "exception"
    assert event.description == "快件破损，已登记"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("protocol", "code", "raw_code"), [("kdniao", "YUNDA", "414"), ("kuaidi100", "ZTO", "209")]
)
def test_a_damage_polled_from_the_courier_after_an_intercept_suggests_a_claim(
    sandbox, protocol, code, raw_code
):
    """The whole way over the sandbox's own codes: the courier damages a parcel whose intercept
    succeeded, our poll stores the scan, and the intercept record suggests a claim."""
    from django.contrib.auth.models import Group

    from billing import services as billing_services
    from intercepts.models import InterceptRequest
    from shops.models import PLATFORM_FINANCE
    from tests.factories import UserFactory, make_intercept

    courier = _account(sandbox, protocol, code)
    [parcel] = _parcels(courier, "2")
    finance = UserFactory()
    finance.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    wallet = billing_services.wallet_open(actor=finance, shop_id=parcel.shop_id)
    billing_services.wallet_top_up(
        actor=finance, wallet=wallet, amount_fen=10_000, external_reference=f"BANK-{code}"
    )
    intercept = make_intercept(finance, parcel, None, "submitted", "accepted", "succeeded")
    assert intercept.claim_suggestion == ""
    sandbox.world.parcel(parcel.waybill_no)
    # The sandbox dates scans in whole seconds of a clock started in whole seconds (up to two
    # seconds behind ours): the damage comes later than that, or its scan could read as older
    # than the catch.
    time.sleep(2.1)
    sandbox.world.mishap(parcel.waybill_no, "damaged")

    claimed = polling.parcels_claim_due()
    assert parcels_poll(courier.pk, claimed[courier.pk]) == {"polled": 1, "failed": 0}

    assert parcel.tracking_events.filter(raw_code=raw_code, stage="exception").count() == 1
    intercept = InterceptRequest.objects.get(pk=intercept.pk)
    assert intercept.claim_suggestion == InterceptRequest.ClaimSuggestion.DAMAGED
