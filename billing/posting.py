"""How a posting reaches the database: the ledger's critical section.

A posting moves one amount from one account of a wallet to another: a transaction row, a debit
entry, a credit entry, and both cached balances, together, in the caller's
``transaction.atomic()``. The wallet's accounts are locked with ``select_for_update`` in primary
key order, so two postings on one wallet wait for each other but never deadlock. A shop's money
never goes below zero: checked here first, and by the database's CHECK constraint
(``billing_account_shop_money_not_negative``) as the last word.
"""

from dataclasses import dataclass

from django.db.models import Case, Value, When
from django.utils import timezone

from billing.models import Account, LedgerEntry, LedgerTransaction

DEBIT, CREDIT = LedgerEntry.Side.DEBIT, LedgerEntry.Side.CREDIT


@dataclass(frozen=True)
class Transfer:
    """Debit one account kind of a wallet and credit another by the same amount."""

    debit: str
    credit: str


class NotEnough(Exception):
    """The posting would take a shop's money below zero; ``available_fen`` is what there was."""

    def __init__(self, account_kind: str, balance_fen: int):
        super().__init__(account_kind, balance_fen)
        self.account_kind = account_kind
        self.balance_fen = balance_fen


def post_orm(
    *,
    wallet_id: int,
    kind: str,
    reference: str,
    amount_fen: int,
    transfer: Transfer,
    actor,
    memo,
    courier_id: int | None = None,
) -> LedgerTransaction:
    """Post one transfer on a wallet. Call inside ``transaction.atomic()``."""
    txn = LedgerTransaction.objects.create(
        wallet_id=wallet_id,
        kind=kind,
        reference=reference,
        memo=memo,
        created_by=actor,
        courier_id=courier_id,
    )
    # Every posting on a wallet locks its accounts in primary key order: two postings can wait
    # for each other but never deadlock.
    rows = (
        Account.objects.select_for_update()
        .filter(wallet_id=wallet_id, kind__in=[transfer.debit, transfer.credit])
        .order_by("pk")
        .values_list("pk", "kind", "balance_fen")
    )
    accounts = {row_kind: (pk, balance) for pk, row_kind, balance in rows}
    if len(accounts) != 2:
        raise ValueError(f"wallet {wallet_id} lacks {transfer}")
    debit_pk, debit_balance = accounts[transfer.debit]
    credit_pk, credit_balance = accounts[transfer.credit]
    if transfer.debit in Account.SHOP_KINDS and debit_balance < amount_fen:
        raise NotEnough(transfer.debit, debit_balance)
    now = timezone.now()
    after = {debit_pk: debit_balance - amount_fen, credit_pk: credit_balance + amount_fen}
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                transaction=txn,
                wallet_id=wallet_id,
                account_id=pk,
                side=side,
                amount_fen=amount_fen,
                balance_after_fen=after[pk],
                created_at=now,
            )
            for pk, side in ((debit_pk, DEBIT), (credit_pk, CREDIT))
        ]
    )
    # The rows are locked, so the balances read above are current; both move in one UPDATE
    # (the lock is held until commit, so every round trip here counts). The CHECK constraint
    # is the last word on negative balances.
    Account.objects.filter(pk__in=after).update(
        balance_fen=Case(*(When(pk=pk, then=Value(balance)) for pk, balance in after.items()))
    )
    return txn
