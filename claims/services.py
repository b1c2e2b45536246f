"""Writes with rules on claims: filing, evidence, the courier's decision, payment, withdrawal.

Who may do what: the shop's owner and agents file (online), add evidence, appeal and withdraw;
platform customer service records offline claims, passes claims to the courier, records the
courier's decision and closes; platform finance pays. Every status move goes through
``claim_set_status``; compensation reaches the wallet only through billing, once per claim.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import services as billing_services
from billing.money import format_fen
from billing.services import BillingError
from claims import evidence as evidence_checks
from claims.models import CLAIM_CAP_FEN, Claim, ClaimEvidence, ClaimStatus
from intercepts.models import InterceptRequest, Parcel
from intercepts.services.parcels import parcel_value_fen
from shops import evidence as shop_evidence
from shops import webhooks
from shops.access import access_for
from shops.history import status_transition
from shops.models import PLATFORM_CS, PLATFORM_FINANCE

logger = logging.getLogger(__name__)

Status = ClaimStatus


class ClaimError(Exception):
    """A claim rule refused the write; the message is for the user, ``code`` for machines (the
    ERP API answers it): ``not_succeeded``, ``already_claimed``, ``over_ceiling``, ``no_value``,
    ``evidence_refused``, ``not_withdrawable``, or ``refused`` for any other rule."""

    def __init__(self, message: str, code: str = "refused"):
        super().__init__(message)
        self.code = code


# --- Who may ---------------------------------------------------------------------------------


def _is_platform(actor, group: str) -> bool:
    access = access_for(actor)
    return access.is_superuser or group in access.platform_groups


def is_claims_cs(actor) -> bool:
    return _is_platform(actor, PLATFORM_CS)


def is_claims_finance(actor) -> bool:
    return _is_platform(actor, PLATFORM_FINANCE)


def acts_for_shop(actor, shop_id: int) -> bool:
    """The shop's owner or an agent: who files, appeals and withdraws its claims."""
    return access_for(actor).acts_for(shop_id)


def _require(allowed: bool) -> None:
    if not allowed:
        raise ClaimError(_("You may not do this with this claim."))


# --- The ceiling -----------------------------------------------------------------------------


def claim_ceiling_fen(parcel: Parcel) -> tuple[int, int]:
    """(value of the goods in the parcel, most that can be claimed): the value from the
    parcel's own order lines, never a typed figure, and at most 1,000 yuan."""
    value_fen = parcel_value_fen(parcel)
    return value_fen, min(value_fen, CLAIM_CAP_FEN)


def claim_refusal(intercept: InterceptRequest) -> str | None:
    """Why no claim can be filed on this intercept now, or None if one can."""
    if intercept.status not in InterceptRequest.CAUGHT:
        return _(
            "A claim can only be filed for a parcel whose intercept succeeded; this intercept "
            "is “%(status)s”."
        ) % {"status": intercept.get_status_display()}
    existing = (
        Claim.objects.filter(intercept_id=intercept.pk)
        .exclude(status=Status.WITHDRAWN)
        .values_list("pk", flat=True)
        .first()
    )
    if existing is not None:
        return _("Claim #%(id)s was already filed for this intercept.") % {"id": existing}
    # A claim withdrawn after the courier rejected it is not a second chance: its one appeal
    # was, or still is, the way on; filing again would be an appeal after the appeal.
    rejected = (
        Claim.objects.filter(intercept_id=intercept.pk, events__to_status=Status.REJECTED)
        .values_list("pk", flat=True)
        .first()
    )
    if rejected is not None:
        return _(
            "The courier rejected claim #%(id)s on this intercept; it cannot be claimed again."
        ) % {"id": rejected}
    return None


def claim_refusal_code(intercept: InterceptRequest) -> str:
    """The machine code of ``claim_refusal``'s answer."""
    return "not_succeeded" if intercept.status not in InterceptRequest.CAUGHT else "already_claimed"


def _require_reason(reason: str, intercept: InterceptRequest) -> None:
    """What happened must fit what is known of the parcel: a parcel back with the sender (or
    delivered at the new address: the intercept completed) was not lost and did reach it, so
    only damage can be claimed; "never reached the new address" is for a change of address."""
    if reason not in Claim.Reason.values:
        raise ClaimError(_("Choose what happened to the parcel."))
    redirect = intercept.action == InterceptRequest.Action.REDIRECT
    if reason == Claim.Reason.NOT_DELIVERED and not redirect:
        raise ClaimError(_("“Never reached the new address” is only for a change of address."))
    if intercept.status == InterceptRequest.Status.COMPLETED and reason != Claim.Reason.DAMAGED:
        raise ClaimError(
            _("The parcel was delivered at the new address; only damage can be claimed.")
            if redirect
            else _("The parcel is back with the sender; only damage can be claimed.")
        )


