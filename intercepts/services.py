"""Writes with rules on shops, parcels and after-sales. Views and admin actions call these."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.services import BillingError
from couriers.stages import TERMINAL_STAGES
from intercepts.models import (
    AfterSale,
    AfterSaleEvent,
    InterceptEvent,
    InterceptPolicy,
    InterceptRequest,
    OrderLine,
    Parcel,
    Shop,
)


class DomainError(Exception):
    """A business rule refused the write; the message is for the user."""


def normalise_waybill(waybill_no: str) -> str:
    """Waybill numbers are compared upper-case and without surrounding or inner spaces."""
    return "".join((waybill_no or "").split()).upper()


def parcel_save(*, actor, parcel: Parcel, line_ids: list[int] | None = None) -> Parcel:
    """Create or correct a parcel: the shop follows the order; the waybill must fit its courier.

    A new parcel without a choice of lines carries all of its order's lines.
    """
    creating = parcel.pk is None
    parcel.waybill_no = normalise_waybill(parcel.waybill_no)
    parcel.shop_id = parcel.order.shop_id
    if creating and parcel.shipped_at is None:
        parcel.shipped_at = timezone.now()
    if creating and parcel.next_poll_at is None and parcel.stage not in TERMINAL_STAGES:
        parcel.next_poll_at = timezone.now()  # first tracking check at the next poll
    parcel.full_clean()
    with transaction.atomic():
        parcel.save()
        if line_ids is None and creating:
            line_ids = list(parcel.order.lines.values_list("pk", flat=True))
        if creating:
            transaction.on_commit(lambda: _queue_subscription(parcel))
        if line_ids is not None:
            lines = list(
                OrderLine.objects.filter(pk__in=line_ids).values_list("order_id", flat=True)
            )
            if len(lines) != len(set(line_ids)) or any(o != parcel.order_id for o in lines):
                raise ValidationError(
                    {"lines": _("A parcel can only carry lines of its own order.")}
                )
            parcel.lines.set(line_ids)
    return parcel


def _queue_subscription(parcel: Parcel) -> None:
    from intercepts.polling import courier_queue
    from intercepts.tasks import tracking_subscribe_parcel  # tasks import services

    tracking_subscribe_parcel.apply_async(
        args=[parcel.pk], queue=courier_queue(parcel.courier.code)
    )


def shop_save_settings(*, actor, shop: Shop) -> Shop:
    shop.full_clean()
    shop.save()
    return shop


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
        # The partial unique index: another request on this parcel is open (SQLite's message
        # does not name the constraint, so ask rather than parse).
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
    **fields,
) -> bool:
    """The one way an intercept request changes status, with its history row and its money.

    Succeeded charges the held fee; rejected, failed and withdrawn release it; both in the same
    transaction as the move, and billing applies each at most once per request. Returns False,
    changing nothing, when the request is already in ``to_status`` (a repeated push or answer);
    any move the lifecycle does not allow is refused.
    """
    Status = InterceptRequest.Status
    with transaction.atomic():
        current = InterceptRequest.objects.select_for_update().get(pk=intercept.pk)
        if current.status == to_status:
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
    intercept.refresh_from_db()
    return True


def intercept_policy_save(*, actor, policy: InterceptPolicy) -> InterceptPolicy:
    """Save the platform's intercept policy (platform staff only), keeping one row."""
    from intercepts.tenancy import access_for

    if not access_for(actor).is_platform:
        raise DomainError(_("Only platform staff may change the intercept policy."))
    policy.pk = 1
    policy.updated_at = timezone.now()
    policy.full_clean()
    policy.save()
    return policy


def shop_sign_agreement(*, actor, shop: Shop, version: str) -> Shop:
    """The shop's owner signs the current intercept service agreement; who and when are kept."""
    from intercepts.models import ShopMembership
    from intercepts.tenancy import access_for

    if ShopMembership.Role.OWNER not in access_for(actor).roles(shop.pk):
        raise DomainError(_("Only the shop's owner may sign the intercept service agreement."))
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
