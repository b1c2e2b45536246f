"""Wallets on a double-entry ledger, holds of intercept fees, top-ups, adjustments, fee rules
and the payment password.

Every wallet has its own set of accounts: the shop's money (available, held) and the platform's
counterparts for that shop (fee revenue, external funding, claim compensation, adjustments).
Keeping the platform side per wallet means a posting only ever locks one wallet's rows, so
shops never queue behind each other; platform totals are sums over the wallets.

An account's balance is credits minus debits. The shop's accounts are what the platform owes the
shop, so they are positive; a counterpart such as external funding goes negative by the money that
came in. Summed over every account of the ledger the balances are always zero.

The rows a posting writes (transaction, entries, a hold and its history) refer to their wallet,
account, transaction or hold by foreign keys the database checks; PROTECT keeps those rows from
being deleted through Django, and the constraints outside it.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.money import MoneyField
from couriers.models import Courier
from shops.history import StatusHistory, status_fields


class AppendOnlyError(Exception):
    """A ledger row was about to be changed or deleted; corrections are new entries."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are never updated")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted")

    # bulk_update goes through update(); _raw_delete is what cascades use.
    def _raw_delete(self, using):
        raise AppendOnlyError(f"{self.model.__name__} rows are never deleted")


class AppendOnlyModel(models.Model):
    """Rows are inserted once. The database refuses UPDATE and DELETE too (see migration 0002)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted")


class Wallet(models.Model):
    shop = models.OneToOneField(
        "shops.Shop",
        on_delete=models.PROTECT,
        related_name="wallet",
        verbose_name=_("shop"),
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("opened by"),
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
        ordering = ("-id",)

    def __str__(self) -> str:
        return str(self.shop)


class Account(models.Model):
    class Kind(models.TextChoices):
        AVAILABLE = "available", _("Available")
        HELD = "held", _("Held for fees")
        FEE_REVENUE = "fee_revenue", _("Platform fee revenue")
        FUNDING = "funding", _("Top-ups received")
        COMPENSATION = "compensation", _("Claim compensation paid")
        ADJUSTMENT = "adjustment", _("Manual adjustments")

    # The shop's own money: never below zero, enforced by the database.
    SHOP_KINDS = (Kind.AVAILABLE, Kind.HELD)

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("wallet")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    balance_fen = MoneyField(_("balance (fen)"), default=0, allow_negative=True)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ("wallet", "id")
        constraints = [
            models.UniqueConstraint(fields=("wallet", "kind"), name="billing_account_wallet_kind"),
            models.CheckConstraint(
                condition=Q(balance_fen__gte=0) | ~Q(kind__in=["available", "held"]),
                name="billing_account_shop_money_not_negative",
                violation_error_message=_("A shop's balance cannot go below zero."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} · {self.get_kind_display()}"


class LedgerTransaction(AppendOnlyModel):
    """One posting: a set of balanced entries, named by what it is for.

    ``(kind, reference)`` is unique: a top-up's external reference applies once, a fee is held,
    captured or released once per reference, whatever the retries.
    """

    class Kind(models.TextChoices):
        TOP_UP = "top_up", _("Top-up")
        ADJUSTMENT = "adjustment", _("Adjustment")
        HOLD = "hold", _("Fee held")
        CAPTURE = "capture", _("Fee charged")
        RELEASE = "release", _("Fee released")
        COMPENSATION = "compensation", _("Claim compensation")

    wallet = models.ForeignKey(
        Wallet,
        on_delete=models.PROTECT,
        db_index=False,  # looked up by (kind, reference); wallets are never deleted
        related_name="transactions",
        verbose_name=_("wallet"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    reference = models.CharField(_("reference"), max_length=100)
    # The courier a claim's compensation is paid against: the platform pays the shop at once
    # and the courier owes it (``billing.services.wallet_compensate``); blank otherwise.
    courier = models.ForeignKey(
        Courier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # the partial index below, on the few rows that name one
        related_name="+",
        verbose_name=_("courier"),
    )
    memo = models.CharField(_("note"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # users are deactivated, not deleted
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(
                fields=("kind", "reference"), name="billing_transaction_kind_reference"
            ),
        ]
        indexes = [
            # A bank serial is compared in any letter case (top-ups filed before serials were
            # kept in upper case); only top-ups enter this index, so postings do not pay for it.
            models.Index(
                Upper("reference"),
                condition=Q(kind="top_up"),
                name="billing_transaction_top_up_ref",
            ),
            # What each courier owes for the compensation paid against it.
            models.Index(
                fields=("courier", "created_at"),
                condition=Q(courier__isnull=False),
                name="billing_txn_courier_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"


class LedgerEntry(AppendOnlyModel):
    class Side(models.TextChoices):
        DEBIT = "debit", _("Debit")
        CREDIT = "credit", _("Credit")

    # Entries are read by wallet or account, rarely by transaction, and a transaction is never
    # deleted: an index here would only slow every posting down.
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="entries",
        verbose_name=_("transaction"),
    )
    # The account's wallet again, so that a shop's entries are listed from one index; written
    # by the posting from the account itself (``selectors.ledger_discrepancies`` checks it).
    wallet = models.ForeignKey(
        Wallet,
        on_delete=models.PROTECT,
        db_index=False,  # the (wallet, -id) index below serves it
        related_name="entries",
        verbose_name=_("wallet"),
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("account"),
    )
    side = models.CharField(_("side"), max_length=8, choices=Side.choices)
    amount_fen = MoneyField(_("amount (fen)"))
    balance_after_fen = MoneyField(_("balance after (fen)"), allow_negative=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ("-id",)
        indexes = [models.Index(fields=("wallet", "-id"), name="billing_entry_wallet_id")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="billing_entry_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_side_display()} {self.account} {self.amount_fen}"

    @property
    def signed_fen(self) -> int:
        """What the entry did to its account's balance (credits add, debits subtract)."""
        return self.amount_fen if self.side == self.Side.CREDIT else -self.amount_fen


