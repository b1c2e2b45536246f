"""Writes with rules on wallets, the ledger, fee holds, top-ups, adjustments and payment
passwords.

Every movement of money is a posting (``billing.posting``): a transaction with a debit and a
credit entry, the wallet's accounts locked in primary key order, both cached balances moved with
it, and the shop's money never below zero (a CHECK constraint in the database; its refusal is
turned into a message here). Side effects that must happen once are unique in the database:
``(kind, reference)`` of a transaction, the reference of a hold.

Who may call what (the shop owner, platform finance) is decided by the caller, which knows the
shops' members; the finance-only services also check the actor's platform group themselves.
"""

from contextlib import contextmanager
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import posting
from billing.models import (
    Account,
    Adjustment,
    AdjustmentEvent,
    FeeRule,
    Hold,
    InvoiceEvent,
    InvoiceLine,
    InvoiceRequest,
    LedgerTransaction,
    PaymentPassword,
    TopUp,
    TopUpEvent,
    Wallet,
)
from billing.money import format_fen
from billing.pins import pin_hash, pin_matches
from billing.posting import NotEnough, Transfer
from billing.validators import normalise_reference, normalise_uscc, validate_uscc
from shops import webhooks
from shops.history import status_transition
from shops.models import PLATFORM_FINANCE

FINANCE_GROUP = PLATFORM_FINANCE
# Adjustments above 10,000 yuan (either way) wait for a second finance user.
ADJUSTMENT_APPROVAL_ABOVE_FEN = 10_000 * 100
# Far above any single movement this product makes; a typo of extra zeros is refused.
MAX_AMOUNT_FEN = 100_000_000 * 100
PIN_LENGTH = 6
PIN_MAX_FAILURES = 5
PIN_LOCK = timedelta(minutes=30)

A = Account.Kind


class BillingError(Exception):
    """A billing rule refused the write; the message is for the user (translated).

    The same contract as ``intercepts.services.errors.DomainError``, which billing may not
    import.
    """


# --- Checks ----------------------------------------------------------------------------------


def is_finance(user) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=FINANCE_GROUP).exists()


def _require_finance(actor) -> None:
    if not is_finance(actor):
        raise BillingError(_("Only platform finance may do this."))


def _require_positive(amount_fen) -> int:
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise BillingError(_("The amount must be a whole number of fen."))
    if amount_fen <= 0:
        raise BillingError(_("The amount must be greater than zero."))
    if amount_fen > MAX_AMOUNT_FEN:
        raise BillingError(_("The amount is too large."))
    return amount_fen


def _require_reference(reference: str) -> str:
    reference = (reference or "").strip()
    if not reference:
        raise BillingError(_("A reference is required."))
    if len(reference) > 100:
        raise BillingError(_("The reference is too long (at most 100 characters)."))
    return reference


