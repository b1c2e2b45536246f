"""Orders and their lines, with the parcels that carry them, their shipments and the signs of
fake shipping found on them; an order awaiting shipment is shipped from its page."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from billing.money import format_fen
from intercepts.admin.common import ExactNumberSearchMixin
from intercepts.admin.shipping import ShipForm, ship_from_form
from intercepts.models import Order, OrderEvent, OrderLine, Parcel, Shipment, ShipmentAnomaly
from intercepts.services.shipping import may_ship
from shops.scoped_admin import (
    PlatformShopFilter,
    ScopedTabularInline,
    ShopScopedAdmin,
    StatusHistoryInline,
    object_view_path,
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


class OrderShipmentInline(ScopedTabularInline):
    """How the order was shipped: a row per parcel, with the address the rules counted."""

    model = Shipment
    fk_name = "order"
    fields = ("courier", "waybill", "receiver_address", "channel", "flagged", "shipped_at")
    readonly_fields = fields
    verbose_name_plural = _("shipments")

    @display(description=_("courier"))
    def courier(self, obj: Shipment) -> str:
        return obj.parcel.courier.display_name

    @display(description=_("waybill number"))
    def waybill(self, obj: Shipment) -> str:
        return obj.parcel.waybill_no

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parcel__courier")


class OrderAnomalyInline(ScopedTabularInline):
    """Signs of fake shipping found on the order, each opening its own page to answer it."""

    model = ShipmentAnomaly
    fk_name = "order"
    fields = ("kind_link", "status", "reason", "detected_at")
    readonly_fields = fields
    verbose_name_plural = _("shipment anomalies")

    @display(description=_("kind"))
    def kind_link(self, obj: ShipmentAnomaly) -> str:
        url = reverse("admin:intercepts_shipmentanomaly_change", args=[obj.pk])
        return format_html(
            '<a class="text-primary-600" href="{}">{}</a>', url, obj.get_kind_display()
        )


class OrderEventInline(StatusHistoryInline):
    model = OrderEvent


@admin.register(Order)
class OrderAdmin(ExactNumberSearchMixin, ShopScopedAdmin):
    search_order_field = "pk"
    change_form_before_template = "admin/intercepts/order/ship_button.html"
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
        "receiver",
        "receiver_address",
        "total",
        "paid_at",
        "shipped_at",
        "receipt_confirm_at",
        "settlement_held_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = (
        OrderLineInline,
        OrderParcelInline,
        OrderShipmentInline,
        OrderAnomalyInline,
        OrderEventInline,
    )

    @display(description=_("buyer"))
    def buyer(self, obj: Order) -> str:
        return f"{obj.buyer_name} {obj.buyer_phone_masked}"

    @display(description=_("receiver"))
    def receiver(self, obj: Order) -> str:
        return f"{obj.receiver_name} {obj.receiver_phone_masked}".strip()

    @display(description=_("order total (yuan)"), ordering="total_fen")
    def total(self, obj: Order) -> str:
        return format_fen(obj.total_fen)

    def get_urls(self):
        return [object_view_path(self, OrderAdmin.ship_view, "ship"), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["may_ship"] = obj.status == Order.Status.PAID and may_ship(
                request.user, obj.shop_id
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def ship_view(self, request, object_id):
        """Ship the order: a courier and a waybill number; the receiver is the order's."""
        order = self.get_object(request, object_id)  # another shop's: 404
        if not may_ship(request.user, order.shop_id):
            raise PermissionDenied
        back_url = reverse("admin:intercepts_order_change", args=[order.pk])
        form = ShipForm(request.POST or None)
        shipping = request.method == "POST" and form.is_valid()
        if shipping and ship_from_form(self, request, form, order) is not None:
            return redirect(back_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": order,
            "title": _("Ship order %(order_no)s") % {"order_no": order.order_no},
            "form": form,
            "media": self.media + form.media,
            "receiver_order": order,
            "intro": _(
                "The parcel goes to the receiver the platform sent with the order. The waybill "
                "must fit the courier; a waybill already used for another address is accepted "
                "once and flagged, a third address is refused."
            ),
            "submit_label": _("Ship"),
            "back_url": back_url,
            "back_label": _("Back to the order"),
        }
        return TemplateResponse(request, "admin/intercepts/form_page.html", context)
