"""Writes with rules on parcels, after-sales and intercepts. Views and admin actions call these."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.services import BillingError
from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.models import (
    AfterSale,
    AfterSaleEvent,
    InterceptEvent,
    InterceptPolicy,
    InterceptRequest,
    Order,
    Parcel,
    ParcelCorrection,
)
from shops.access import access_for
from shops.models import PLATFORM_CS, Shop


class DomainError(Exception):
    """A business rule refused the write; the message is for the user."""


def normalise_waybill(waybill_no: str) -> str:
    """Waybill numbers are compared upper-case and without surrounding or inner spaces."""
    return "".join((waybill_no or "").split()).upper()


def _waybill_taken() -> ValidationError:
    # Whose waybill it is stays unsaid: another shop's parcels are not this user's business.
    return ValidationError(
        {"waybill_no": _("This waybill number is already recorded for a parcel.")},
        code="waybill_taken",
    )


def _require_shop_writer(actor, shop_id: int) -> None:
    access = access_for(actor)
    if not (access.is_superuser or access.acts_for(shop_id)):
        raise PermissionDenied(_("Only the shop's owner or an after-sales agent may do this."))


def may_correct_waybill(actor, shop_id: int) -> bool:
    """The shop's owner and agents put right their own typing; platform customer service
    settles a waybill two shops claim (one recorded another's number first)."""
    access = access_for(actor)
    return access.is_superuser or access.acts_for(shop_id) or PLATFORM_CS in access.platform_groups


def _check_waybill(courier: Courier, waybill_no: str) -> None:
    courier.check_waybill(waybill_no)
    if Parcel.objects.filter(courier=courier, waybill_no=waybill_no).exists():
        raise _waybill_taken()


def _save_refusing_taken_waybill(parcel: Parcel, **kwargs) -> None:
    """Save in a savepoint: a waybill recorded meanwhile by someone else is refused as taken."""
    try:
        with transaction.atomic():
            parcel.save(**kwargs)
    except IntegrityError as exc:
        if "parcel_waybill_unique" in str(exc):
            raise _waybill_taken() from exc
        raise


def _carried_line_ids(order: Order) -> set[int]:
    return set(
        Parcel.lines.through.objects.filter(parcel__order=order).values_list(
            "orderline_id", flat=True
        )
    )


def order_has_goods_to_ship(order: Order) -> bool:
    """Whether some line of the order is in no recorded parcel yet (what a new parcel carries)."""
    return order.lines.exclude(pk__in=_carried_line_ids(order)).exists()


def parcel_create(
    *,
    actor,
    order: Order,
    courier: Courier,
    waybill_no: str,
    receiver_name: str,
    receiver_phone: str,
    receiver_address: str,
    line_ids: list[int] | None = None,
) -> Parcel:
    """Record a shipped parcel of an order: its waybill, the lines it carries (the order's
    lines not yet in another parcel, unless chosen) and their value, which is what the rules and
    claims read. An item is in one parcel only, so no value is counted twice.

    A waybill names one parcel: one already recorded, in this shop or another, is refused.
    Once shipped, the parcel's courier, waybill and goods are fixed; a mistyped waybill is put
    right with ``parcel_correct_waybill``.
    """
    _require_shop_writer(actor, order.shop_id)
    waybill_no = normalise_waybill(waybill_no)
    now = timezone.now()
    parcel = Parcel(
        shop_id=order.shop_id,
        order=order,
        courier=courier,
        waybill_no=waybill_no,
        receiver_name=receiver_name,
        receiver_phone=receiver_phone,
        receiver_address=receiver_address,
        shipped_at=now,
        next_poll_at=now,  # first tracking check at the next poll
    )
    parcel.full_clean(exclude=["order", "courier", "shop"], validate_unique=False)
    _check_waybill(courier, waybill_no)
    with transaction.atomic():
        # The order's row is the lock two parcels of one order being recorded at once wait on,
        # so that the same goods never go into both.
        Order.objects.select_for_update().filter(pk=order.pk).first()
        lines = list(order.lines.all())
        carried = _carried_line_ids(order)
        if line_ids is not None:
            chosen = set(line_ids)
            if not chosen or not chosen <= {line.pk for line in lines}:
                raise ValidationError(
                    {"lines": _("A parcel can only carry lines of its own order.")}
                )
            if chosen & carried:
                raise ValidationError(
                    {"lines": _("These goods are already in another recorded parcel.")}
                )
            lines = [line for line in lines if line.pk in chosen]
        else:
            lines = [line for line in lines if line.pk not in carried]
            if not lines:
                raise ValidationError(
                    {"order": _("Every item of this order is already in a recorded parcel.")}
                )
        parcel.declared_value_fen = sum(line.amount_fen for line in lines)
        _save_refusing_taken_waybill(parcel)
        parcel.lines.set(lines)
        transaction.on_commit(lambda: _queue_subscription(parcel))
    return parcel


def parcel_correct_waybill(
    *, actor, parcel: Parcel, courier: Courier, waybill_no: str, reason: str
) -> ParcelCorrection:
    """Put right a mistyped courier or waybill number, with a record of what it was and why:
    the shop's own staff, or platform customer service when another shop's parcel holds the
    waybill.

    Refused once an intercept has been asked for the parcel (its history names the waybill),
    and for a waybill already recorded. The tracking read under the wrong number is dropped and
    the parcel is tracked afresh under the right one.
    """
    if not may_correct_waybill(actor, parcel.shop_id):
        raise PermissionDenied(
            _("Only the shop's staff or platform customer service may correct its waybill.")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say what was wrong with the waybill.")})
    waybill_no = normalise_waybill(waybill_no)
    with transaction.atomic():
        current = Parcel.objects.select_for_update().select_related("courier").get(pk=parcel.pk)
        if current.courier_id == courier.pk and current.waybill_no == waybill_no:
            raise ValidationError(
                {"waybill_no": _("This is the parcel's waybill already; nothing to correct.")}
            )
        if InterceptRequest.objects.filter(parcel_id=current.pk).exists():
            raise DomainError(
                _("An intercept was asked for this parcel: its waybill can no longer change.")
            )
        _check_waybill(courier, waybill_no)
        correction = ParcelCorrection(
            parcel=current,
            old_courier_id=current.courier_id,
            old_waybill_no=current.waybill_no,
            new_courier=courier,
            new_waybill_no=waybill_no,
            reason=reason[:255],
            actor=actor,
        )
        current.courier, current.waybill_no = courier, waybill_no
        current.stage = ParcelStage.NO_INFO
        current.picked_up_at = current.signed_at = current.subscribed_at = None
        current.next_poll_at, current.poll_failures = timezone.now(), 0
        _save_refusing_taken_waybill(current)
        current.tracking_events.all().delete()
        correction.save()
        transaction.on_commit(lambda: _queue_subscription(current))
    parcel.refresh_from_db()
    return correction


def parcel_value_fen(parcel: Parcel) -> int:
    """What the goods a parcel carries are worth, from their order lines (the platform's)."""
    return sum(line.amount_fen for line in parcel.lines.all())


def _queue_subscription(parcel: Parcel) -> None:
    from intercepts.polling import courier_queue
    from intercepts.tasks import tracking_subscribe_parcel  # tasks import services

    tracking_subscribe_parcel.apply_async(
        args=[parcel.pk], queue=courier_queue(parcel.courier.code)
    )


def after_sale_set_status(
    *, after_sale: AfterSale, to_status: str, actor=None, note: str = ""
) -> AfterSale:
    """The one way an after-sale changes status: checked, conditional, with its history row."""
    with transaction.atomic():
        current = AfterSale.objects.select_for_update().get(pk=after_sale.pk)
        if current.status == to_status:
            return current
        allowed = AfterSale.TRANSITIONS.get(current.status, set())
        if to_status not in allowed:
            raise DomainError(
                _("An after-sale cannot go from “%(from)s” to “%(to)s”.")
                % {
                    "from": AfterSale.Status(current.status).label,
                    "to": AfterSale.Status(to_status).label,
                }
            )
        changed = AfterSale.objects.filter(pk=current.pk, status=current.status).update(
            status=to_status, updated_at=timezone.now()
        )
        if changed != 1:  # pragma: no cover - the row lock above makes this unreachable
            raise DomainError(_("The after-sale changed meanwhile; please try again."))
        AfterSaleEvent.objects.create(
            after_sale=current,
            from_status=current.status,
            to_status=to_status,
            actor=actor,
            note=note,
        )
        current.status = to_status
    return current


def after_sale_approve_refund(*, actor, after_sale: AfterSale) -> AfterSale:
    """The merchant approves the buyer's refund (the shop's owner or an agent)."""
    if not access_for(actor).acts_for(after_sale.shop_id):
        raise DomainError(_("Only the shop's owner or an after-sales agent may approve refunds."))
    return after_sale_set_status(
        after_sale=after_sale, to_status=AfterSale.Status.APPROVED, actor=actor
    )


# --- Intercept requests -----------------------------------------------------------------------


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
    open request (the database refuses a second). Eligibility and the merchant's confirmation
    are checked before this is called; the courier is asked after it commits.
    """
    if action not in InterceptRequest.Action.values:
        raise DomainError(_("Choose return to sender or delivery to a new address."))
    if action == InterceptRequest.Action.REDIRECT and not new_address:
        raise DomainError(_("A change of address needs the new address."))
    try:
        fee_fen = billing_selectors.quote(parcel.courier_id, action)
        with transaction.atomic():
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
    with transaction.atomic():
        current = InterceptRequest.objects.select_for_update().get(pk=intercept.pk)
        if current.status == to_status:
            return False
        if from_statuses is not None and current.status not in from_statuses:
            return False
        if to_status not in InterceptRequest.TRANSITIONS[current.status]:
            raise DomainError(
                _("An intercept cannot go from “%(from)s” to “%(to)s”.")
                % {"from": Status(current.status).label, "to": Status(to_status).label}
            )
        changed = InterceptRequest.objects.filter(pk=current.pk, status=current.status).update(
            status=to_status, updated_at=timezone.now(), **fields
        )
        if changed != 1:  # pragma: no cover - the row lock above makes this unreachable
            raise DomainError(_("The intercept changed meanwhile; please try again."))
        InterceptEvent.objects.create(
            intercept=current,
            from_status=current.status,
            to_status=to_status,
            source=source,
            actor=actor,
            note=note[:255],
            payload=payload,
        )
        try:
            if to_status == Status.SUCCEEDED:
                billing_services.wallet_capture(reference=current.hold_reference, actor=actor)
            elif to_status in (Status.REJECTED, Status.FAILED, Status.CANCELLED):
                billing_services.wallet_release(reference=current.hold_reference, actor=actor)
        except BillingError as exc:
            raise _billing_refusal(exc) from exc
        if to_status == Status.SUCCEEDED:
            _approve_refund_after_success(current)
    # Only the columns written: the caller's loaded parcel and courier stay with it.
    intercept.refresh_from_db(fields=["status", "updated_at", *fields])
    return True


def _approve_refund_after_success(intercept: InterceptRequest) -> None:
    """A shop that chose it has the after-sale's refund approved once the parcel is caught."""
    if intercept.after_sale_id is None:
        return
    if not Shop.objects.filter(pk=intercept.shop_id, auto_complete_refund=True).exists():
        return
    after_sale = AfterSale.objects.get(pk=intercept.after_sale_id)
    if after_sale.status != AfterSale.Status.PENDING:
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


def intercept_policy_save(*, actor, policy: InterceptPolicy) -> InterceptPolicy:
    """Save the platform's intercept policy (platform staff only), keeping one row."""
    from shops.access import access_for

    if not access_for(actor).is_platform:
        raise DomainError(_("Only platform staff may change the intercept policy."))
    policy.pk = 1
    policy.updated_at = timezone.now()
    policy.full_clean()
    policy.save()
    return policy


def shop_sign_agreement(*, actor, shop: Shop, version: str) -> Shop:
    """The shop's owner or an agent (whoever first intercepts for the shop) signs the current
    intercept service agreement for the shop; who and when are kept."""
    if not access_for(actor).acts_for(shop.pk):
        raise DomainError(
            _("Only the shop's owner or an after-sales agent may sign the intercept agreement.")
        )
    current = InterceptPolicy.current().agreement_version
    if version != current:
        raise DomainError(_("This is not the current version of the agreement; reload the page."))
    with transaction.atomic():
        Shop.objects.filter(pk=shop.pk).update(
            intercept_agreement_version=version,
            intercept_agreement_signed_at=timezone.now(),
            intercept_agreement_signed_by=actor,
        )
    shop.refresh_from_db()
    return shop


class IneligibleError(DomainError):
    """The rules refuse the intercept; ``results`` holds every rule's answer for the page."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


def may_request_intercept(*, actor, after_sale: AfterSale) -> str | None:
    """The channel through which ``actor`` may ask to intercept this after-sale's parcels:
    the workbench for the shop's owner and agents, platform CS for an after-sale under
    arbitration; None when they may not."""
    access = access_for(actor)
    if access.acts_for(after_sale.shop_id):
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
    from intercepts.polling import courier_queue
    from intercepts.tasks import intercept_send  # tasks import services

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
    from intercepts.polling import courier_queue
    from intercepts.tasks import intercept_withdraw as withdraw_task

    code = intercept.parcel.courier.code
    withdraw_task.apply_async(args=[intercept.pk], queue=courier_queue(code))