def _require_amount(amount_fen, ceiling_fen: int) -> int:
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ClaimError(_("Enter the amount claimed, more than 0 yuan."))
    if ceiling_fen <= 0:
        raise ClaimError(
            _("The goods in this parcel have no recorded value; nothing to claim."), "no_value"
        )
    if amount_fen > ceiling_fen:
        raise ClaimError(
            _(
                "At most %(ceiling)s yuan can be claimed for this parcel (the value of its goods, "
                "and at most 1,000.00 yuan)."
            )
            % {"ceiling": format_fen(ceiling_fen)},
            "over_ceiling",
        )
    return amount_fen


# --- Filing ----------------------------------------------------------------------------------


def _store_evidence(claim: Claim, checked, actor, stored: list[str]) -> None:
    shop_evidence.save_files(
        checked,
        new_row=lambda **fields: ClaimEvidence(claim=claim, **fields),
        actor=actor,
        stored=stored,
    )


def _discard(names: list[str]) -> None:
    """Files written for a claim whose transaction did not commit: nothing is left behind."""
    storage = ClaimEvidence._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # the row is gone either way; a stray file is only logged
            logger.exception("Could not delete the evidence file %s", name)


def _with_evidence(write):
    """Run ``write(stored)`` in a transaction that stores the checked files; on any failure the
    files already written are deleted again."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            result = write(stored)
    except BaseException:
        _discard(stored)
        raise
    return result


def _check_evidence(files, already: int = 0):
    try:
        return evidence_checks.check_files(files or [], already=already)
    except ValidationError as exc:
        raise ClaimError(" ".join(exc.messages), "evidence_refused") from exc


def claim_file(
    *,
    actor,
    intercept: InterceptRequest,
    reason: str,
    amount_claimed_fen: int,
    description: str = "",
    files=(),
    offline: bool = False,
    contact_note: str = "",
) -> Claim:
    """File a claim on an intercepted parcel, with its evidence, in one transaction.

    Online: the shop's owner or an agent. Offline (``offline=True``): platform customer service
    records what the merchant phoned or wrote in. The amount is checked against the ceiling read
    from the parcel's order lines; the evidence is checked before anything is written.
    """
    if offline:
        _require(is_claims_cs(actor))
        if not contact_note.strip():
            raise ClaimError(_("Say how the merchant reached customer service."))
    else:
        _require(acts_for_shop(actor, intercept.shop_id))
    refusal = claim_refusal(intercept)
    if refusal:
        raise ClaimError(refusal, claim_refusal_code(intercept))
    _require_reason(reason, intercept)
    parcel = Parcel.objects.select_related("courier").get(pk=intercept.parcel_id)
    value_fen, ceiling_fen = claim_ceiling_fen(parcel)
    amount_claimed_fen = _require_amount(amount_claimed_fen, ceiling_fen)
    checked = _check_evidence(files)

    def write(stored):
        now = timezone.now()
        claim = Claim.objects.create(
            shop_id=intercept.shop_id,
            intercept=intercept,
            parcel=parcel,
            courier_id=parcel.courier_id,
            reason=reason,
            description=(description or "").strip()[:2000],
            channel=Claim.Channel.OFFLINE if offline else Claim.Channel.ONLINE,
            goods_value_fen=value_fen,
            ceiling_fen=ceiling_fen,
            amount_claimed_fen=amount_claimed_fen,
            contact_note=contact_note.strip()[:255],
            filed_by=actor,
            created_at=now,
            updated_at=now,
        )
        claim.events.create(to_status=claim.status, actor=actor, created_at=now)
        _store_evidence(claim, checked, actor, stored)
        _emit_status_changed(claim, from_status=None)
        return claim

    try:
        return _with_evidence(write)
    except IntegrityError as exc:
        # Filed by someone else a moment ago: the one-claim index refused the second.
        if "claim_one_per_intercept" in str(exc):
            raise ClaimError(claim_refusal(intercept) or str(exc), "already_claimed") from exc
        raise


def claim_add_evidence(*, actor, claim: Claim, files) -> list[ClaimEvidence]:
    """More photos or PDFs for a claim not yet decided, from the shop or customer service."""
    _require(acts_for_shop(actor, claim.shop_id) or is_claims_cs(actor))
    undecided = (Status.SUBMITTED, Status.WITH_COURIER, Status.APPEALED)
    if claim.status not in undecided:
        raise ClaimError(_("Evidence can only be added before the courier decides."))
    checked = _check_evidence(files, already=claim.evidence.count())

    def write(stored):
        # Locked and read again, so that two uploads at once cannot pass the count limit
        # together, and none lands on a claim decided meanwhile.
        status = (
            Claim.objects.select_for_update().filter(pk=claim.pk).values_list("status", flat=True)
        ).get()
        if status not in undecided:
            raise ClaimError(_("Evidence can only be added before the courier decides."))
        _check_evidence([], already=claim.evidence.count() + len(checked))
        before = set(claim.evidence.values_list("pk", flat=True))
        _store_evidence(claim, checked, actor, stored)
        return list(claim.evidence.exclude(pk__in=before))

    return _with_evidence(write)


# --- Status ----------------------------------------------------------------------------------


def _emit_status_changed(claim: Claim, *, from_status: str | None) -> None:
    """Tell the shop's ERP (its webhooks), inside the move's transaction."""

    def data() -> dict:
        row = (
            Claim.objects.filter(pk=claim.pk)
            .values(
                "status",
                "reason",
                "channel",
                "intercept_id",
                "parcel__waybill_no",
                "courier__code",
                "amount_claimed_fen",
                "amount_approved_fen",
                "payout",
                "updated_at",
            )
            .get()
        )
        return {
            "id": claim.pk,
            "status": row["status"],
            "from": from_status,
            "reason": row["reason"],
            "channel": row["channel"],
            "intercept": row["intercept_id"],
            "waybill": row["parcel__waybill_no"],
            "courier": row["courier__code"],
            "amount_claimed_fen": row["amount_claimed_fen"],
            "amount_approved_fen": row["amount_approved_fen"],
            "payout": row["payout"] or None,
            "updated_at": row["updated_at"],
        }

    webhooks.webhook_emit(
        shop_id=claim.shop_id,
        event_type=webhooks.CLAIM_STATUS_CHANGED,
        object_type="claim",
        object_id=claim.pk,
        data=data,
    )


def claim_set_status(*, claim: Claim, to_status: str, actor=None, note: str = "", **fields) -> bool:
    """The one way a claim changes status: checked against its lifecycle, conditional on the
    status read, with its history row and its webhook. False if it already was there."""

    def refuse(current: str) -> ClaimError:
        return ClaimError(
            _("A claim cannot go from “%(from)s” to “%(to)s”.")
            % {"from": Status(current).label, "to": Status(to_status).label}
        )

    with transaction.atomic():
        current = Claim.objects.get(pk=claim.pk)
        previous = current.status
        if not status_transition(
            current,
            to_status=to_status,
            refuse=refuse,
            actor=actor,
            note=note,
            updated_at=timezone.now(),
            **fields,
        ):
            return False
        _emit_status_changed(current, from_status=previous)
    claim.refresh_from_db()
    return True


def claim_send_to_courier(*, actor, claim: Claim, note: str = "") -> bool:
    """Customer service passes the claim (or its appeal) to the courier."""
    _require(is_claims_cs(actor))
    if claim.status not in (Status.SUBMITTED, Status.APPEALED):
        raise ClaimError(
            _(
                "Only a submitted or appealed claim can be passed to the courier; this one is "
                "“%(status)s”."
            )
            % {"status": claim.get_status_display()}
        )
    return claim_set_status(
        claim=claim,
        to_status=Status.WITH_COURIER,
        actor=actor,
        note=note or _("Passed to the courier."),
    )


def claim_approve(*, actor, claim: Claim, amount_fen: int, note: str = "") -> bool:
    """The courier's approval, as customer service records it: at most the amount claimed; a
    lower amount says why."""
    _require(is_claims_cs(actor))
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ClaimError(_("Enter the amount approved, more than 0 yuan."))
    if amount_fen > claim.amount_claimed_fen:
        raise ClaimError(
            _("The amount approved cannot be more than the %(claimed)s yuan claimed.")
            % {"claimed": format_fen(claim.amount_claimed_fen)}
        )
    note = (note or "").strip()
    if amount_fen < claim.amount_claimed_fen and not note:
        raise ClaimError(_("Say why less than the amount claimed was approved."))
    return claim_set_status(
        claim=claim,
        to_status=Status.APPROVED,
        actor=actor,
        note=note or _("Approved: %(amount)s yuan.") % {"amount": format_fen(amount_fen)},
        amount_approved_fen=amount_fen,
        decision_note=note[:255],
    )


def claim_reject(*, actor, claim: Claim, reason: str) -> bool:
    """The courier's refusal, with its reason."""
    _require(is_claims_cs(actor))
    reason = (reason or "").strip()
    if not reason:
        raise ClaimError(_("Give the courier's reason for rejecting the claim."))
    return claim_set_status(
        claim=claim,
        to_status=Status.REJECTED,
        actor=actor,
        note=reason,
        decision_note=reason[:255],
    )


