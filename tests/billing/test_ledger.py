"""The wallet's services: postings, holds keyed by reference, refusals that write nothing."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from billing import selectors, services
from billing.models import (
    Account,
    Adjustment,
    AdjustmentEvent,
    AppendOnlyError,
    Hold,
    HoldEvent,
    LedgerEntry,
    LedgerTransaction,
    Wallet,
)
from billing.services import BillingError
from couriers.models import Courier
from tests.factories import UserFactory


def snapshot():
    """Everything the ledger holds, to show that a refusal wrote nothing."""
    return (
        list(Account.objects.order_by("pk").values_list("pk", "balance_fen")),
        LedgerTransaction.objects.count(),
        LedgerEntry.objects.count(),
        list(Hold.objects.order_by("pk").values_list("pk", "status")),
        HoldEvent.objects.count(),
        Adjustment.objects.count(),
        AdjustmentEvent.objects.count(),
    )


def chinese(exc_info) -> str:
    message = str(exc_info.value)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message
    return message


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


def balances(wallet):
    b = selectors.wallet_balances(shop_id=wallet.shop_id)
    return b.available_fen, b.held_fen


def test_opening_makes_one_account_of_each_kind_and_is_idempotent(world, wallet_a):
    again = services.wallet_open(actor=world.finance, shop_id=world.shop_a.pk)
    assert again.pk == wallet_a.pk
    kinds = list(wallet_a.accounts.order_by("pk").values_list("kind", flat=True))
    assert kinds == list(Account.Kind.values)
    assert Wallet.objects.count() == 1


def test_top_up_credits_available_from_funding(world, wallet_a, fund):
    txn = fund(wallet_a, 10_000)
    assert balances(wallet_a) == (10_000, 0)
    entries = {
        (e.account.kind, e.side, e.amount_fen) for e in txn.entries.select_related("account")
    }
    assert entries == {("funding", "debit", 10_000), ("available", "credit", 10_000)}
    assert not selectors.ledger_discrepancies()


def test_hold_capture_release_move_money_between_accounts(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:1", amount_fen=300, courier=zto
    )
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:2", amount_fen=400, courier=zto
    )
    assert balances(wallet_a) == (300, 700)
    services.wallet_capture(reference="intercept:1")
    services.wallet_release(reference="intercept:2")
    assert balances(wallet_a) == (700, 0)
    revenue = wallet_a.accounts.get(kind=Account.Kind.FEE_REVENUE).balance_fen
    assert revenue == 300
    history = list(
        HoldEvent.objects.filter(hold__reference="intercept:1").values_list(
            "from_status", "to_status"
        )
    )
    assert history == [("", "held"), ("held", "captured")]
    assert not selectors.ledger_discrepancies()


def test_repeats_return_the_first_result_and_write_nothing(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    first = services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:9", amount_fen=300, courier=zto
    )
    before = snapshot()
    again = services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:9", amount_fen=300, courier=zto
    )
    assert again.pk == first.pk
    assert snapshot() == before
    services.wallet_capture(reference="intercept:9")
    after_capture = snapshot()
    assert services.wallet_capture(reference="intercept:9").status == Hold.Status.CAPTURED
    assert snapshot() == after_capture
    assert LedgerTransaction.objects.filter(kind="capture", reference="intercept:9").count() == 1


def test_capture_after_release_and_release_after_capture_are_refused(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    shop = world.shop_a.pk
    services.wallet_hold(shop_id=shop, reference="intercept:1", amount_fen=300, courier=zto)
    services.wallet_hold(shop_id=shop, reference="intercept:2", amount_fen=300, courier=zto)
    services.wallet_release(reference="intercept:1")
    services.wallet_capture(reference="intercept:2")
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_capture(reference="intercept:1")
    assert "已释放" in chinese(exc)
    with pytest.raises(BillingError) as exc:
        services.wallet_release(reference="intercept:2")
    assert "已扣除" in chinese(exc)
    assert snapshot() == before


def test_same_reference_with_another_fee_is_refused(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:3", amount_fen=300, courier=zto
    )
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_hold(
            shop_id=world.shop_a.pk, reference="intercept:3", amount_fen=400, courier=zto
        )
    chinese(exc)
    assert snapshot() == before


# --- Bad input: refused in Chinese, nothing written -------------------------------------------


@pytest.mark.parametrize("amount", [0, -100])
def test_top_up_of_zero_or_less_is_refused(world, wallet_a, amount):
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_top_up(
            actor=world.finance, wallet=wallet_a, amount_fen=amount, external_reference="B-1"
        )
    assert "大于零" in chinese(exc)
    assert snapshot() == before


def test_hold_above_available_is_refused_and_writes_nothing(world, wallet_a, fund, zto):
    fund(wallet_a, 250)
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_hold(
            shop_id=world.shop_a.pk, reference="intercept:5", amount_fen=300, courier=zto
        )
    message = chinese(exc)
    assert "余额不足" in message and "2.50" in message and "3.00" in message
    assert snapshot() == before
    assert not Hold.objects.filter(reference="intercept:5").exists()


def test_reused_top_up_reference_is_refused(world, wallet_a, wallet_b):
    services.wallet_top_up(
        actor=world.finance, wallet=wallet_a, amount_fen=500, external_reference="BANK-77"
    )
    before = snapshot()
    for wallet in (wallet_a, wallet_b):
        with pytest.raises(BillingError) as exc:
            services.wallet_top_up(
                actor=world.finance, wallet=wallet, amount_fen=500, external_reference=" BANK-77 "
            )
        assert "BANK-77" in chinese(exc)
    assert snapshot() == before


@pytest.mark.parametrize("who", ["owner", "agent", "cs"])
def test_only_finance_tops_up(world, wallet_a, who):
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_top_up(
            actor=world.user(who), wallet=wallet_a, amount_fen=500, external_reference="B-2"
        )
    chinese(exc)
    assert snapshot() == before


def test_hold_without_wallet_is_refused(world, zto):
    with pytest.raises(BillingError) as exc:
        services.wallet_hold(
            shop_id=world.shop_b.pk, reference="intercept:1", amount_fen=300, courier=zto
        )
    chinese(exc)
    assert not Hold.objects.exists()


def test_capture_of_unknown_reference_is_refused(db):
    with pytest.raises(BillingError) as exc:
        services.wallet_capture(reference="intercept:404")
    chinese(exc)


# --- The database's own guards ------------------------------------------------------------------


def test_database_refuses_a_negative_shop_balance(wallet_a):
    available = wallet_a.accounts.get(kind=Account.Kind.AVAILABLE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=available.pk).update(balance_fen=-1)
    # The platform's counterpart accounts may go negative: that is where money came from.
    funding = wallet_a.accounts.get(kind=Account.Kind.FUNDING)
    Account.objects.filter(pk=funding.pk).update(balance_fen=-1)


def test_ledger_rows_refuse_update_and_delete_in_python(world, wallet_a, fund):
    txn = fund(wallet_a, 100)
    entry = txn.entries.first()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_fen=1)
    with pytest.raises(AppendOnlyError):
        LedgerTransaction.objects.all().delete()


@pytest.mark.parametrize("table", ["billing_ledgerentry", "billing_ledgertransaction"])
@pytest.mark.postgres
def test_ledger_rows_refuse_update_and_delete_in_the_database(world, wallet_a, fund, table):
    fund(wallet_a, 100)
    for sql in (f"UPDATE {table} SET created_at = created_at", f"DELETE FROM {table}"):
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert LedgerEntry.objects.count() == 2


@pytest.mark.parametrize("table", ["billing_wallet", "billing_account", "billing_hold"])
@pytest.mark.postgres
def test_rows_the_ledger_refers_to_cannot_be_deleted_in_the_database(
    world, wallet_a, fund, zto, table
):
    # Ledger rows refer to these by foreign keys the database checks.
    fund(wallet_a, 100)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:7", amount_fen=50, courier=zto
    )
    before = snapshot()
    with (
        pytest.raises(IntegrityError, match="foreign key"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Django's foreign keys are checked at commit; a test never commits, so ask now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DELETE FROM {table}")
    assert snapshot() == before
    assert Wallet.objects.filter(pk=wallet_a.pk).exists()


# --- Adjustments ----------------------------------------------------------------------------


def test_small_adjustment_applies_at_once(world, wallet_a):
    adjustment = services.wallet_adjust(
        actor=world.finance, wallet=wallet_a, amount_fen=50_000, reason="补偿运费"
    )
    assert adjustment.status == Adjustment.Status.APPLIED
    assert balances(wallet_a) == (50_000, 0)
    services.wallet_adjust(actor=world.finance, wallet=wallet_a, amount_fen=-20_000, reason="冲正")
    assert balances(wallet_a) == (30_000, 0)
    assert not selectors.ledger_discrepancies()


def test_adjustment_needs_a_reason(world, wallet_a):
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_adjust(actor=world.finance, wallet=wallet_a, amount_fen=100, reason=" ")
    assert "原因" in chinese(exc)
    assert snapshot() == before


def test_negative_adjustment_beyond_available_is_refused(world, wallet_a, fund):
    fund(wallet_a, 100)
    before = snapshot()
    with pytest.raises(BillingError) as exc:
        services.wallet_adjust(actor=world.finance, wallet=wallet_a, amount_fen=-200, reason="x")
    assert "余额不足" in chinese(exc)
    assert snapshot() == before


def test_large_adjustment_waits_for_a_second_finance_user(world, wallet_a):
    amount = services.ADJUSTMENT_APPROVAL_ABOVE_FEN + 1
    adjustment = services.wallet_adjust(
        actor=world.finance, wallet=wallet_a, amount_fen=amount, reason="大额返还"
    )
    assert adjustment.status == Adjustment.Status.PENDING
    assert balances(wallet_a) == (0, 0)
    with pytest.raises(BillingError) as exc:
        services.adjustment_approve(actor=world.finance, adjustment=adjustment)
    assert "另一位" in chinese(exc)
    with pytest.raises(BillingError):
        services.adjustment_approve(actor=world.owner, adjustment=adjustment)
    second = UserFactory(username="finance2")
    second.groups.add(world.finance.groups.get())
    services.adjustment_approve(actor=second, adjustment=adjustment)
    adjustment.refresh_from_db()
    assert adjustment.status == Adjustment.Status.APPLIED
    assert adjustment.decided_by == second
    assert balances(wallet_a) == (amount, 0)
    # Approving again changes nothing; rejecting an applied one is refused.
    services.adjustment_approve(actor=second, adjustment=adjustment)
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 1
    with pytest.raises(BillingError):
        services.adjustment_reject(actor=second, adjustment=adjustment)
    history = list(adjustment.events.values_list("from_status", "to_status", "actor__username"))
    assert history == [("", "pending", "finance"), ("pending", "applied", "finance2")]


def test_exactly_ten_thousand_yuan_needs_no_second_approval(world, wallet_a):
    adjustment = services.wallet_adjust(
        actor=world.finance,
        wallet=wallet_a,
        amount_fen=services.ADJUSTMENT_APPROVAL_ABOVE_FEN,
        reason="月结",
    )
    assert adjustment.status == Adjustment.Status.APPLIED


def test_rejected_adjustment_moves_no_money(world, wallet_a):
    adjustment = services.wallet_adjust(
        actor=world.finance, wallet=wallet_a, amount_fen=-2_000_000, reason="误充"
    )
    services.adjustment_reject(actor=world.finance, adjustment=adjustment, note="不予调整")
    assert Adjustment.objects.get().status == Adjustment.Status.REJECTED
    assert balances(wallet_a) == (0, 0)
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()


# --- Compensation -------------------------------------------------------------------------


def test_compensation_is_paid_once_per_reference(world, wallet_a):
    zto = Courier.objects.get(code="ZTO")
    pay = {"shop_id": world.shop_a.pk, "reference": "claim:1", "amount_fen": 900, "courier": zto}
    first = services.wallet_compensate(**pay)
    again = services.wallet_compensate(**pay)
    assert first.courier_id == zto.pk
    assert first.pk == again.pk
    assert balances(wallet_a) == (900, 0)
    assert wallet_a.accounts.get(kind=Account.Kind.COMPENSATION).balance_fen == -900


def test_finance_group_name_matches_the_platform_group():
    from shops.models import PLATFORM_FINANCE

    assert services.FINANCE_GROUP == PLATFORM_FINANCE


def test_refusal_inside_a_callers_transaction_leaves_it_usable(world, wallet_a, fund, zto):
    # An intercept service will hold the fee inside its own transaction and may carry on after
    # a refusal (to record why the intercept could not start).
    fund(wallet_a, 100)
    with transaction.atomic():
        with pytest.raises(BillingError):
            services.wallet_hold(
                shop_id=world.shop_a.pk, reference="intercept:7", amount_fen=300, courier=zto
            )
        hold = services.wallet_hold(
            shop_id=world.shop_a.pk, reference="intercept:8", amount_fen=100, courier=zto
        )
        assert Hold.objects.filter(pk=hold.pk).exists()
    assert balances(wallet_a) == (0, 100)
    assert not selectors.ledger_discrepancies()


def test_a_hold_reads_back_as_stored(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    hold = services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:11", amount_fen=300, courier=zto
    )
    stored = Hold.objects.get(pk=hold.pk)
    fields = ("wallet_id", "reference", "courier_id", "amount_fen", "status", "created_at")
    assert [getattr(hold, f) for f in fields] == [getattr(stored, f) for f in fields]


@pytest.mark.postgres
def test_self_check_finds_an_entry_filed_under_another_wallet(world, wallet_a, wallet_b, fund):
    fund(wallet_a, 100)
    entry = LedgerEntry.objects.filter(wallet=wallet_a).first()
    # Only raw SQL with triggers switched off could do this (the trigger refuses UPDATE).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE billing_ledgerentry SET wallet_id = %s WHERE id = %s", [wallet_b.pk, entry.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert selectors.ledger_discrepancies()["misfiled"] == [entry.pk]
