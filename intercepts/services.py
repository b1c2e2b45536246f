"""Writes with rules on shops, parcels and after-sales. Views and admin actions call these."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.stages import TERMINAL_STAGES
from intercepts.models import AfterSale, AfterSaleEvent, OrderLine, Parcel, Shop


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
