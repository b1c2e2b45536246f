"""Reads of wallets, the ledger and fees that other apps and the admin reuse."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    Account,
    FeeRule,
    Hold,
    LedgerEntry,
    LedgerTransaction,
    PaymentPassword,
    Wallet,
)
from billing.money import format_fen
from billing.references import Subject, describe
from billing.services import BillingError
from couriers.models import Courier


@dataclass(frozen=True)
class Balances:
    available_fen: int
    held_fen: int


def quote(courier, action: str, at: datetime | None = None) -> int:
    """The fee in fen for ``action`` (``return`` or ``redirect``) with ``courier`` at ``at``
    (now by default): the latest rule that has started by then.

    Raises ``billing.services.BillingError`` when no rule covers it, so that an intercept is
    never started with an unknown fee.
    """
    at = at or timezone.now()
    courier_id = getattr(courier, "pk", courier)
    amount = (
        FeeRule.objects.filter(courier_id=courier_id, action=action, valid_from__lte=at)
        .order_by("-valid_from")
        .values_list("amount_fen", flat=True)
        .first()
    )
    if amount is None:
        raise BillingError(_("No fee is set for this courier and action; ask platform finance."))
    return amount


def _balance_of(kind: str):
    return Subquery(
        Account.objects.filter(wallet_id=OuterRef("pk"), kind=kind)
        .order_by()
        .values("balance_fen")[:1]
    )


def with_balances(queryset):
    """Wallets annotated with ``available_fen`` and ``held_fen`` (one query for a whole list)."""
    return queryset.annotate(
        available_fen=_balance_of(Account.Kind.AVAILABLE),
        held_fen=_balance_of(Account.Kind.HELD),
    )


def wallet_balances(*, shop_id: int) -> Balances | None:
    """The shop's available and held money from the cached balances, or None without a wallet."""
    rows = dict(
        Account.objects.filter(wallet__shop_id=shop_id, kind__in=Account.SHOP_KINDS).values_list(
            "kind", "balance_fen"
        )
    )
    if not rows:
        return None
    return Balances(available_fen=rows[Account.Kind.AVAILABLE], held_fen=rows[Account.Kind.HELD])


def wallet_recent_entries(*, wallet: Wallet, limit: int = 20):
    """The wallet's latest entries on the shop's own accounts (what a merchant reads)."""
    return (
        LedgerEntry.objects.filter(wallet=wallet, account__kind__in=Account.SHOP_KINDS)
        .select_related("transaction", "account")
        .order_by("-id")[:limit]
    )


@dataclass(frozen=True)
class Movement:
    """One movement of a shop's money as the merchant reads it: one line per posting, not its
    two legs. ``amount_fen`` is what it did to the available balance, except for a fee charged,
    which leaves the available balance alone and takes ``amount_fen`` from the held money."""

    id: int
    at: datetime
    kind: str
    kind_label: str
    reference: str
    subject: Subject | None
    amount_fen: int
    available_after_fen: int
    memo: str

    @property
    def is_fee(self) -> bool:
        K = LedgerTransaction.Kind
        return self.kind in (K.HOLD, K.CAPTURE, K.RELEASE)

    @property
    def unnamed_fee(self) -> bool:
        """A fee whose reference no app describes: the reference is all there is to show."""
        return self.is_fee and self.subject is None

    @property
    def amount_text(self) -> str:
        """The amount as the merchant reads it: signed by what it did to the available
        balance; a fee charged is taken from the held money, so it carries no sign."""
        if self.kind == LedgerTransaction.Kind.CAPTURE:
            return format_fen(self.amount_fen)
        return ("+" if self.amount_fen >= 0 else "−") + format_fen(abs(self.amount_fen))


def movement_entries(*, wallet_id: int):
    """The entries that are the wallet's movements, one per posting, each annotated with
    ``available_after``: a posting touches the available balance (top-up, adjustment, hold,
    release, compensation), or only the held money (a fee charged); its entry on the available
    account, or else its entry on the held account, is the one line. The available balance at a
    charge comes from the entry before it."""
    A = Account.Kind
    available_before = Subquery(
        LedgerEntry.objects.filter(
            wallet_id=OuterRef("wallet_id"), account__kind=A.AVAILABLE, id__lt=OuterRef("id")
        )
        .order_by("-id")
        .values("balance_after_fen")[:1]
    )
    return (
        LedgerEntry.objects.filter(wallet_id=wallet_id)
        .filter(
            Q(account__kind=A.AVAILABLE)
            | Q(account__kind=A.HELD, transaction__kind=LedgerTransaction.Kind.CAPTURE)
        )
        .annotate(
            available_after=Case(
                When(account__kind=A.AVAILABLE, then="balance_after_fen"),
                default=Coalesce(available_before, 0),
                output_field=IntegerField(),
            )
        )
        .select_related("transaction", "account")
    )


def movement_amount_fen(entry) -> int:
    """What a movement line shows: the signed change of the available money, or the fee charged
    from the held money."""
    return entry.amount_fen if entry.account.kind == Account.Kind.HELD else entry.signed_fen


