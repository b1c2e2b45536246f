"""Intercept requests: the lifecycle's moves, each with its history row, and the fee held at
creation, charged once on success and released on refusal, failure or withdrawal, whatever the
repeats."""

import threading

import pytest
from django.utils import translation

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import Hold, LedgerTransaction
from couriers.models import Courier
from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.errors import DomainError
from intercepts.services.intercept_requests import intercept_create, intercept_set_status

S = InterceptRequest.Status
RETURN = InterceptRequest.Action.RETURN
FEE_ZTO_RETURN = 300  # seeded fee rule


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def funded(world):
    """Shop A's wallet with 10 yuan, and its parcel carried by ZTO."""
    wallet = billing_services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=1_000, external_reference="BANK-I-1"
    )
    world.parcel_a.courier = Courier.objects.get(code="ZTO")
    world.parcel_a.save(update_fields=["courier"])
    return wallet


def _balances(world):
    return billing_selectors.wallet_balances(shop_id=world.shop_a.pk)


def _open(world, **kwargs) -> InterceptRequest:
    return intercept_create(
        actor=world.owner,
        parcel=world.parcel_a,
        action=RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=world.after_sale_a,
        **kwargs,
    )


def _move(intercept, *statuses, source=InterceptEvent.Source.COURIER_ANSWER):
    for status in statuses:
        assert intercept_set_status(intercept=intercept, to_status=status, source=source)


def test_creating_holds_the_quoted_fee_with_the_request(world, funded):
    intercept = _open(world, reason="买家申请退款")
    assert (intercept.status, intercept.fee_fen, intercept.shop_id) == (
        S.CREATED,
        FEE_ZTO_RETURN,
        world.shop_a.pk,
    )
    assert _balances(world).available_fen == 700 and _balances(world).held_fen == 300
    assert intercept.stage_at_request == world.parcel_a.stage  # what the chance is learnt from
    hold = Hold.objects.get(reference=intercept.hold_reference)
    assert (hold.amount_fen, hold.status) == (300, Hold.Status.HELD)
    [event] = intercept.events.all()
    assert (event.to_status, event.actor, event.note) == (S.CREATED, world.owner, "买家申请退款")


def test_success_charges_the_fee_once_whatever_the_repeats(world, funded):
    intercept = _open(world)
    _move(intercept, S.SUBMITTED, S.ACCEPTED, S.SUCCEEDED)
    # The courier's push and the poll both report it again: nothing more happens.
    assert not intercept_set_status(
        intercept=intercept, to_status=S.SUCCEEDED, source=InterceptEvent.Source.PUSH
    )
    _move(intercept, S.COMPLETED, source=InterceptEvent.Source.POLL)
    assert (
        LedgerTransaction.objects.filter(
            kind=LedgerTransaction.Kind.CAPTURE, reference=intercept.hold_reference
        ).count()
        == 1
    )
    assert _balances(world).available_fen == 700 and _balances(world).held_fen == 0
    assert list(intercept.events.values_list("from_status", "to_status")) == [
        ("", S.CREATED),
        (S.CREATED, S.SUBMITTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.ACCEPTED, S.SUCCEEDED),
        (S.SUCCEEDED, S.COMPLETED),
    ]


@pytest.mark.parametrize(
    "path",
    [(S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.ACCEPTED, S.FAILED), (S.CANCELLED,)],
)
def test_refusal_failure_and_withdrawal_release_the_fee(world, funded, path):
    intercept = _open(world)
    _move(intercept, *path)
    assert _balances(world).available_fen == 1_000 and _balances(world).held_fen == 0
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.RELEASED
    assert not LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CAPTURE).exists()
    # Finished: a late success report cannot charge it.
    with pytest.raises(DomainError, match="不能从"):
        intercept_set_status(
            intercept=intercept, to_status=S.SUCCEEDED, source=InterceptEvent.Source.PUSH
        )
    assert not LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CAPTURE).exists()


def test_a_result_may_overtake_the_acknowledgement(world, funded):
    intercept = _open(world)
    _move(intercept, S.SUBMITTED, S.SUCCEEDED)
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.CAPTURED


def test_one_open_intercept_per_parcel_and_nothing_written_for_a_second(world, funded):
    first = _open(world)
    before = (InterceptRequest.objects.count(), Hold.objects.count(), _balances(world))
    with pytest.raises(DomainError, match="已有进行中的拦截"):
        _open(world)
    assert (InterceptRequest.objects.count(), Hold.objects.count(), _balances(world)) == before
    # Once the first is over, the parcel may be intercepted again.
    _move(first, S.SUBMITTED, S.REJECTED)
    assert _open(world).status == S.CREATED


@pytest.mark.parametrize(
    ("setup", "message"),
    [("poor", "余额不足"), ("no_rule", "未设置"), ("redirect_without_address", "新地址")],
)
def test_refusals_write_nothing(world, funded, setup, message):
    kwargs = {}
    if setup == "poor":
        billing_services.wallet_hold(
            shop_id=world.shop_a.pk,
            reference="other:1",
            amount_fen=800,
            courier=world.parcel_a.courier,
        )
    elif setup == "no_rule":
        world.parcel_a.courier = Courier.objects.get(code="EMS")
        world.parcel_a.save(update_fields=["courier"])
    else:
        kwargs = {"action": InterceptRequest.Action.REDIRECT}
    before = (
        InterceptRequest.objects.count(),
        InterceptEvent.objects.count(),
        Hold.objects.count(),
    )
    with pytest.raises(DomainError, match=message):
        intercept_create(
            actor=world.owner,
            parcel=world.parcel_a,
            channel=InterceptRequest.Channel.WORKBENCH,
            **{"action": RETURN, **kwargs},
        )
    after = (InterceptRequest.objects.count(), InterceptEvent.objects.count(), Hold.objects.count())
    assert after == before


needs_postgresql = pytest.mark.postgres


def _in_parallel(count: int, work) -> list:
    barrier, results = threading.Barrier(count), []

    def run():
        from django.db import connections

        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_requests_on_one_parcel_open_exactly_one(world, funded):
    results = _in_parallel(8, lambda: _open(world))
    opened = [r for r in results if isinstance(r, InterceptRequest)]
    assert len(opened) == 1
    assert all(isinstance(r, DomainError) for r in results if r not in opened)
    assert Hold.objects.count() == 1 and _balances(world).held_fen == 300


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_success_reports_charge_once(world, funded):
    intercept = _open(world)
    _move(intercept, S.SUBMITTED, S.ACCEPTED)
    results = _in_parallel(
        8,
        lambda: intercept_set_status(
            intercept=InterceptRequest.objects.get(pk=intercept.pk),
            to_status=S.SUCCEEDED,
            source=InterceptEvent.Source.PUSH,
        ),
    )
    assert sorted(results) == [False] * 7 + [True]
    assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CAPTURE).count() == 1
    assert intercept.events.filter(to_status=S.SUCCEEDED).count() == 1
