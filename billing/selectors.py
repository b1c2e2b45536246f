"""Reads of wallets, the ledger and fees that other apps and the admin reuse."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Account, FeeRule, LedgerEntry, LedgerTransaction, Wallet
from billing.services import BillingError


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
