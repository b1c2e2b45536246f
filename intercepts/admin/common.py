"""What the workbench's list pages share: number search, courier and stage filters, badges."""

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.models import Hold
from billing.money import format_fen
from couriers.stages import ParcelStage, stage_label
from intercepts import selectors
from intercepts.models import (
    Parcel,
)
from shops.access import visible_shop_ids


class ExactNumberSearchMixin:
    """Search by a whole order number or waybill number, both indexed exact matches.

    A merchant pastes a full number; a substring scan over millions of rows would be slow and
    would need DISTINCT across parcels.
    """

    search_order_field = "order_id"

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        ids = selectors.order_ids_for_number(search_term, shop_ids=visible_shop_ids(request.user))
        return queryset.filter(**{f"{self.search_order_field}__in": ids}), False


class CourierFilter(admin.SimpleListFilter):
    title = _("courier")
    parameter_name = "courier"

    def lookups(self, request, model_admin):
        return selectors.courier_choices()

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Parcel.objects.filter(order_id=OuterRef("order_id"), courier_id=self.value()))
        )


class StageFilter(admin.SimpleListFilter):
    title = _("parcel stage")
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return ParcelStage.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Parcel.objects.filter(order_id=OuterRef("order_id"), stage=self.value()))
        )


def stage_badge(courier_name: str, waybill_no: str, stage: str) -> str:
    return format_html(
        '<div class="whitespace-nowrap">{} <span class="font-mono">{}</span> · {}</div>',
        courier_name,
        waybill_no,
        stage_label(stage),
    )


def parcel_badge(parcel: Parcel) -> str:
    return stage_badge(parcel.courier.display_name, parcel.waybill_no, parcel.stage)


# What became of a fee, in the merchant's words: held until the outcome, charged on success,
# returned to the wallet on refusal, failure or withdrawal.
FEE_STATES = {
    Hold.Status.HELD: _("Held"),
    Hold.Status.CAPTURED: _("Charged"),
    Hold.Status.RELEASED: _("Returned to the wallet"),
}
_FEE_CELLS = {
    Hold.Status.HELD: _("held %(amount)s"),
    Hold.Status.CAPTURED: _("charged %(amount)s"),
    Hold.Status.RELEASED: _("returned %(amount)s"),
}


def fee_state_label(fee_state: str | None) -> str:
    """The hold's status (``with_fee_state``) in words; empty for a request without a hold."""
    return str(FEE_STATES.get(fee_state, ""))


def fee_cell(fee_fen: int, fee_state: str | None) -> str:
    """A fee as a list shows it: "charged 3.00", not a bare 3.00 that a refused intercept
    would show too."""
    amount = format_fen(fee_fen)
    template = _FEE_CELLS.get(fee_state)
    return template % {"amount": amount} if template else amount
