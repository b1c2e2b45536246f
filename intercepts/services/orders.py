"""Orders and after-sales as they arrive from the sales platform: checked, then recorded.

The platform is the source of both; these record what it sends, refusing what cannot be true
(an order without goods, a refund above what was paid), so that every later rule reads sound
data.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from intercepts.models import AfterSale, AfterSaleEvent, Order, OrderEvent, OrderLine
from intercepts.services.errors import DomainError
from shops.history import status_transition
from shops.models import Shop


def order_receive(
    *,
    shop: Shop,
    order_no: str,
    buyer_name: str,
    buyer_phone: str,
    lines: list[dict],
    paid_at=None,
    receiver_name: str = "",
    receiver_phone: str = "",
    receiver_address: str = "",
) -> Order:
    """Record a paid order with its lines (``goods_name``, ``category``, ``unit_price_fen``,
    ``quantity``) and where the buyer asked it sent; its total is the lines' sum."""
    if not lines:
        raise ValidationError({"lines": _("An order needs at least one line.")})
    paid_at = paid_at or timezone.now()
    order = Order(
        shop=shop,
        order_no=order_no,
        status=Order.Status.PAID,
        buyer_name=buyer_name,
        buyer_phone=buyer_phone,
        receiver_name=receiver_name,
        receiver_phone=receiver_phone,
        receiver_address=receiver_address,
        paid_at=paid_at,
        created_at=paid_at,
    )
    rows = [OrderLine(order=order, **line) for line in lines]
    order.total_fen = sum(row.amount_fen for row in rows)
    order.full_clean()
    for row in rows:
        row.full_clean(exclude=["order"])
    with transaction.atomic():
        order.save()
        for row in rows:
            row.order = order
        OrderLine.objects.bulk_create(rows)
        OrderEvent.objects.create(order=order, to_status=Order.Status.PAID, created_at=paid_at)
    return order


def order_set_status(
    *, order: Order, to_status: str, note: str = "", actor=None, **fields
) -> Order:
    """The one way an order changes status, as the platform reports it or as the shop ships
    it: checked against the order's lifecycle, conditional, with its history row; ``fields``
    are written with the status. A repeat changes nothing."""

    def refuse(current: str) -> DomainError:
        return DomainError(
            _("An order cannot go from “%(from)s” to “%(to)s”.")
            % {"from": Order.Status(current).label, "to": Order.Status(to_status).label}
        )

    current = Order.objects.get(pk=order.pk)
    status_transition(current, to_status=to_status, refuse=refuse, note=note, actor=actor, **fields)
    return current


def order_mark_shipped(*, order: Order) -> Order:
    """The platform says the order left the warehouse (its parcels are recorded apart)."""
    return order_set_status(order=order, to_status=Order.Status.SHIPPED)


def after_sale_receive(
    *, order: Order, kind: str, reason: str = "", refund_amount_fen: int | None = None
) -> AfterSale:
    """Record a buyer's after-sale request on an order, awaiting the merchant, with the first
    row of its history."""
    refund = order.total_fen if refund_amount_fen is None else refund_amount_fen
    if refund > order.total_fen:
        raise ValidationError(
            {"refund_amount_fen": _("A refund cannot be more than the order's total.")}
        )
    after_sale = AfterSale(
        shop_id=order.shop_id,
        order=order,
        kind=kind,
        status=AfterSale.Status.PENDING,
        refund_amount_fen=refund,
        reason=reason,
    )
    after_sale.full_clean(exclude=["shop", "order"])
    with transaction.atomic():
        after_sale.save()
        AfterSaleEvent.objects.create(after_sale=after_sale, to_status=after_sale.status)
    return after_sale
