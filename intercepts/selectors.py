"""Reads reused across the workbench."""

from intercepts.models import Order, Parcel
from intercepts.services import normalise_waybill

# A whole number matches a handful of rows; the cap keeps a pathological term cheap.
_MAX_MATCHES = 500


def order_ids_for_number(term: str, *, shop_ids: list[int] | None) -> list[int]:
    """Orders whose order number, or one of whose parcels' waybill number, is exactly ``term``.

    Resolved to ids first (two index lookups in one round trip) so that the list query filters
    on ``order_id IN (...)`` instead of an OR the planner can only answer by scanning the list's
    ordering index. The caller's queryset still decides which shops are visible.
    """
    term = term.strip()
    if not term:
        return []
    by_order = Order.objects.filter(order_no=term).order_by().values_list("id", flat=True)
    by_waybill = (
        Parcel.objects.filter(waybill_no=normalise_waybill(term))
        .order_by()
        .values_list("order_id", flat=True)
    )
    # Neither side may carry the models' default ordering into a compound statement.
    return list(by_order.union(by_waybill).order_by()[:_MAX_MATCHES])


def parcel_ids_for_number(term: str, *, shop_ids: list[int] | None) -> list[int]:
    """Parcels whose waybill number, or whose order's number, is exactly ``term``."""
    term = term.strip()
    if not term:
        return []
    by_waybill = (
        Parcel.objects.filter(waybill_no=normalise_waybill(term))
        .order_by()
        .values_list("id", flat=True)
    )
    by_order = Parcel.objects.filter(order__order_no=term).order_by().values_list("id", flat=True)
    if shop_ids is not None:
        by_waybill = by_waybill.filter(shop_id__in=shop_ids)
        by_order = by_order.filter(shop_id__in=shop_ids)
    return list(by_waybill.union(by_order).order_by()[:_MAX_MATCHES])
