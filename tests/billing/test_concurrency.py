"""Holds, captures, top-ups and their approvals from many threads at once, each on its own
database connection.

The threads meet at a barrier so they start together. Django's connection pool (at most
DATABASE_POOL_MAX connections, 10 by default) decides how many are inside PostgreSQL at the same
moment; the rest wait for a connection and then race the same rows.
"""

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from billing import selectors, services
from billing.models import (
    Account,
    Hold,
    HoldEvent,
    LedgerEntry,
    LedgerTransaction,
    TopUp,
    TopUpEvent,
)
from billing.services import BillingError
from shops.models import PLATFORM_FINANCE
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # SQLite lets one writer in at a time and fails the others at once: there is no race to
    # test there, only "database is locked".
    pytest.mark.postgres,
]


def run_together(count: int, work) -> tuple[list, list]:
    """Run ``work(i)`` in ``count`` threads released together; return results and errors."""
    barrier = threading.Barrier(count)
    results, errors = [], []
    lock = threading.Lock()

    def target(i):
        try:
            barrier.wait(timeout=30)
            outcome = work(i)
            with lock:
                results.append(outcome)
        except Exception as exc:  # collected and asserted on by the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


def test_fifty_simultaneous_holds_on_a_wallet_that_affords_ten(world, wallet_a, fund, zto):
    fund(wallet_a, 10 * 300)
    shop_id = world.shop_a.pk

    def hold(i):
        return services.wallet_hold(
            shop_id=shop_id, reference=f"intercept:{i}", amount_fen=300, courier=zto
        )

    results, errors = run_together(50, hold)

    assert len(results) == 10
    assert len(errors) == 40
    assert all(isinstance(e, BillingError) for e in errors), errors
    assert Hold.objects.count() == 10
    balances = selectors.wallet_balances(shop_id=shop_id)
    assert (balances.available_fen, balances.held_fen) == (0, 3000)
    # Every balance the available account ever had is on its entries: none below zero.
    available = wallet_a.accounts.get(kind=Account.Kind.AVAILABLE)
    history = LedgerEntry.objects.filter(account=available).values_list(
        "balance_after_fen", flat=True
    )
    assert min(history) == 0
    assert not selectors.ledger_discrepancies()


def test_twenty_simultaneous_captures_of_one_hold_write_one_capture(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:1", amount_fen=300, courier=zto
    )

    results, errors = run_together(20, lambda i: services.wallet_capture(reference="intercept:1"))

    assert not errors, errors
    assert len(results) == 20
    assert {hold.status for hold in results} == {Hold.Status.CAPTURED}
    captures = LedgerTransaction.objects.filter(kind="capture", reference="intercept:1")
    assert captures.count() == 1
    assert LedgerEntry.objects.filter(transaction__in=captures).count() == 2
    assert HoldEvent.objects.filter(to_status=Hold.Status.CAPTURED).count() == 1
    assert wallet_a.accounts.get(kind=Account.Kind.FEE_REVENUE).balance_fen == 300
    assert not selectors.ledger_discrepancies()


def test_simultaneous_capture_and_release_one_wins(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:2", amount_fen=300, courier=zto
    )

    def settle(i):
        settle = services.wallet_capture if i % 2 else services.wallet_release
        return settle(reference="intercept:2")

    results, errors = run_together(10, settle)

    final = Hold.objects.get(reference="intercept:2").status
    assert {hold.status for hold in results} == {final}
    assert len(errors) == 10 - len(results)
    assert all(isinstance(e, BillingError) for e in errors)
    assert (
        LedgerTransaction.objects.filter(reference="intercept:2").exclude(kind="hold").count() == 1
    )
    assert not selectors.ledger_discrepancies()


def test_simultaneous_holds_of_one_reference_hold_once(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    shop_id = world.shop_a.pk

    results, errors = run_together(
        20,
        lambda i: services.wallet_hold(
            shop_id=shop_id, reference="intercept:3", amount_fen=300, courier=zto
        ),
    )

    assert not errors, errors
    assert len({hold.pk for hold in results}) == 1
    assert LedgerTransaction.objects.filter(kind="hold", reference="intercept:3").count() == 1
    assert selectors.wallet_balances(shop_id=shop_id).available_fen == 700


def test_simultaneous_top_ups_with_one_reference_apply_once(world, wallet_a):
    results, errors = run_together(
        10,
        lambda i: services.wallet_top_up(
            actor=world.finance, wallet=wallet_a, amount_fen=500, external_reference="BANK-1"
        ),
    )
    assert len(results) == 1
    assert len(errors) == 9 and all(isinstance(e, BillingError) for e in errors)
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 500


def test_simultaneous_top_ups_with_one_serial_in_any_letter_case_apply_once(world, wallet_a):
    spellings = ["bank-2", "BANK-2", " Bank-2 ", "ＢＡＮＫ－２", "bAnK-2"]
    results, errors = run_together(
        10,
        lambda i: services.top_up_request(
            actor=world.finance,
            wallet=wallet_a,
            amount_fen=500,
            external_reference=spellings[i % len(spellings)],
        ),
    )
    assert len(results) == 1
    assert len(errors) == 9 and all(isinstance(e, BillingError) for e in errors), errors
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 500
    assert LedgerTransaction.objects.filter(kind="top_up", reference="BANK-2").count() == 1
    # Each refused attempt is kept, and none of them holds the serial.
    statuses = sorted(TopUp.objects.values_list("status", flat=True))
    assert statuses == ["applied"] + ["refused"] * 9


@pytest.fixture
def large_top_up(world, wallet_a):
    return services.top_up_request(
        actor=world.finance, wallet=wallet_a, amount_fen=6_000_000, external_reference="BANK-RACE"
    )


@pytest.fixture
def approvers(finance2):
    finance3 = UserFactory(username="finance3")
    finance3.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    return [finance2, finance3]


def test_racing_approvals_credit_once(world, wallet_a, large_top_up, approvers):
    def approve(i):
        # Each approver's page loaded the top-up while it was still waiting.
        top_up = TopUp.objects.get(pk=large_top_up.pk)
        return services.top_up_approve(actor=approvers[i % 2], top_up=top_up)

    results, errors = run_together(10, approve)

    assert not errors, errors
    assert {top_up.status for top_up in results} == {TopUp.Status.APPLIED}
    txns = LedgerTransaction.objects.filter(kind="top_up", reference="BANK-RACE")
    assert txns.count() == 1
    assert LedgerEntry.objects.filter(transaction__in=txns).count() == 2
    assert TopUpEvent.objects.filter(top_up=large_top_up, to_status="applied").count() == 1
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 6_000_000
    assert not selectors.ledger_discrepancies()


def test_racing_approval_and_rejection_one_wins(world, wallet_a, large_top_up, approvers):
    def decide(i):
        top_up = TopUp.objects.get(pk=large_top_up.pk)
        decide = services.top_up_approve if i % 2 else services.top_up_reject
        return decide(actor=approvers[i % 2], top_up=top_up)

    results, errors = run_together(10, decide)

    final = TopUp.objects.get(pk=large_top_up.pk).status
    assert final in (TopUp.Status.APPLIED, TopUp.Status.REJECTED)
    assert {top_up.status for top_up in results} == {final}
    assert len(errors) == 5 and all(isinstance(e, BillingError) for e in errors), errors
    credited = 6_000_000 if final == TopUp.Status.APPLIED else 0
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == credited
    assert LedgerTransaction.objects.filter(reference="BANK-RACE").count() == (credited > 0)
    assert TopUpEvent.objects.filter(top_up=large_top_up).count() == 2  # requested, decided