class Hold(models.Model):
    """An intercept fee set aside from the available balance until the outcome is known."""

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        CAPTURED = "captured", _("Charged")
        RELEASED = "released", _("Released")

    TRANSITIONS = {
        Status.HELD: {Status.CAPTURED, Status.RELEASED},
        Status.CAPTURED: set(),
        Status.RELEASED: set(),
    }

    wallet = models.ForeignKey(
        Wallet,
        on_delete=models.PROTECT,
        db_index=False,  # the (wallet, -id) index below serves it
        related_name="holds",
        verbose_name=_("wallet"),
    )
    reference = models.CharField(_("reference"), max_length=100)
    # Couriers are never deleted; an index only for that check would cost every hold.
    courier = models.ForeignKey(
        Courier,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
        verbose_name=_("courier"),
    )
    amount_fen = MoneyField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.HELD
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("fee hold")
        verbose_name_plural = _("fee holds")
        ordering = ("-id",)
        indexes = [models.Index(fields=("wallet", "-id"), name="billing_hold_wallet_id")]
        constraints = [
            models.UniqueConstraint(fields=("reference",), name="billing_hold_reference"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="billing_hold_positive"),
        ]

    def __str__(self) -> str:
        # Not the reference (intercept:42): titles and breadcrumbs are read by merchants too.
        return _("Fee hold #%(number)s") % {"number": self.pk}