def claim_appeal(*, actor, claim: Claim, note: str) -> bool:
    """The merchant appeals a rejection, once."""
    _require(acts_for_shop(actor, claim.shop_id))
    note = (note or "").strip()
    if not note:
        raise ClaimError(_("Say why the rejection is wrong."))
    if claim.appealed_at is not None:
        raise ClaimError(_("This claim was already appealed once; it cannot be appealed again."))
    return claim_set_status(
        claim=claim,
        to_status=Status.APPEALED,
        actor=actor,
        note=note,
        appeal_note=note[:255],
        appealed_at=timezone.now(),
    )


def claim_withdraw(*, actor, claim: Claim, note: str = "") -> bool:
    """The merchant takes the claim back, until it is approved."""
    _require(acts_for_shop(actor, claim.shop_id))
    if claim.status not in Claim.WITHDRAWABLE:
        raise ClaimError(
            _("A claim that is “%(status)s” can no longer be withdrawn.")
            % {"status": claim.get_status_display()},
            "not_withdrawable",
        )
    return claim_set_status(
        claim=claim, to_status=Status.WITHDRAWN, actor=actor, note=note or _("Withdrawn.")
    )


def claim_pay(*, actor, claim: Claim, offline: bool = False, payment_reference: str = "") -> bool:
    """Finance pays an approved claim: into the shop's wallet (billing, once per claim, against
    the courier's payable), or records the reference of a payment made outside the platform.
    Two finance users paying at once credit it once: the status moves for one of them only, and
    billing refuses a second posting under the same reference."""
    _require(is_claims_finance(actor))
    payment_reference = (payment_reference or "").strip()
    if offline and not payment_reference:
        raise ClaimError(_("Enter the reference of the payment made outside the platform."))
    with transaction.atomic():
        current = Claim.objects.select_for_update().select_related("courier").get(pk=claim.pk)
        if current.status == Status.PAID:
            return False
        if current.status != Status.APPROVED:
            raise ClaimError(
                _("Only an approved claim can be paid; this one is “%(status)s”.")
                % {"status": current.get_status_display()}
            )
        if not offline:
            try:
                posted = billing_services.wallet_compensate(
                    shop_id=current.shop_id,
                    reference=current.reference,
                    amount_fen=current.amount_approved_fen,
                    courier=current.courier_id,
                    actor=actor,
                    note=_("Claim #%(id)s, paid by %(courier)s")
                    % {"id": current.pk, "courier": current.courier.display_name},
                )
            except BillingError as exc:
                raise ClaimError(str(exc)) from exc
            payment_reference = f"ledger:{posted.pk}"
        moved = claim_set_status(
            claim=current,
            to_status=Status.PAID,
            actor=actor,
            note=_("Paid %(amount)s yuan %(how)s.")
            % {
                "amount": format_fen(current.amount_approved_fen),
                "how": _("outside the platform") if offline else _("into the shop's wallet"),
            },
            payout=Claim.Payout.OFFLINE if offline else Claim.Payout.WALLET,
            payment_reference=payment_reference[:64],
            paid_at=timezone.now(),
        )
    claim.refresh_from_db()
    return moved


def may_close(actor, claim: Claim) -> bool:
    """A paid claim is closed by customer service or finance. A rejected one is the merchant's
    to close (accepting the rejection) until its one appeal is used; after the appeal was
    rejected too, customer service closes it."""
    if claim.status == Status.REJECTED:
        if claim.appealed_at is None:
            return acts_for_shop(actor, claim.shop_id)
        return is_claims_cs(actor) or acts_for_shop(actor, claim.shop_id)
    return is_claims_cs(actor) or is_claims_finance(actor)


def claim_close(*, actor, claim: Claim, note: str = "") -> bool:
    """Close a paid claim, or a rejected one that will not be appealed (``may_close``)."""
    _require(may_close(actor, claim))
    return claim_set_status(
        claim=claim, to_status=Status.CLOSED, actor=actor, note=note or _("Closed.")
    )
