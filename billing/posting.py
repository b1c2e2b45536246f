"""How a posting reaches the database: the ledger's critical section.

A posting moves one amount from one account of a wallet to another: a transaction row, a debit
entry, a credit entry, and both cached balances, together. Two implementations:

* ``post_statement`` (PostgreSQL): the whole posting is one SQL statement built from CTEs, with
  the thing it pays for (a new hold, a hold's status change and its history row) folded in as
  its source. The wallet's accounts are locked in primary key order inside the statement, and
  outside a caller's transaction the statement commits by itself. So the account rows stay
  locked only while PostgreSQL runs that statement and flushes its commit, never while a Python
  process waits for CPU between statements: with many workers on few cores that wait, not SQL,
  decides the throughput of one busy wallet.
* ``post_orm`` (any database, used on SQLite by the demo): the same posting through the ORM in
  ``transaction.atomic()``: insert, lock with ``select_for_update`` in primary key order, check,
  update.

Both refuse to take a shop's money below zero by the database's CHECK constraint
(``billing_account_shop_money_not_negative``); ``post_orm`` also checks first in Python.
"""

from dataclasses import dataclass

import psycopg
from django.db import NotSupportedError, connection, transaction
from django.utils import timezone

from billing.models import Account, Hold, HoldEvent, LedgerEntry, LedgerTransaction

DEBIT, CREDIT = LedgerEntry.Side.DEBIT, LedgerEntry.Side.CREDIT

# Tests set this to run the ORM implementation on PostgreSQL too, so both stay proven.
FORCE_ORM = False


def use_statement() -> bool:
    return connection.vendor == "postgresql" and not FORCE_ORM


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


# --- One statement (PostgreSQL) ---------------------------------------------------------------

# ``src`` yields one row (wallet_id, reference, amount_fen, ...) to post, or none to post
# nothing. Data-modifying CTEs always run to completion, whether or not the final SELECT reads
# them; within the statement they see each other only through RETURNING.
_POSTING = """
WITH src AS ({source}),
txn AS (
    INSERT INTO billing_ledgertransaction
        (wallet_id, kind, reference, memo, created_by_id, created_at)
    SELECT src.wallet_id, %(kind)s::varchar, src.reference, %(memo)s::varchar,
           %(actor)s::bigint, %(now)s::timestamptz
    FROM src
    RETURNING id, wallet_id
),
legs (account_kind, side, sign) AS (
    VALUES (%(debit)s::varchar, 'debit'::varchar, -1), (%(credit)s::varchar, 'credit'::varchar, 1)
),
locked AS (
    SELECT a.id, a.kind
    FROM billing_account a JOIN txn ON a.wallet_id = txn.wallet_id
    WHERE a.kind IN (%(debit)s::varchar, %(credit)s::varchar)
    ORDER BY a.id
    FOR UPDATE OF a
),
moved AS (
    UPDATE billing_account a
    SET balance_fen = a.balance_fen + legs.sign * src.amount_fen
    FROM locked, legs, src
    WHERE a.id = locked.id AND legs.account_kind = locked.kind
    RETURNING a.id, a.kind, a.balance_fen
),
entries AS (
    INSERT INTO billing_ledgerentry
        (transaction_id, wallet_id, account_id, side, amount_fen, balance_after_fen, created_at)
    SELECT txn.id, txn.wallet_id, moved.id, legs.side, src.amount_fen, moved.balance_fen,
           %(now)s::timestamptz
    FROM txn, src, moved JOIN legs ON legs.account_kind = moved.kind
    RETURNING id
){extra}
SELECT {select}
"""

_HOLD_EVENT = """,
event AS (
    INSERT INTO billing_holdevent (hold_id, from_status, to_status, actor_id, created_at)
    SELECT src.id, %(from_status)s::varchar, %(to_status)s::varchar, %(actor)s::bigint,
           %(now)s::timestamptz
    FROM src
    RETURNING id
)"""

_HOLD_COLUMNS = "id, wallet_id, reference, courier_id, amount_fen, status, created_at, updated_at"

_NEW_HOLD = f"""
    INSERT INTO billing_hold
        (wallet_id, reference, courier_id, amount_fen, status, created_at, updated_at)
    SELECT w.id, %(reference)s::varchar, %(courier)s::bigint, %(amount)s::bigint,
           %(to_status)s::varchar, %(now)s::timestamptz, %(now)s::timestamptz
    FROM billing_wallet w
    WHERE w.shop_id = %(shop)s::bigint
    ON CONFLICT ON CONSTRAINT billing_hold_reference DO NOTHING
    RETURNING {_HOLD_COLUMNS}
"""

# The guarded status change of ``services.hold_set_status``, as SQL: conditional on the status
# it leaves, so of two concurrent calls the second waits for the first's row lock and then
# matches nothing.
_SETTLE_HOLD = f"""
    UPDATE billing_hold
    SET status = %(to_status)s::varchar, updated_at = %(now)s::timestamptz
    WHERE reference = %(reference)s::varchar AND status = %(from_status)s::varchar
    RETURNING {_HOLD_COLUMNS}
"""