def wallet_movements(*, wallet: Wallet, before_id: int | None = None, limit: int = 50):
    """The wallet's latest movements (``movement_entries``), newest first, and whether older
    ones exist. Two queries for any page: the entries and the subjects of their references."""
    entries = movement_entries(wallet_id=wallet.pk)
    if before_id is not None:
        entries = entries.filter(id__lt=before_id)
    rows = list(entries.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    subjects = describe(entry.transaction.reference for entry in rows)
    movements = [
        Movement(
            id=entry.pk,
            at=entry.created_at,
            kind=entry.transaction.kind,
            kind_label=entry.transaction.get_kind_display(),
            reference=entry.transaction.reference,
            subject=subjects.get(entry.transaction.reference),
            amount_fen=movement_amount_fen(entry),
            available_after_fen=entry.available_after,
            memo=entry.transaction.memo,
        )
        for entry in rows
    ]
    return movements, more


def payment_password_locked_until(*, shop_id: int) -> datetime | None:
    """When the shop's payment password unlocks, if it is locked now."""
    until = (
        PaymentPassword.objects.filter(shop_id=shop_id)
        .values_list("locked_until", flat=True)
        .first()
    )
    return until if until and until > timezone.now() else None


def _invoiceable(wallet: Wallet):
    return LedgerEntry.objects.filter(
        wallet=wallet,
        account__kind=Account.Kind.HELD,
        transaction__kind=LedgerTransaction.Kind.CAPTURE,
    ).exclude(transaction__invoice_lines__live=True)


def invoiceable_fees(*, wallet: Wallet) -> tuple[int, int]:
    """How many charged fees of the wallet are on no live invoice yet, and their total in fen:
    what an invoice request over all of them covers."""
    totals = _invoiceable(wallet).aggregate(count=Count("id"), total=Coalesce(Sum("amount_fen"), 0))
    return totals["count"], totals["total"]


def invoiceable_fees_by_courier(*, wallet: Wallet) -> list[tuple[str, int, int]]:
    """(courier name, count, total in fen) of the fees ``invoiceable_fees`` counts, per courier:
    what a request for one courier invoices."""

    # A fee's courier is its hold's (one hold per reference).
    hold = Hold.objects.filter(reference=OuterRef("transaction__reference"))
    rows = (
        _invoiceable(wallet)
        .annotate(
            name_zh=Subquery(hold.values("courier__name_zh")[:1]),
            name_en=Subquery(hold.values("courier__name_en")[:1]),
        )
        .values("name_zh", "name_en")
        .annotate(count=Count("id"), total=Sum("amount_fen"))
        .order_by("name_zh")
    )
    return [
        (
            Courier.localized_name(row["name_zh"] or "", row["name_en"] or ""),
            row["count"],
            row["total"],
        )
        for row in rows
    ]


def ledger_discrepancies(*, wallet_id: int | None = None) -> dict:
    """What would be wrong with the ledger (empty when it is sound): transactions whose debits
    and credits differ, accounts whose cached balance is not the sum of their entries, and
    references charged more than once. For one wallet, or for all."""
    signed = Case(
        When(side=LedgerEntry.Side.CREDIT, then="amount_fen"),
        default=-1 * Coalesce("amount_fen", 0),
        output_field=IntegerField(),
    )
    entries = LedgerEntry.objects.all()
    accounts = Account.objects.all()
    transactions = LedgerTransaction.objects.all()
    if wallet_id is not None:
        entries = entries.filter(wallet_id=wallet_id)
        accounts = accounts.filter(wallet_id=wallet_id)
        transactions = transactions.filter(wallet_id=wallet_id)
    unbalanced = list(
        entries.values("transaction_id")
        .annotate(net=Sum(signed))
        .filter(~Q(net=0))
        .values_list("transaction_id", flat=True)
    )
    sums = dict(
        entries.values("account_id").annotate(net=Sum(signed)).values_list("account_id", "net")
    )
    drifted = [
        pk
        for pk, balance in accounts.values_list("pk", "balance_fen")
        if balance != sums.get(pk, 0)
    ]
    charged_twice = list(
        transactions.filter(kind=LedgerTransaction.Kind.CAPTURE)
        .values("reference")
        .annotate(times=Count("id"))
        .filter(times__gt=1)
        .values_list("reference", flat=True)
    )
    negative = list(
        accounts.filter(kind__in=Account.SHOP_KINDS, balance_fen__lt=0).values_list("pk", flat=True)
    )
    # The entry's copy of its account's wallet (it has no foreign key of its own).
    misfiled = list(entries.exclude(wallet_id=F("account__wallet_id")).values_list("pk", flat=True))
    found = {
        "misfiled": misfiled,
        "unbalanced": unbalanced,
        "drifted": drifted,
        "charged_twice": charged_twice,
        "negative": negative,
    }
    return {key: value for key, value in found.items() if value}
