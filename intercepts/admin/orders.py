"""Orders and their lines, with the parcels that carry them."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from billing.money import format_fen
from intercepts.admin.common import ExactNumberSearchMixin
from intercepts.models import Order, OrderEvent, OrderLine, Parcel
from shops.scoped_admin import (
    PlatformShopFilter,
    ScopedTabularInline,
    ShopScopedAdmin,
    StatusHistoryInline,
)


class OrderLineInline(ScopedTabularInline):
    model = OrderLine
    fields = ("goods_name", "category", "unit_price", "quantity")
    readonly_fields = fields

    @display(description=_("unit price (yuan)"))
    def unit_price(self, obj: OrderLine) -> str:
        return format_fen(obj.unit_price_fen)


class OrderParcelInline(ScopedTabularInline):
    model = Parcel
    fields = ("courier", "waybill_no", "stage", "declared_value", "shipped_at")
    readonly_fields = fields
    show_change_link = True

    @display(description=_("declared value (yuan)"))
    def declared_value(self, obj: Parcel) -> str:
        return format_fen(obj.declared_value_fen)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("courier")


class OrderEventInline(StatusHistoryInline):
    model = OrderEvent


@admin.register(Order)
class OrderAdmin(ExactNumberSearchMixin, ShopScopedAdmin):
    search_order_field = "pk"
    list_display = ("order_no", "shop", "buyer", "status", "total", "paid_at")
    list_select_related = ("shop",)
    list_filter = ("status", PlatformShopFilter)
    list_filter_submit = True  # the shop filter is typed
    search_fields = ("order_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "shop",
        "order_no",
        "status",
        "buyer",  # the name with the phone masked, as the lists show it
        "total",
        "paid_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = (OrderLineInline, OrderParcelInline, OrderEventInline)

    @display(description=_("buyer"))
    def buyer(self, obj: Order) -> str:
        return f"{obj.buyer_name} {obj.buyer_phone_masked}"

    @display(description=_("order total (yuan)"), ordering="total_fen")
    def total(self, obj: Order) -> str:
        return format_fen(obj.total_fen)