class HoldEvent(StatusHistory):
    """Append-only history of a hold's status."""

    hold = models.ForeignKey(
        Hold,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("fee hold"),
    )
    from_status, to_status = status_fields(Hold.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("fee hold event")
        verbose_name_plural = _("fee hold events")


class Adjustment(models.Model):
    """A manual correction of a wallet by finance; large ones wait for a second finance user."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected")

    TRANSITIONS = {
        Status.PENDING: {Status.APPLIED, Status.REJECTED},
        Status.APPLIED: set(),
        Status.REJECTED: set(),
    }

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="adjustments", verbose_name=_("wallet")
    )
    amount_fen = MoneyField(
        _("amount (fen)"),
        allow_negative=True,
        help_text=_("Positive adds to the available balance, negative takes from it."),
    )
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("wallet adjustment")
        verbose_name_plural = _("wallet adjustments")
        ordering = ("-id",)
        constraints = [
            models.CheckConstraint(condition=~Q(amount_fen=0), name="billing_adjustment_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} {self.amount_fen}"

    @property
    def reference(self) -> str:
        return f"adjustment:{self.pk}"


class AdjustmentEvent(StatusHistory):
    """Append-only history of an adjustment's status."""

    adjustment = models.ForeignKey(
        Adjustment,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("wallet adjustment"),
    )
    from_status, to_status = status_fields(Adjustment.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("adjustment event")
        verbose_name_plural = _("adjustment events")


class TopUp(models.Model):
    """Money received from outside (a bank transfer) for a wallet, as finance filed it.

    At or below ``settings.BILLING_TOP_UP_APPROVAL_FEN`` it applies at once; above, it waits for
    a second finance user. It is also the record of a top-up refused at input (its bank serial
    already used, an amount that is not money), kept with its reason for finance to read; a
    refused top-up never moved money. The ledger transaction of an applied top-up has the bank
    serial as its reference, so ``(kind, reference)`` applies each serial once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPLIED = "applied", _("Applied")
        REJECTED = "rejected", _("Rejected")
        REFUSED = "refused", _("Refused at input")

    TRANSITIONS = {
        Status.PENDING: {Status.APPLIED, Status.REJECTED},
        Status.APPLIED: set(),
        Status.REJECTED: set(),
        Status.REFUSED: set(),
    }
    # The statuses that hold their bank serial: one such top-up per serial.
    LIVE = (Status.PENDING, Status.APPLIED)

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="top_ups", verbose_name=_("wallet")
    )
    # Empty only on a top-up refused at input whose amount was not money: what was typed is kept.
    amount_fen = MoneyField(_("amount (fen)"), null=True, blank=True)
    amount_typed = models.CharField(_("amount typed"), max_length=32, blank=True)
    # Stored in its normal form (``validators.normalise_reference``): trimmed, upper case.
    external_reference = models.CharField(_("external reference"), max_length=100)
    note = models.CharField(_("note"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    # Why it was refused or rejected.
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("top-up")
        verbose_name_plural = _("top-up records")
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(
                fields=("external_reference",),
                condition=Q(status__in=["pending", "applied"]),
                name="billing_topup_one_live_reference",
            ),
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=False, amount_fen__gt=0) | Q(status="refused"),
                name="billing_topup_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} {self.external_reference}"


class TopUpEvent(StatusHistory):
    """Append-only history of a top-up's status."""

    top_up = models.ForeignKey(
        TopUp, on_delete=models.PROTECT, related_name="events", verbose_name=_("top-up")
    )
    from_status, to_status = status_fields(TopUp.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("top-up event")
        verbose_name_plural = _("top-up events")


class FeeAction(models.TextChoices):
    RETURN = "return", _("Return to sender")
    REDIRECT = "redirect", _("Deliver to a new address")


class FeeRule(models.Model):
    """The fee for one courier and action from a moment on; the latest rule in force applies.

    Rules are added, not rewritten: a rule already in force is read-only, so the fee any past
    intercept was quoted stays explainable. A hold keeps its own amount in any case.
    """

    courier = models.ForeignKey(
        Courier, on_delete=models.PROTECT, related_name="+", verbose_name=_("courier")
    )
    action = models.CharField(_("action"), max_length=16, choices=FeeAction.choices)
    valid_from = models.DateTimeField(_("valid from"))
    amount_fen = MoneyField(_("fee (fen)"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("fee rule")
        verbose_name_plural = _("fee rules")
        ordering = ("courier", "action", "-valid_from")
        constraints = [
            models.UniqueConstraint(
                fields=("courier", "action", "valid_from"), name="billing_feerule_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.courier} {self.get_action_display()}"


class PaymentPassword(models.Model):
    """A shop's 6-digit payment PIN, hashed; wrong tries are counted in the row, not in memory."""

    shop = models.OneToOneField(
        "shops.Shop",
        on_delete=models.CASCADE,
        related_name="payment_password",
        verbose_name=_("shop"),
    )
    pin_hash = models.CharField(_("PIN hash"), max_length=256)
    failed_attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("set by"),
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("payment password")
        verbose_name_plural = _("payment passwords")

    def __str__(self) -> str:
        return str(self.shop)


class InvoiceRequest(models.Model):
    """A shop's request for an invoice over captured fees, reviewed and issued by finance.

    Its lines are a snapshot of the fees (reference, courier, amount) at request time. A fee is
    on at most one live (requested or issued) invoice, which the database enforces on the lines.
    """

    class Type(models.TextChoices):
        PAPER_NORMAL = "paper_normal", _("General VAT invoice (paper)")
        PAPER_SPECIAL = "paper_special", _("Special VAT invoice (paper)")
        DIGITAL_NORMAL = "digital_normal", _("Fully digital general invoice")
        DIGITAL_SPECIAL = "digital_special", _("Fully digital special invoice")

    SPECIAL_TYPES = (Type.PAPER_SPECIAL, Type.DIGITAL_SPECIAL)

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Awaiting review")
        ISSUED = "issued", _("Issued")
        REJECTED = "rejected", _("Rejected")
        REVERSED = "reversed", _("Reversed (red-letter)")

    LIVE = (Status.REQUESTED, Status.ISSUED)
    TRANSITIONS = {
        Status.REQUESTED: {Status.ISSUED, Status.REJECTED},
        Status.ISSUED: {Status.REVERSED},
        Status.REJECTED: set(),
        Status.REVERSED: set(),
    }

    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("wallet")
    )
    invoice_type = models.CharField(_("invoice type"), max_length=16, choices=Type.choices)
    title = models.CharField(_("invoice title"), max_length=100)
    taxpayer_id = models.CharField(_("unified social credit code"), max_length=18)
    address_phone = models.CharField(_("address and phone"), max_length=200, blank=True)
    bank_account = models.CharField(_("bank and account number"), max_length=200, blank=True)
    amount_fen = MoneyField(_("amount (fen)"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.REQUESTED
    )
    invoice_number = models.CharField(_("invoice number"), max_length=32, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("invoice request")
        verbose_name_plural = _("invoice requests")
        ordering = ("-id",)
        indexes = [models.Index(fields=("wallet", "-id"), name="billing_invoice_wallet_id")]

    def __str__(self) -> str:
        return f"{self.title} {self.get_invoice_type_display()}"


class InvoiceLine(models.Model):
    """One captured fee on an invoice, as it was when the invoice was requested."""

    invoice = models.ForeignKey(
        InvoiceRequest,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("invoice request"),
    )
    capture = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="invoice_lines",
        verbose_name=_("fee charged"),
    )
    reference = models.CharField(_("reference"), max_length=100)
    courier_name = models.CharField(_("courier"), max_length=64)
    amount_fen = MoneyField(_("amount (fen)"))
    charged_at = models.DateTimeField(_("charged at"))
    # True while the invoice is requested or issued; a rejected or reversed invoice frees its
    # fees for another one.
    live = models.BooleanField(_("live"), default=True)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ("invoice", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("capture",),
                condition=Q(live=True),
                name="billing_invoiceline_one_live_invoice",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class InvoiceEvent(StatusHistory):
    """Append-only history of an invoice request's status."""

    invoice = models.ForeignKey(
        InvoiceRequest,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("invoice request"),
    )
    from_status, to_status = status_fields(InvoiceRequest.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("invoice event")
        verbose_name_plural = _("invoice events")


class Export(models.Model):
    """A finance export built by a worker as an Excel workbook, with its progress.

    CSV needs no record: it is streamed while the request runs. A workbook of a million rows
    takes minutes, so it is queued, built in the background and downloaded when done.
    """

    class Kind(models.TextChoices):
        FEES = "fees", _("Charged fees")
        ENTRIES = "entries", _("Ledger entries")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Being built")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    TRANSITIONS = {
        Status.QUEUED: {Status.RUNNING, Status.FAILED},
        # Running again: the worker building it died and the task was delivered again.
        Status.RUNNING: {Status.DONE, Status.FAILED, Status.RUNNING},
        Status.DONE: set(),
        Status.FAILED: set(),
    }

    kind = models.CharField(_("content"), max_length=16, choices=Kind.choices)
    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to"))
    shop = models.ForeignKey(
        "shops.Shop",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("shop"),
    )
    courier = models.ForeignKey(
        Courier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("courier"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    language = models.CharField(_("language"), max_length=16, default=settings.LANGUAGE_CODE)
    rows_total = models.PositiveIntegerField(_("rows in all"), null=True, blank=True)
    rows_done = models.PositiveIntegerField(_("rows written"), default=0)
    file = models.FileField(_("file"), upload_to="exports/", blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("finance export")
        verbose_name_plural = _("finance exports")
        ordering = ("-id",)
        constraints = [
            models.CheckConstraint(
                condition=Q(date_to__gte=F("date_from")), name="billing_export_period_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date_from}–{self.date_to}"


class ExportEvent(StatusHistory):
    """Append-only history of an export's status."""

    export = models.ForeignKey(
        Export, on_delete=models.CASCADE, related_name="events", verbose_name=_("finance export")
    )
    from_status, to_status = status_fields(Export.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("finance export event")
        verbose_name_plural = _("finance export events")
