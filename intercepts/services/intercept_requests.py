"""Intercept requests: asking, holding the fee, moving the status, withdrawing."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.services import BillingError
from intercepts.models import (
    AfterSale,
    InterceptEvent,
    InterceptRequest,
    Parcel,
)
from intercepts.services.after_sales import after_sale_set_status
from intercepts.services.errors import DomainError, IneligibleError
from intercepts.validators import validate_phone
from shops import webhooks
from shops.access import access_for
from shops.history import status_transition
from shops.models import PLATFORM_CS, Shop


def _billing_refusal(exc: BillingError) -> DomainError:
    return DomainError(str(exc))


def intercept_create(
    *,
    actor,
    parcel: Parcel,
    action: str,
    channel: str,
    after_sale: AfterSale | None = None,
    new_address: dict | None = None,
    reason: str = "",
    idempotency_key: str = "",
) -> InterceptRequest:
    """Open an intercept request on a parcel and hold its fee from the shop's wallet.

    The request and the hold are written together or not at all. A parcel has at most one
    open request (the database refuses a second) and is not stopped again once caught.
    Eligibility and the merchant's confirmation are checked before this is called; the courier
    is asked after it commits.
    """
    if action not in InterceptRequest.Action.values:
        raise DomainError(_("Choose return to sender or delivery to a new address."))
    if action == InterceptRequest.Action.REDIRECT and not new_address:
        raise DomainError(_("A change of address needs the new address."))
    try:
        fee_fen = billing_selectors.quote(parcel.courier_id, action)
        with transaction.atomic():
            # Checked here, not only among the rules, so that no other caller stops a parcel
            # twice: one already caught is seen here, one still open is refused by the unique
            # index below. (A success committed between the two is the one gap left; the
            # eligibility check just before makes it a matter of milliseconds.)
            if InterceptRequest.objects.filter(
                parcel_id=parcel.pk, status__in=InterceptRequest.CAUGHT
            ).exists():
                raise DomainError(
                    _("This parcel was already intercepted; it cannot be intercepted again.")
                )
            intercept = InterceptRequest.objects.create(
                shop_id=parcel.shop_id,
                parcel=parcel,
                after_sale=after_sale,
                action=action,
                stage_at_request=parcel.stage,
                new_address=new_address or {},
                channel=channel,
                fee_fen=fee_fen,
                reason=reason[:255],
                requested_by=actor,
                idempotency_key=idempotency_key,
            )
            InterceptEvent.objects.create(
                intercept=intercept,
                to_status=InterceptRequest.Status.CREATED,
                source=InterceptEvent.Source.USER,
                actor=actor,
                note=reason[:255],
            )
            billing_services.wallet_hold(
                shop_id=parcel.shop_id,
                reference=intercept.hold_reference,
                amount_fen=fee_fen,
                courier=parcel.courier_id,
                actor=actor,
            )
            _emit_status_changed(intercept.pk, shop_id=parcel.shop_id, from_status=None)
    except BillingError as exc:
        raise _billing_refusal(exc) from exc
    except IntegrityError as exc:
        # A unique index refused it (SQLite's message does not name the constraint, so ask
        # rather than parse): the same confirmation made it already, or another request on
        # this parcel is open.
        if idempotency_key:
            made = InterceptRequest.objects.filter(
                shop_id=parcel.shop_id, idempotency_key=idempotency_key
            ).first()
            if made is not None:
                return made
        if InterceptRequest.objects.filter(
            parcel_id=parcel.pk, status__in=InterceptRequest.OPEN
        ).exists():
            raise DomainError(_("This parcel already has an intercept in progress.")) from exc
        raise
    return intercept


def intercept_set_status(
    *,
    intercept: InterceptRequest,
    to_status: str,
    source: str,
    actor=None,
    note: str = "",
    payload: dict | None = None,
    from_statuses: tuple[str, ...] | None = None,
    **fields,
) -> bool:
    """The one way an intercept request changes status, with its history row and its money.

    Succeeded charges the held fee; rejected, failed and withdrawn release it; both in the same
    transaction as the move, and billing applies each at most once per request. Returns False,
    changing nothing, when the request is already in ``to_status`` (a repeated push or answer)
    or, given ``from_statuses``, is no longer in one of them (another worker moved it first);
    any other move the lifecycle does not allow is refused.
    """
    Status = InterceptRequest.Status

    def refuse(current: str) -> DomainError:
        return DomainError(
            _("An intercept cannot go from “%(from)s” to “%(to)s”.")
            % {"from": Status(current).label, "to": Status(to_status).label}
        )

    now = timezone.now()
    if to_status == Status.SUCCEEDED:
        # The clock a claim suggestion counts from (a parcel not back N days later).
        fields.setdefault("succeeded_at", now)
    with transaction.atomic():
        current = InterceptRequest.objects.get(pk=intercept.pk)
        previous = current.status
        if not status_transition(
            current,
            to_status=to_status,
            refuse=refuse,
            actor=actor,
            note=note,
            from_statuses=from_statuses,
            event={"source": source, "payload": payload},
            updated_at=now,
            **fields,
        ):
            return False
        try:
            if to_status == Status.SUCCEEDED:
                billing_services.wallet_capture(reference=current.hold_reference, actor=actor)
            elif to_status in (Status.REJECTED, Status.FAILED, Status.CANCELLED):
                billing_services.wallet_release(reference=current.hold_reference, actor=actor)
        except BillingError as exc:
            raise _billing_refusal(exc) from exc
        if to_status == Status.SUCCEEDED:
            _approve_refund_after_success(current)
        # After the money moved, so the event tells the fee's state as this move left it.
        _emit_status_changed(current.pk, shop_id=current.shop_id, from_status=previous)
    # Only the columns written: the caller's loaded parcel and courier stay with it.
    intercept.refresh_from_db(fields=["status", "updated_at", *fields])
    return True


def _emit_status_changed(intercept_id: int, *, shop_id: int, from_status: str | None) -> None:
    """Tell the shop's ERP (its webhooks) the request's new status; inside the move's
    transaction, after the request's row was written, so its events keep their order."""

    def data() -> dict:
        row = (
            InterceptRequest.objects.with_fee_state()
            .filter(pk=intercept_id)
            .values(
                "status",
                "action",
                "channel",
                "fee_fen",
                "fee_state",
                "parcel__waybill_no",
                "parcel__courier__code",
                "after_sale_id",
                "updated_at",
            )
            .get()
        )
        return {
            "id": intercept_id,
            "status": row["status"],
            "from": from_status,
            "action": row["action"],
            "channel": row["channel"],
            "waybill": row["parcel__waybill_no"],
            "courier": row["parcel__courier__code"],
            "after_sale": row["after_sale_id"],
            "fee": {"amount_fen": row["fee_fen"], "state": row["fee_state"]},
            "updated_at": row["updated_at"],
        }

    webhooks.webhook_emit(
        shop_id=shop_id,
        event_type=webhooks.INTERCEPT_STATUS_CHANGED,
        object_type="intercept",
        object_id=intercept_id,
        data=data,
    )


