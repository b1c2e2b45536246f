"""After-sales: their one status function and the merchant's refund approval."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from intercepts.models import (
    AfterSale,
    AfterSaleEvent,
)
from intercepts.services.errors import DomainError
from shops.access import access_for


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