# From the wallet's row, so that an unknown wallet id posts nothing (no foreign key checks it).
_AMOUNT = """
    SELECT w.id AS wallet_id, %(reference)s::varchar AS reference,
           %(amount)s::bigint AS amount_fen
    FROM billing_wallet w
    WHERE w.id = %(wallet)s::bigint
"""


def _execute(sql: str, params: dict) -> list[tuple]:
    """Run a posting statement as a prepared statement on the connection Django holds.

    Planning this statement costs more CPU than running it, so it is prepared once per
    connection (the pool keeps connections, and so their prepared statements; settings give
    the connections a ``prepare_threshold``, without which psycopg ignores the request). Django's
    own cursors bind parameters on the client and never prepare; this one binds on the server. Its
    errors are still Django's (``IntegrityError`` ...), and it takes part in the caller's
    transaction like any other query. Unlike Django's cursors it is not in the query log.
    """

    def run():
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()

    def run_once():
        if connection.in_atomic_block:
            # Inside a caller's transaction: a savepoint, so that a refusal leaves it usable.
            with transaction.atomic():
                return run()
        return run()  # autocommit: the statement is its own transaction

    try:
        return run_once()
    except NotSupportedError as exc:
        # A migration that changed a column this statement returns, run from another
        # connection, leaves the prepared plan unusable on this one until it is dropped.
        if not isinstance(exc.__cause__, psycopg.errors.FeatureNotSupported):
            raise
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute("DEALLOCATE ALL")  # psycopg forgets its prepared statements too
        return run_once()


def _params(transfer: Transfer, *, kind: str, actor, memo: str = "", **extra) -> dict:
    return {
        "kind": kind,
        "debit": transfer.debit,
        "credit": transfer.credit,
        "actor": getattr(actor, "pk", None),
        "memo": memo,
        "now": timezone.now(),
        **extra,
    }


def _hold_from_row(row) -> Hold:
    return Hold.from_db("default", _HOLD_COLUMNS.split(", "), row)


def statement_transfer(
    *, wallet_id: int, kind: str, reference: str, amount_fen: int, transfer: Transfer, actor, memo
) -> int | None:
    """Post ``amount_fen``; returns the transaction's id, or None if there is no such wallet
    (then nothing was written)."""
    sql = _POSTING.format(source=_AMOUNT, extra="", select="txn.id FROM txn")
    params = _params(
        transfer,
        kind=kind,
        actor=actor,
        memo=memo,
        wallet=wallet_id,
        reference=reference,
        amount=amount_fen,
    )
    rows = _execute(sql, params)
    return rows[0][0] if rows else None


def statement_hold(
    *, shop_id: int, reference: str, amount_fen: int, courier_id: int, transfer: Transfer, actor
) -> Hold | None:
    """Create the hold, its first history row and its posting; None if the reference is taken
    (or the shop has no wallet): then nothing was written."""
    sql = _POSTING.format(source=_NEW_HOLD, extra=_HOLD_EVENT, select=f"{_HOLD_COLUMNS} FROM src")
    params = _params(
        transfer,
        kind=LedgerTransaction.Kind.HOLD,
        actor=actor,
        shop=shop_id,
        reference=reference,
        amount=amount_fen,
        courier=courier_id,
        from_status="",
        to_status=Hold.Status.HELD,
    )
    rows = _execute(sql, params)
    return _hold_from_row(rows[0]) if rows else None


def statement_settle(
    *, reference: str, from_status: str, to_status: str, kind: str, transfer: Transfer, actor
) -> Hold | None:
    """Move a hold from ``from_status`` to ``to_status`` with its history row and posting;
    None if it was not in ``from_status`` (then nothing was written)."""
    sql = _POSTING.format(
        source=_SETTLE_HOLD, extra=_HOLD_EVENT, select=f"{_HOLD_COLUMNS} FROM src"
    )
    params = _params(
        transfer,
        kind=kind,
        actor=actor,
        reference=reference,
        from_status=from_status,
        to_status=to_status,
    )
    rows = _execute(sql, params)
    return _hold_from_row(rows[0]) if rows else None


# --- The ORM (any database) -------------------------------------------------------------------


def post_orm(
    *, wallet_id: int, kind: str, reference: str, amount_fen: int, transfer: Transfer, actor, memo
) -> LedgerTransaction:
    """The same posting through the ORM. Call inside ``transaction.atomic()``."""
    txn = LedgerTransaction.objects.create(
        wallet_id=wallet_id, kind=kind, reference=reference, memo=memo, created_by=actor
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
    # One statement for both rows; the CHECK constraint is the last word on negative balances.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Account._meta.db_table} SET balance_fen = "
            "CASE id WHEN %s THEN %s WHEN %s THEN %s END WHERE id IN (%s, %s)",
            [debit_pk, after[debit_pk], credit_pk, after[credit_pk], debit_pk, credit_pk],
        )
    return txn


def hold_event(*, hold: Hold, from_status: str, to_status: str, actor) -> None:
    HoldEvent.objects.create(
        hold=hold,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        created_at=hold.updated_at,
    )