def _approve_refund_after_success(intercept: InterceptRequest) -> None:
    """A shop that chose it has the after-sale's refund approved once the parcel is caught and
    on its way back (never for a change of address: the buyer gets the goods)."""
    if intercept.after_sale_id is None:
        return
    if not Shop.objects.filter(pk=intercept.shop_id, auto_complete_refund=True).exists():
        return
    after_sale = AfterSale.objects.get(pk=intercept.after_sale_id)
    if after_sale.status != AfterSale.Status.PENDING:
        return
    if not InterceptRequest.calls_for_refund(
        action=intercept.action, after_sale_kind=after_sale.kind
    ):
        return
    after_sale_set_status(
        after_sale=after_sale,
        to_status=AfterSale.Status.APPROVED,
        note=_("Refund approved automatically: the parcel was intercepted."),
    )


def intercept_note(
    *, intercept: InterceptRequest, source: str, note: str, actor=None, payload=None
):
    """A history row that moves nothing: a refused withdrawal, a reconciler's attempt."""
    return InterceptEvent.objects.create(
        intercept=intercept,
        from_status=intercept.status,
        to_status=intercept.status,
        source=source,
        actor=actor,
        note=note[:255],
        payload=payload,
    )


def may_request_intercept(*, actor, after_sale: AfterSale) -> str | None:
    """The channel through which ``actor`` may ask to intercept this after-sale's parcels:
    the workbench for the shop's owner and agents, the API for the shop's API key, platform CS
    for an after-sale under arbitration; None when they may not."""
    access = access_for(actor)
    if access.acts_for(after_sale.shop_id):
        # An ERP's key stands for the shop's authorisation: no payment password is asked.
        if access.api_key:
            return InterceptRequest.Channel.API
        return InterceptRequest.Channel.WORKBENCH
    if (
        PLATFORM_CS in access.roles(after_sale.shop_id)
        and after_sale.arbitration in AfterSale.ARBITRATION_OPEN
    ):
        return InterceptRequest.Channel.PLATFORM_CS
    return None


