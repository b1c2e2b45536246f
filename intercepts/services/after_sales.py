"""After-sales: their one status function and the merchant's refund approval."""

from django.utils import timezone
from django.utils.translation import gettext as _

from intercepts.models import (
    AfterSale,
)
from intercepts.services.errors import DomainError
from shops.access import access_for
from shops.history import status_transition


def after_sale_set_status(
    *, after_sale: AfterSale, to_status: str, actor=None, note: str = ""
) -> AfterSale:
    """The one way an after-sale changes status: checked, conditional, with its history row."""

    def refuse(current: str) -> DomainError:
        return DomainError(
            _("An after-sale cannot go from “%(from)s” to “%(to)s”.")
            % {
                "from": AfterSale.Status(current).label,
                "to": AfterSale.Status(to_status).label,
            }
        )

    current = AfterSale.objects.get(pk=after_sale.pk)
    status_transition(
        current,
        to_status=to_status,
        refuse=refuse,
        actor=actor,
        note=note,
        updated_at=timezone.now(),
    )
    return current


def after_sale_approve_refund(*, actor, after_sale: AfterSale) -> AfterSale:
    """The merchant approves the buyer's refund (the shop's owner or an agent)."""
    if not access_for(actor).acts_for(after_sale.shop_id):
        raise DomainError(_("Only the shop's owner or an after-sales agent may approve refunds."))
    return after_sale_set_status(
        after_sale=after_sale, to_status=AfterSale.Status.APPROVED, actor=actor
    )