def _is_violation(exc: IntegrityError, constraint: str) -> bool:
    """True if the database refused the write because of this named constraint."""
    diag = getattr(getattr(exc, "__cause__", None), "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name == constraint
    text = str(exc)
    if constraint in text:
        return True
    # SQLite (the embedded default) names a unique constraint's columns, not the constraint.
    for model in apps.get_app_config("billing").get_models():
        for candidate in model._meta.constraints:
            if candidate.name == constraint and getattr(candidate, "fields", None):
                table = model._meta.db_table
                columns = ", ".join(
                    f"{table}.{model._meta.get_field(field).column}" for field in candidate.fields
                )
                return f"UNIQUE constraint failed: {columns}" in text
    return False


# --- Posting ---------------------------------------------------------------------------------

NEGATIVE_BALANCE = "billing_account_shop_money_not_negative"


def _not_enough(available_fen: int, needed_fen: int) -> BillingError:
    return BillingError(
        _("Not enough balance in the wallet: %(available)s yuan available, %(needed)s yuan needed.")
        % {"available": format_fen(available_fen), "needed": format_fen(needed_fen)}
    )


def _balance(wallet_id: int, kind: str) -> int:
    return Account.objects.values_list("balance_fen", flat=True).get(wallet_id=wallet_id, kind=kind)


@contextmanager
def _refusing_overdraft(*, wallet_id, transfer: Transfer, amount_fen: int):
    """Turn the database's refusal of a negative shop balance (or the ORM path's own check)
    into the user's message, with the balance there was."""
    try:
        yield
    except NotEnough as exc:
        raise _not_enough(exc.balance_fen, amount_fen) from exc
    except IntegrityError as exc:
        if not _is_violation(exc, NEGATIVE_BALANCE):
            raise
        if wallet_id is None:
            raise BillingError(_("Not enough balance in the wallet.")) from exc
        raise _not_enough(_balance(wallet_id, transfer.debit), amount_fen) from exc


def _transfer(
    *,
    wallet_id: int,
    kind: str,
    reference: str,
    amount_fen: int,
    transfer: Transfer,
    actor,
    memo="",
    courier_id: int | None = None,
) -> int:
    """Post one transfer on a wallet; returns the ledger transaction's id."""
    posting_args = {
        "wallet_id": wallet_id,
        "kind": kind,
        "reference": reference,
        "amount_fen": amount_fen,
        "transfer": transfer,
        "actor": actor,
        "memo": memo,
        "courier_id": courier_id,
    }
    with (
        _refusing_overdraft(wallet_id=wallet_id, transfer=transfer, amount_fen=amount_fen),
        transaction.atomic(),
    ):
        return posting.post_orm(**posting_args).pk


# --- Wallets ---------------------------------------------------------------------------------


def wallet_open(*, actor, shop_id: int) -> Wallet:
    """Open the shop's wallet with its accounts; opening it again returns the same wallet.

    The caller checks that ``actor`` is the shop's owner or platform finance.
    """
    existing = Wallet.objects.filter(shop_id=shop_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(shop_id=shop_id, opened_by=actor)
            # Created in Kind order, so the primary key order (the lock order) is fixed too.
            Account.objects.bulk_create(
                [Account(wallet=wallet, kind=kind) for kind in Account.Kind.values]
            )
    except IntegrityError:
        # Opened by someone else a moment ago.
        return Wallet.objects.get(shop_id=shop_id)
    return wallet


# --- Decisions of a second finance user (top-ups, adjustments) -----------------------------


def _decision_set_status(*, record, to_status: str, actor, note: str, already, **fields) -> bool:
    """Move a top-up or an adjustment to ``to_status`` with its history row; True if this call
    moved it. ``already`` is the message when it was decided otherwise (``%(status)s``)."""
    model = type(record)
    return status_transition(
        record,
        to_status=to_status,
        refuse=lambda current: BillingError(already % {"status": model.Status(current).label}),
        actor=actor,
        note=note,
        decided_by=actor,
        decided_at=timezone.now(),
        **fields,
    )


def _require_second_approver(actor, record, message) -> None:
    if actor.pk == record.requested_by_id:
        raise BillingError(message)


# --- Top-ups ---------------------------------------------------------------------------------

ONE_LIVE_TOP_UP = "billing_topup_one_live_reference"
ONE_TRANSACTION_PER_REFERENCE = "billing_transaction_kind_reference"


def _reference_applied(reference: str) -> BillingError:
    return BillingError(
        _("The external reference %(reference)s has already been applied.")
        % {"reference": reference}
    )


def _require_reference_unused(reference: str) -> None:
    """Refuse a bank serial that a top-up holds (waiting or applied) or the ledger has."""
    live = (
        TopUp.objects.filter(external_reference=reference, status__in=TopUp.LIVE)
        .values_list("status", flat=True)
        .first()
    )
    if live == TopUp.Status.PENDING:
        raise BillingError(
            _("A top-up with the external reference %(reference)s already awaits approval.")
            % {"reference": reference}
        )
    # Top-ups filed before references were kept in upper case are found in any case.
    applied = LedgerTransaction.objects.filter(
        kind=LedgerTransaction.Kind.TOP_UP, reference__iexact=reference
    )
    if live == TopUp.Status.APPLIED or applied.exists():
        raise _reference_applied(reference)


def top_up_set_status(*, top_up: TopUp, to_status: str, actor=None, note: str = "", **fields):
    """The one way a top-up changes status. True if this call moved it."""
    return _decision_set_status(
        record=top_up,
        to_status=to_status,
        actor=actor,
        note=note,
        already=_("This top-up is already %(status)s."),
        **fields,
    )


def _top_up_apply(*, top_up: TopUp, actor, note: str) -> None:
    """Credit a pending top-up, once: of two concurrent approvals the second finds it applied."""
    with transaction.atomic():
        if not top_up_set_status(
            top_up=top_up, to_status=TopUp.Status.APPLIED, actor=actor, note=note
        ):
            return
        _transfer(
            wallet_id=top_up.wallet_id,
            kind=LedgerTransaction.Kind.TOP_UP,
            reference=top_up.external_reference,
            amount_fen=top_up.amount_fen,
            transfer=Transfer(debit=A.FUNDING, credit=A.AVAILABLE),
            actor=actor,
            memo=top_up.note,
        )


def top_up_request(
    *, actor, wallet: Wallet, amount_fen: int, external_reference: str, note: str = ""
) -> TopUp:
    """Money received from outside (a bank transfer), to be credited to the available balance.

    At or below ``settings.BILLING_TOP_UP_APPROVAL_FEN`` it applies at once; above, it waits as
    a pending top-up until a second, different finance user approves it.

    The external reference (the bank's serial number, kept in its normal form: trimmed, upper
    case) applies once: a second top-up with it is refused, not repeated, because it is most
    likely a second payment filed under the same number, which finance must look at. A refused
    request is kept as a refused top-up with its reason, written before the refusal is raised
    (so it stays unless the caller rolls back a transaction of its own).
    """
    _require_finance(actor)
    reference = normalise_reference(external_reference)
    note = (note or "").strip()[:255]
    try:
        amount_fen = _require_positive(amount_fen)
        reference = _require_reference(reference)
        _require_reference_unused(reference)
        with transaction.atomic():
            top_up = TopUp.objects.create(
                wallet=wallet,
                amount_fen=amount_fen,
                external_reference=reference,
                note=note,
                requested_by=actor,
            )
            TopUpEvent.objects.create(top_up=top_up, to_status=TopUp.Status.PENDING, actor=actor)
            if amount_fen <= settings.BILLING_TOP_UP_APPROVAL_FEN:
                _top_up_apply(top_up=top_up, actor=actor, note="")
    except IntegrityError as exc:
        if not (
            _is_violation(exc, ONE_LIVE_TOP_UP) or _is_violation(exc, ONE_TRANSACTION_PER_REFERENCE)
        ):
            raise
        # Filed by someone else a moment ago (committed, or the database would have waited):
        # say whether it waits or was applied.
        try:
            _require_reference_unused(reference)
            refusal = _reference_applied(reference)
        except BillingError as again:
            refusal = again
    except BillingError as exc:
        refusal = exc
    else:
        return top_up
    top_up_refuse(
        actor=actor,
        wallet=wallet,
        reason=str(refusal),
        amount_fen=amount_fen,
        external_reference=reference,
        note=note,
    )
    raise refusal


def top_up_refuse(
    *,
    actor,
    wallet: Wallet,
    reason: str,
    amount_fen: int | None = None,
    amount_typed: str = "",
    external_reference: str = "",
    note: str = "",
) -> TopUp:
    """Keep a top-up refused at input (its serial already used, an amount that is not money) as
    a refused top-up with the reason finance was shown; it moves no money."""
    _require_finance(actor)
    valid = isinstance(amount_fen, int) and not isinstance(amount_fen, bool) and amount_fen > 0
    if not valid and not amount_typed and amount_fen is not None:
        amount_typed = str(amount_fen)
    with transaction.atomic():
        top_up = TopUp.objects.create(
            wallet=wallet,
            status=TopUp.Status.REFUSED,
            amount_fen=amount_fen if valid and amount_fen <= MAX_AMOUNT_FEN else None,
            amount_typed=(amount_typed or "")[:32],
            external_reference=normalise_reference(external_reference)[:100],
            note=(note or "").strip()[:255],
            reason=(reason or "")[:255],
            requested_by=actor,
            decided_at=timezone.now(),
        )
        TopUpEvent.objects.create(
            top_up=top_up, to_status=TopUp.Status.REFUSED, actor=actor, note=top_up.reason
        )
    return top_up


def top_up_approve(*, actor, top_up: TopUp, note: str = "") -> TopUp:
    """A second finance user, not the requester, approves a waiting top-up: it is credited."""
    _require_finance(actor)
    _require_second_approver(
        actor,
        top_up,
        _("A large top-up must be approved by another finance user than its requester."),
    )
    try:
        _top_up_apply(top_up=top_up, actor=actor, note=(note or "").strip())
    except IntegrityError as exc:
        if not _is_violation(exc, ONE_TRANSACTION_PER_REFERENCE):
            raise
        raise _reference_applied(top_up.external_reference) from exc
    return top_up


def top_up_reject(*, actor, top_up: TopUp, note: str = "") -> TopUp:
    """Finance turns a waiting top-up down (its requester may withdraw it); its serial is free
    for a corrected request."""
    _require_finance(actor)
    note = (note or "").strip()[:255]
    with transaction.atomic():
        top_up_set_status(
            top_up=top_up, to_status=TopUp.Status.REJECTED, actor=actor, note=note, reason=note
        )
    return top_up


def wallet_top_up(
    *, actor, wallet: Wallet, amount_fen: int, external_reference: str, note: str = ""
) -> LedgerTransaction:
    """A top-up that must apply at once (the demo data, scripts): ``top_up_request`` for an
    amount at or below the approval threshold, returning its ledger transaction. A larger amount
    is refused here and moves nothing: it needs ``top_up_request`` and a second finance user."""
    threshold = settings.BILLING_TOP_UP_APPROVAL_FEN
    if isinstance(amount_fen, int) and amount_fen > threshold:
        raise BillingError(
            _("Above %(yuan)s yuan a top-up needs the approval of a second finance user.")
            % {"yuan": format_fen(threshold)}
        )
    top_up = top_up_request(
        actor=actor,
        wallet=wallet,
        amount_fen=amount_fen,
        external_reference=external_reference,
        note=note,
    )
    return LedgerTransaction.objects.get(
        kind=LedgerTransaction.Kind.TOP_UP, reference=top_up.external_reference
    )


# --- Adjustments -----------------------------------------------------------------------------


def adjustment_set_status(
    *, adjustment: Adjustment, to_status: str, actor=None, note: str = ""
) -> bool:
    """The one way an adjustment changes status. True if this call moved it."""
    return _decision_set_status(
        record=adjustment,
        to_status=to_status,
        actor=actor,
        note=note,
        already=_("This adjustment is already %(status)s."),
    )


def _adjustment_apply(*, adjustment: Adjustment, actor, note: str) -> None:
    if adjustment.amount_fen > 0:
        transfer = Transfer(debit=A.ADJUSTMENT, credit=A.AVAILABLE)
    else:
        transfer = Transfer(debit=A.AVAILABLE, credit=A.ADJUSTMENT)
    with transaction.atomic():
        if not adjustment_set_status(
            adjustment=adjustment, to_status=Adjustment.Status.APPLIED, actor=actor, note=note
        ):
            return
        _transfer(
            wallet_id=adjustment.wallet_id,
            kind=LedgerTransaction.Kind.ADJUSTMENT,
            reference=adjustment.reference,
            amount_fen=abs(adjustment.amount_fen),
            transfer=transfer,
            actor=actor,
            memo=adjustment.reason,
        )


def wallet_adjust(*, actor, wallet: Wallet, amount_fen: int, reason: str) -> Adjustment:
    """A correction by finance, positive or negative, with a reason.

    Up to 10,000 yuan it applies at once; above, it waits as a pending adjustment until a
    second, different finance user approves it.
    """
    _require_finance(actor)
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen == 0:
        raise BillingError(_("The adjustment must be a non-zero amount."))
    _require_positive(abs(amount_fen))
    reason = (reason or "").strip()
    if not reason:
        raise BillingError(_("An adjustment needs a reason."))
    with transaction.atomic():
        adjustment = Adjustment.objects.create(
            wallet=wallet, amount_fen=amount_fen, reason=reason[:255], requested_by=actor
        )
        AdjustmentEvent.objects.create(
            adjustment=adjustment, to_status=Adjustment.Status.PENDING, actor=actor
        )
        if abs(amount_fen) <= ADJUSTMENT_APPROVAL_ABOVE_FEN:
            _adjustment_apply(adjustment=adjustment, actor=actor, note="")
    return adjustment


def adjustment_approve(*, actor, adjustment: Adjustment, note: str = "") -> Adjustment:
    _require_finance(actor)
    _require_second_approver(
        actor,
        adjustment,
        _("A large adjustment must be approved by another finance user than its requester."),
    )
    _adjustment_apply(adjustment=adjustment, actor=actor, note=(note or "").strip())
    return adjustment


def adjustment_reject(*, actor, adjustment: Adjustment, note: str = "") -> Adjustment:
    _require_finance(actor)
    with transaction.atomic():
        adjustment_set_status(
            adjustment=adjustment,
            to_status=Adjustment.Status.REJECTED,
            actor=actor,
            note=(note or "").strip(),
        )
    return adjustment


# --- Fee holds -------------------------------------------------------------------------------

HOLD_TRANSFER = Transfer(debit=A.AVAILABLE, credit=A.HELD)
SETTLEMENTS = {
    Hold.Status.CAPTURED: (LedgerTransaction.Kind.CAPTURE, Transfer(A.HELD, A.FEE_REVENUE)),
    Hold.Status.RELEASED: (LedgerTransaction.Kind.RELEASE, Transfer(A.HELD, A.AVAILABLE)),
}

SETTLEMENT_EVENTS = {
    Hold.Status.CAPTURED: webhooks.WALLET_FEE_CAPTURED,
    Hold.Status.RELEASED: webhooks.WALLET_FEE_RELEASED,
}


def hold_set_status(*, hold: Hold, to_status: str, actor=None) -> bool:
    """The one way a hold changes status. True if this call moved it, False if it already was
    there; capture after release, or the reverse, is refused with the user's message."""

    def refuse(current: str) -> BillingError:
        if current == Hold.Status.RELEASED:
            message = _("The fee for %(reference)s was released; it can no longer be charged.")
        else:
            message = _("The fee for %(reference)s was charged; it can no longer be released.")
        return BillingError(message % {"reference": hold.reference})

    return status_transition(
        hold, to_status=to_status, refuse=refuse, actor=actor, updated_at=timezone.now()
    )


def _same_hold(hold: Hold, *, shop_id: int, amount_fen: int, courier_id: int) -> Hold:
    wallet_id = Wallet.objects.filter(shop_id=shop_id).values_list("pk", flat=True).first()
    if (hold.wallet_id, hold.amount_fen, hold.courier_id) != (wallet_id, amount_fen, courier_id):
        raise BillingError(
            _("The reference %(reference)s already holds a different fee.")
            % {"reference": hold.reference}
        )
    return hold


def _hold_create(*, shop_id, reference, amount_fen, courier_id, actor) -> Hold | None:
    """The new hold with its history row and its posting; None if nothing was written."""
    wallet_id = Wallet.objects.filter(shop_id=shop_id).values_list("pk", flat=True).first()
    if wallet_id is None or Hold.objects.filter(reference=reference).exists():
        return None
    try:
        with transaction.atomic():
            now = timezone.now()
            hold = Hold.objects.create(
                wallet_id=wallet_id,
                reference=reference,
                courier_id=courier_id,
                amount_fen=amount_fen,
                created_at=now,
                updated_at=now,
            )
            hold.events.create(to_status=hold.status, actor=actor, created_at=now)
            posting.post_orm(
                wallet_id=wallet_id,
                kind=LedgerTransaction.Kind.HOLD,
                reference=reference,
                amount_fen=amount_fen,
                transfer=HOLD_TRANSFER,
                actor=actor,
                memo="",
            )
    except IntegrityError as exc:
        if _is_violation(exc, "billing_hold_reference"):
            return None  # held concurrently a moment ago
        raise
    return hold


def wallet_hold(*, shop_id: int, reference: str, amount_fen: int, courier, actor=None) -> Hold:
    """Set a fee aside from the shop's available balance for what ``reference`` names
    (``intercept:42``). Repeating it returns the first hold and writes nothing."""
    reference = _require_reference(reference)
    amount_fen = _require_positive(amount_fen)
    courier_id = getattr(courier, "pk", courier)
    args = {
        "shop_id": shop_id,
        "reference": reference,
        "amount_fen": amount_fen,
        "courier_id": courier_id,
        "actor": actor,
    }
    try:
        hold = _hold_create(**args)
    except (NotEnough, IntegrityError) as exc:
        wallet_id = Wallet.objects.filter(shop_id=shop_id).values_list("pk", flat=True).first()
        with _refusing_overdraft(
            wallet_id=wallet_id, transfer=HOLD_TRANSFER, amount_fen=amount_fen
        ):
            raise exc
    if hold is not None:
        return hold
    # Nothing was written: the reference was held before, or the shop has no wallet.
    existing = Hold.objects.filter(reference=reference).first()
    if existing is not None:
        return _same_hold(existing, shop_id=shop_id, amount_fen=amount_fen, courier_id=courier_id)
    raise BillingError(_("The shop has no wallet yet; its owner or finance must open it."))


def _hold_by_reference(reference: str) -> Hold:
    hold = Hold.objects.filter(reference=reference).first()
    if hold is None:
        raise BillingError(_("No fee is held for %(reference)s.") % {"reference": reference or "-"})
    return hold


def _settle(*, reference: str, to_status: str, actor) -> Hold:
    reference = (reference or "").strip()
    kind, transfer = SETTLEMENTS[to_status]
    with transaction.atomic():
        hold = _hold_by_reference(reference)
        if hold_set_status(hold=hold, to_status=to_status, actor=actor):
            posting.post_orm(
                wallet_id=hold.wallet_id,
                kind=kind,
                reference=hold.reference,
                amount_fen=hold.amount_fen,
                transfer=transfer,
                actor=actor,
                memo="",
            )
            # Only when this call moved the money: a repeated capture tells nobody twice.
            webhooks.webhook_emit(
                shop_id=Wallet.objects.values_list("shop_id", flat=True).get(pk=hold.wallet_id),
                event_type=SETTLEMENT_EVENTS[to_status],
                object_type="fee",
                object_id=hold.reference,
                data=lambda: {
                    "reference": hold.reference,
                    "amount_fen": hold.amount_fen,
                    "courier": hold.courier.code,
                },
            )
    return hold


def wallet_capture(*, reference: str, actor=None) -> Hold:
    """Charge a held fee: held money becomes platform fee revenue. Safe to repeat."""
    return _settle(reference=reference, to_status=Hold.Status.CAPTURED, actor=actor)


def wallet_release(*, reference: str, actor=None) -> Hold:
    """Give a held fee back to the available balance. Safe to repeat."""
    return _settle(reference=reference, to_status=Hold.Status.RELEASED, actor=actor)


def wallet_compensate(
    *, shop_id: int, reference: str, amount_fen: int, courier, actor=None, note: str = ""
) -> LedgerTransaction:
    """Pay claim compensation (``claim:7``) into the shop's available balance, against the
    courier that owes it (the transaction names the courier), once per reference; repeating
    returns the first payment."""
    reference = _require_reference(reference)
    courier_id = getattr(courier, "pk", courier)
    amount_fen = _require_positive(amount_fen)
    wallet_id = Wallet.objects.filter(shop_id=shop_id).values_list("pk", flat=True).first()
    if wallet_id is None:
        raise BillingError(_("The shop has no wallet yet; its owner or finance must open it."))
    kind = LedgerTransaction.Kind.COMPENSATION
    try:
        txn_id = _transfer(
            wallet_id=wallet_id,
            kind=kind,
            reference=reference,
            amount_fen=amount_fen,
            transfer=Transfer(debit=A.COMPENSATION, credit=A.AVAILABLE),
            actor=actor,
            memo=(note or "").strip()[:255],
            courier_id=courier_id,
        )
    except IntegrityError as exc:
        if not _is_violation(exc, "billing_transaction_kind_reference"):
            raise
        return LedgerTransaction.objects.get(kind=kind, reference=reference)
    return LedgerTransaction.objects.get(pk=txn_id)


# --- Fee rules -----------------------------------------------------------------------------

# A rule typed "from now" reaches the server a little later; that is not the past.
FEE_RULE_START_SLACK = timedelta(minutes=5)


def fee_rule_save(*, actor, rule: FeeRule) -> FeeRule:
    """Add a fee rule, or correct one that has not started yet.

    A rule in force is never rewritten: the fee it quoted must stay explainable. A new fee is a
    new rule with a later start.
    """
    _require_finance(actor)
    now = timezone.now()
    if rule.pk is not None:
        started = FeeRule.objects.filter(pk=rule.pk, valid_from__lte=now).exists()
        if started:
            raise BillingError(
                _(
                    "A fee rule already in force cannot be changed; add a new rule with a "
                    "later start instead."
                )
            )
    if rule.valid_from is None or rule.valid_from < now - FEE_RULE_START_SLACK:
        raise BillingError(_("A new fee rule cannot start in the past."))
    if rule.pk is None:
        rule.created_by = actor
    rule.full_clean()
    rule.save()
    return rule


# --- Payment password ------------------------------------------------------------------------


def _require_pin_format(pin: str) -> str:
    pin = (pin or "").strip()
    if len(pin) != PIN_LENGTH or not pin.isascii() or not pin.isdigit():
        raise BillingError(_("The payment password is exactly 6 digits."))
    return pin


def payment_password_set(*, actor, shop_id: int, pin: str) -> PaymentPassword:
    """Set the shop's first payment password. The caller checks that ``actor`` owns the shop;
    changing an existing one needs the owner's login password (``payment_password_reset``)."""
    pin = _require_pin_format(pin)
    with transaction.atomic():
        if PaymentPassword.objects.select_for_update().filter(shop_id=shop_id).exists():
            raise BillingError(
                _("The shop already has a payment password; reset it with your login password.")
            )
        return PaymentPassword.objects.create(shop_id=shop_id, pin_hash=pin_hash(pin), set_by=actor)


def payment_password_reset(
    *, actor, shop_id: int, login_password: str, new_pin: str
) -> PaymentPassword:
    """The owner replaces the payment password (and lifts a lock) by proving their login
    password. The caller checks that ``actor`` owns the shop."""
    new_pin = _require_pin_format(new_pin)
    if not actor.check_password(login_password or ""):
        raise BillingError(_("Your login password is not correct."))
    with transaction.atomic():
        password, _created = PaymentPassword.objects.select_for_update().get_or_create(
            shop_id=shop_id, defaults={"pin_hash": pin_hash(new_pin), "set_by": actor}
        )
        password.pin_hash = pin_hash(new_pin)
        password.failed_attempts = 0
        password.locked_until = None
        password.set_by = actor
        password.updated_at = timezone.now()
        password.save()
    return password


def payment_password_check(*, shop_id: int, pin: str) -> None:
    """Pass quietly if ``pin`` is the shop's payment password, else raise BillingError.

    Five wrong tries in a row lock it for 30 minutes. The count is kept in the row under a row
    lock and committed before the refusal is raised, so parallel guesses are all counted.
    """
    error = None
    with transaction.atomic():
        password = PaymentPassword.objects.select_for_update().filter(shop_id=shop_id).first()
        if password is None:
            raise BillingError(_("The shop has not set a payment password yet."))
        now = timezone.now()
        if password.locked_until and password.locked_until > now:
            raise BillingError(
                _("Too many wrong tries: the payment password is locked until %(time)s.")
                % {"time": timezone.localtime(password.locked_until).strftime("%H:%M")}
            )
        matches, rehash = pin_matches((pin or "").strip(), password.pin_hash)
        if matches:
            changes = {}
            if password.failed_attempts or password.locked_until:
                changes.update(failed_attempts=0, locked_until=None)
            if rehash:
                changes["pin_hash"] = pin_hash((pin or "").strip())
            if changes:
                PaymentPassword.objects.filter(pk=password.pk).update(**changes)
            return
        # A lock sets the count back to zero, so after it expires counting starts again.
        failures = password.failed_attempts + 1
        locked_until = now + PIN_LOCK if failures >= PIN_MAX_FAILURES else None
        PaymentPassword.objects.filter(pk=password.pk).update(
            failed_attempts=0 if locked_until else failures, locked_until=locked_until
        )
        if locked_until:
            error = _("Wrong payment password. It is now locked for 30 minutes.")
        else:
            error = _("Wrong payment password; %(left)d tries left.") % {
                "left": PIN_MAX_FAILURES - failures
            }
    # Raised after the commit: the counted failure must not roll back with the refusal.
    raise BillingError(error)


# --- Invoices --------------------------------------------------------------------------------

ONE_LIVE_INVOICE = "billing_invoiceline_one_live_invoice"


def _fees_taken_error(references) -> BillingError:
    return BillingError(
        _("These fees are already on an invoice under review or issued: %(references)s.")
        % {"references": "、".join(sorted(references)[:5])}
    )


def invoice_request(
    *,
    actor,
    wallet: Wallet,
    invoice_type: str,
    title: str,
    taxpayer_id: str,
    address_phone: str = "",
    bank_account: str = "",
    capture_ids: list[int] | None = None,
    charged_from=None,
    charged_until=None,
    courier=None,
) -> InvoiceRequest:
    """Ask for an invoice over the wallet's charged fees that are on no live invoice yet: the
    ones named, or all charged in the period (``charged_until`` excluded), optionally of one
    courier only. The lines keep a snapshot of each fee.

    The caller checks that ``actor`` may act for the wallet's shop.
    """
    if invoice_type not in InvoiceRequest.Type.values:
        raise BillingError(_("Choose an invoice type."))
    title = (title or "").strip()
    if not title:
        raise BillingError(_("The invoice needs a title (the company's name)."))
    taxpayer_id = normalise_uscc(taxpayer_id)
    try:
        validate_uscc(taxpayer_id)
    except ValidationError as exc:
        raise BillingError(exc.messages[0]) from exc
    address_phone, bank_account = (address_phone or "").strip(), (bank_account or "").strip()
    if invoice_type in InvoiceRequest.SPECIAL_TYPES and not (address_phone and bank_account):
        raise BillingError(
            _("A special VAT invoice needs the company's address and phone, bank and account.")
        )
    captures = LedgerTransaction.objects.filter(wallet=wallet, kind=LedgerTransaction.Kind.CAPTURE)
    if capture_ids is not None:
        captures = captures.filter(pk__in=capture_ids)
        if captures.count() != len(set(capture_ids)):
            raise BillingError(_("Only this wallet's charged fees can be invoiced."))
        taken = captures.filter(invoice_lines__live=True).values_list("reference", flat=True)
        if taken:
            raise _fees_taken_error(taken)
    if charged_from is not None:
        captures = captures.filter(created_at__gte=charged_from)
    if charged_until is not None:
        captures = captures.filter(created_at__lt=charged_until)
    if courier is not None:
        captures = captures.filter(
            reference__in=Hold.objects.filter(wallet=wallet, courier=courier).values("reference")
        )
    fees = list(
        captures.exclude(invoice_lines__live=True)
        .order_by("pk")
        .values_list("pk", "reference", "created_at")
    )
    if not fees:
        raise BillingError(_("There are no charged fees to invoice."))
    holds = {
        hold.reference: hold
        for hold in Hold.objects.filter(
            wallet=wallet, reference__in=[reference for _pk, reference, _at in fees]
        ).select_related("courier")
    }
    try:
        with transaction.atomic():
            invoice = InvoiceRequest.objects.create(
                wallet=wallet,
                invoice_type=invoice_type,
                title=title[:100],
                taxpayer_id=taxpayer_id,
                address_phone=address_phone[:200],
                bank_account=bank_account[:200],
                amount_fen=sum(holds[reference].amount_fen for _pk, reference, _at in fees),
                requested_by=actor,
            )
            InvoiceLine.objects.bulk_create(
                [
                    InvoiceLine(
                        invoice=invoice,
                        capture_id=pk,
                        reference=reference,
                        courier_name=holds[reference].courier.name_zh,
                        amount_fen=holds[reference].amount_fen,
                        charged_at=charged_at,
                    )
                    for pk, reference, charged_at in fees
                ]
            )
            InvoiceEvent.objects.create(
                invoice=invoice, to_status=InvoiceRequest.Status.REQUESTED, actor=actor
            )
    except IntegrityError as exc:
        if _is_violation(exc, ONE_LIVE_INVOICE):
            # Another request took some of these fees a moment ago.
            raise _fees_taken_error([reference for _pk, reference, _at in fees]) from exc
        raise
    return invoice


def invoice_set_status(
    *, invoice: InvoiceRequest, to_status: str, actor=None, note: str = "", **fields
) -> bool:
    """The one way an invoice request changes status, with its history row. A rejected or
    reversed invoice frees its fees. True if this call moved it."""

    def refuse(current: str) -> BillingError:
        return BillingError(
            _("An invoice cannot go from “%(from)s” to “%(to)s”.")
            % {
                "from": InvoiceRequest.Status(current).label,
                "to": InvoiceRequest.Status(to_status).label,
            }
        )

    with transaction.atomic():
        moved = status_transition(
            invoice,
            to_status=to_status,
            refuse=refuse,
            actor=actor,
            note=note,
            updated_at=timezone.now(),
            **fields,
        )
        if moved and to_status not in InvoiceRequest.LIVE:
            InvoiceLine.objects.filter(invoice=invoice).update(live=False)
    return moved


def _required_note(note: str, message) -> str:
    note = (note or "").strip()
    if not note:
        raise BillingError(message)
    return note


def invoice_issue(*, actor, invoice: InvoiceRequest, invoice_number: str) -> InvoiceRequest:
    _require_finance(actor)
    # The same normal form as bank serials (full-width digits folded, upper case), without
    # blanks: invoice numbers are read from paper and typed with an input method.
    number = "".join(normalise_reference(invoice_number).split())
    if not number or len(number) > 32:
        raise BillingError(_("Enter the number of the invoice issued."))
    invoice_set_status(
        invoice=invoice,
        to_status=InvoiceRequest.Status.ISSUED,
        actor=actor,
        invoice_number=number,
    )
    return invoice


def invoice_reject(*, actor, invoice: InvoiceRequest, reason: str) -> InvoiceRequest:
    _require_finance(actor)
    reason = _required_note(reason, _("Say why the invoice request is rejected."))
    invoice_set_status(
        invoice=invoice, to_status=InvoiceRequest.Status.REJECTED, actor=actor, note=reason
    )
    return invoice


def invoice_reverse(*, actor, invoice: InvoiceRequest, reason: str) -> InvoiceRequest:
    """Red-letter reversal (红冲) of an issued invoice: its fees can be invoiced again."""
    _require_finance(actor)
    reason = _required_note(reason, _("Say why the invoice is reversed."))
    invoice_set_status(
        invoice=invoice, to_status=InvoiceRequest.Status.REVERSED, actor=actor, note=reason
    )
    return invoice
