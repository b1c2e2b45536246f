"""Reads reused across the workbench."""

from dataclasses import dataclass

from django.db.models import BigIntegerField, Case, Count, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast, Substr
from django.db.models.lookups import Regex
from django.utils.translation import get_language

from billing.references import Subject
from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.models import AfterSale, InterceptRequest, Order, Parcel
from intercepts.services.parcels import normalise_waybill

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


# --- What every list page reads -----------------------------------------------------------------


def courier_choices() -> list[tuple[str, str]]:
    """(id, name in the active language) of every courier, in the registry's order."""
    language = get_language()
    return [
        (str(pk), Courier.localized_name(name_zh, name_en, language))
        for pk, name_zh, name_en in Courier.objects.order_by("sort_order", "code").values_list(
            "id", "name_zh", "name_en"
        )
    ]


# Beyond this many the arbitration queue reads "99+": the list page reads one id more than this
# at most, and never counts rows.
ARBITRATION_QUEUE_CAP = 99


def after_sales_under_arbitration(*, shop_ids: list[int] | None) -> str:
    """How many after-sales of these shops (None: every shop) await the platform, the queue
    platform CS works from, as the list shows it: "0" to "99", or "99+".

    Read as at most ``ARBITRATION_QUEUE_CAP + 1`` ids through the partial index on arbitration,
    not with COUNT(*), which a list page never runs."""
    if shop_ids == []:
        return "0"
    rows = AfterSale.objects.filter(AfterSale.awaiting_platform())
    if shop_ids is not None:
        rows = rows.filter(shop_id__in=shop_ids)
    found = len(rows.order_by().values_list("id", flat=True)[: ARBITRATION_QUEUE_CAP + 1])
    return f"{ARBITRATION_QUEUE_CAP}+" if found > ARBITRATION_QUEUE_CAP else str(found)


def parcels_of_orders(
    order_ids: list[int], *, shop_ids: list[int] | None
) -> list[tuple[int, str, str, str]]:
    """(order id, courier name, waybill number, stage) of the orders' parcels, oldest first."""
    if not order_ids or shop_ids == []:
        return []
    parcels = Parcel.objects.filter(order_id__in=order_ids)
    if shop_ids is not None:
        parcels = parcels.filter(shop_id__in=shop_ids)
    language = get_language()
    return [
        (order_id, Courier.localized_name(name_zh, name_en, language), waybill_no, stage)
        for order_id, name_zh, name_en, waybill_no, stage in parcels.order_by("id").values_list(
            "order_id", "courier__name_zh", "courier__name_en", "waybill_no", "stage"
        )
    ]


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


# The chance an intercept succeeds, by the parcel's stage when it is asked for, until the
# platform has outcomes of its own (reference §7.4: design assumptions, not statistics).
DEFAULT_SUCCESS_CHANCE = {
    ParcelStage.PICKED_UP: 0.92,
    ParcelStage.IN_TRANSIT: 0.88,
    ParcelStage.AT_DESTINATION_CITY: 0.75,
    ParcelStage.AT_DELIVERY_STATION: 0.55,
    ParcelStage.DELIVERY_FAILED: 0.65,
    ParcelStage.AWAITING_COLLECTION: 0.40,
    ParcelStage.OUT_FOR_DELIVERY: 0.20,
}
# Own outcomes replace the default once there are this many for the courier and stage.
MIN_OWN_OUTCOMES = 30


@dataclass(frozen=True)
class SuccessChance:
    probability: float
    from_own_outcomes: bool  # False: the default table
    outcomes: int  # finished intercepts of this courier at this stage (withdrawn ones left out)
    needed: int = MIN_OWN_OUTCOMES  # how many make the figure our own


def intercept_success_chance(*, courier_id: int, stage: str) -> SuccessChance:
    """How likely an intercept with this courier at this stage is to succeed, and on what basis."""
    won = (InterceptRequest.Status.SUCCEEDED, InterceptRequest.Status.COMPLETED)
    lost = (InterceptRequest.Status.REJECTED, InterceptRequest.Status.FAILED)
    counts = InterceptRequest.objects.filter(
        parcel__courier_id=courier_id, stage_at_request=stage, status__in=won + lost
    ).aggregate(total=Count("pk"), succeeded=Count("pk", filter=Q(status__in=won)))
    total = counts["total"]
    if total >= MIN_OWN_OUTCOMES:
        return SuccessChance(counts["succeeded"] / total, True, total)
    return SuccessChance(DEFAULT_SUCCESS_CHANCE.get(stage, 0.0), False, total)


# --- What billing shows for an intercept fee ---------------------------------------------------


def intercept_fee_subjects(intercept_ids: list[int]):
    """The order and waybill of each intercept whose fee billing names ``intercept:<id>``: one
    query for a page of fees. Billing only asks about references of rows it already scoped."""
    rows = (
        InterceptRequest.objects.filter(pk__in=intercept_ids)
        .order_by()
        .values_list("pk", "parcel__order__order_no", "parcel__waybill_no")
    )
    return {
        pk: Subject(order_no=order_no, waybill_no=waybill_no) for pk, order_no, waybill_no in rows
    }


def intercept_fee_find(term: str) -> list[int]:
    """The intercepts of the order or waybill with this exact number (a waybill as typed, in
    either case): what a merchant searching their fees by either number means. The parcels are
    found first by two index lookups, as ``order_ids_for_number`` finds orders; billing filters
    its own, scoped rows by the result."""
    term = term.strip()
    if not term:
        return []
    by_waybill = Parcel.objects.filter(waybill_no=normalise_waybill(term)).order_by()
    by_order = Parcel.objects.filter(order__order_no=term).order_by()
    parcel_ids = list(
        by_waybill.values_list("id", flat=True)
        .union(by_order.values_list("id", flat=True))
        .order_by()[:_MAX_MATCHES]
    )
    return list(
        InterceptRequest.objects.filter(parcel_id__in=parcel_ids)
        .order_by()
        .values_list("pk", flat=True)[:_MAX_MATCHES]
    )


# ``intercept:<id>``; a reference of another shape is never cast to a number.
_FEE_REFERENCE = r"^intercept:[0-9]{1,18}$"


def intercept_fee_columns(reference_field: str) -> dict:
    """SQL of the order number and waybill behind a fee reference column (``intercept:<id>``),
    for billing's streamed exports: one primary-key lookup per row inside the same query."""
    reference = OuterRef(reference_field)
    intercept_id = Case(
        When(
            Regex(reference, Value(_FEE_REFERENCE)),
            then=Cast(Substr(reference, len("intercept:") + 1), BigIntegerField()),
        ),
        default=None,
        output_field=BigIntegerField(),
    )
    intercept = InterceptRequest.objects.filter(pk=intercept_id).order_by()
    return {
        "order_no": Subquery(intercept.values("parcel__order__order_no")[:1]),
        "waybill_no": Subquery(intercept.values("parcel__waybill_no")[:1]),
    }