def intercepts_request(
    *,
    actor,
    after_sale: AfterSale,
    parcels: list[Parcel],
    action: str,
    pin: str = "",
    reason: str = "",
    new_address: dict | None = None,
    idempotency_key: str = "",
) -> list[InterceptRequest]:
    """Ask to intercept parcels of an after-sale: the confirmed intercept of the workbench
    (the merchant's payment password) or of platform CS (a reason, no password).

    Every parcel must pass every rule; all the requests are made, with their fees held, or
    none. The courier is asked once this commits. A repeated confirmation (the same
    ``idempotency_key``) returns the requests it made the first time.
    """
    from intercepts.eligibility import intercept_eligibility, is_eligible

    channel = may_request_intercept(actor=actor, after_sale=after_sale)
    if channel is None:
        raise DomainError(_("You may not intercept this after-sale's parcels."))
    if not parcels:
        raise DomainError(_("Choose at least one parcel."))
    if any(parcel.order_id != after_sale.order_id for parcel in parcels):
        raise DomainError(_("Only this after-sale's own parcels can be intercepted."))
    keys = {
        parcel.pk: f"{idempotency_key}:{parcel.pk}" if idempotency_key else "" for parcel in parcels
    }
    if idempotency_key:
        made = list(
            InterceptRequest.objects.filter(
                shop_id=after_sale.shop_id, idempotency_key__in=list(keys.values())
            ).order_by("pk")
        )
        if made:
            return made
    if action == InterceptRequest.Action.REDIRECT:
        # The form checks it too; an ERP or a crafted post reaches this service directly.
        try:
            validate_phone((new_address or {}).get("phone", ""))
        except ValidationError as exc:
            raise DomainError(exc.messages[0]) from exc
    reason = (reason or "").strip()
    if channel == InterceptRequest.Channel.PLATFORM_CS and not reason:
        raise DomainError(_("Say why customer service intercepts this parcel."))
    for parcel in parcels:
        results = intercept_eligibility(after_sale=after_sale, parcel=parcel, action=action)
        if not is_eligible(results):
            refused = [r.message for r in results if r.passed is False]
            raise IneligibleError(
                _("Parcel %(waybill)s cannot be intercepted: %(reasons)s")
                % {"waybill": parcel.waybill_no, "reasons": "；".join(refused)},
                results,
            )
    if channel == InterceptRequest.Channel.WORKBENCH:
        try:
            billing_services.payment_password_check(shop_id=after_sale.shop_id, pin=pin)
        except BillingError as exc:
            raise _billing_refusal(exc) from exc
    made = []
    with transaction.atomic():
        for parcel in parcels:
            made.append(
                intercept_create(
                    actor=actor,
                    parcel=parcel,
                    action=action,
                    channel=channel,
                    after_sale=after_sale,
                    new_address=new_address,
                    reason=reason,
                    idempotency_key=keys[parcel.pk],
                )
            )
        sends = [(intercept.pk, intercept.parcel.courier.code) for intercept in made]
        transaction.on_commit(lambda: _queue_sends(sends))
    return made


def _queue_sends(sends: list[tuple[int, str]]) -> None:
    from intercepts.tasks import intercept_send  # tasks import services
    from intercepts.tracking.polling import courier_queue

    for pk, courier_code in sends:
        intercept_send.apply_async(args=[pk], queue=courier_queue(courier_code))


def may_withdraw_intercept(*, actor, intercept: InterceptRequest) -> bool:
    """The shop's owner and agents may withdraw its intercepts; platform CS only those of an
    after-sale under arbitration, as it may only intercept those."""
    access = access_for(actor)
    if access.acts_for(intercept.shop_id):
        return True
    after_sale = intercept.after_sale
    return (
        PLATFORM_CS in access.roles(intercept.shop_id)
        and after_sale is not None
        and after_sale.arbitration in AfterSale.ARBITRATION_OPEN
    )


def intercept_withdraw(*, actor, intercept: InterceptRequest) -> InterceptRequest:
    """The merchant (or platform CS) withdraws a request: at once if it was not sent yet, else
    by asking the courier, who allows it until the parcel is caught."""

    if not may_withdraw_intercept(actor=actor, intercept=intercept):
        raise DomainError(_("You may not withdraw this intercept."))
    Status = InterceptRequest.Status
    with transaction.atomic():
        current = InterceptRequest.objects.select_for_update().get(pk=intercept.pk)
        if current.status == Status.CREATED:
            intercept_set_status(
                intercept=current,
                to_status=Status.CANCELLED,
                source=InterceptEvent.Source.USER,
                actor=actor,
                from_statuses=(Status.CREATED,),
                note=_("Withdrawn before it was sent."),
            )
        elif current.status == Status.SUBMITTED:
            raise DomainError(
                _("The courier has not answered yet; withdraw once it has accepted the request.")
            )
        elif current.status == Status.ACCEPTED:
            if current.withdraw_requested_at is None:
                InterceptRequest.objects.filter(pk=current.pk).update(
                    withdraw_requested_at=timezone.now()
                )
                intercept_note(
                    intercept=current,
                    source=InterceptEvent.Source.USER,
                    actor=actor,
                    note=_("Asked the courier to withdraw the request."),
                )
                transaction.on_commit(lambda: _queue_withdrawal(current))
        else:
            raise DomainError(_("This intercept has ended; it cannot be withdrawn."))
    intercept.refresh_from_db()
    return intercept


def _queue_withdrawal(intercept: InterceptRequest) -> None:
    from intercepts import tasks  # tasks import services
    from intercepts.tracking.polling import courier_queue

    code = intercept.parcel.courier.code
    tasks.intercept_withdrawal_send.apply_async(args=[intercept.pk], queue=courier_queue(code))
