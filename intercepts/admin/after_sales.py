"""After-sales: the merchant's list and the page where an intercept is asked for."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from billing.money import format_fen
from intercepts import selectors
from intercepts.admin import intercept_views
from intercepts.admin.common import (
    CourierFilter,
    ExactNumberSearchMixin,
    StageFilter,
    fee_cell,
    parcel_badge,
    stage_badge,
)
from intercepts.display import short_age, short_datetime
from intercepts.models import (
    AfterSale,
    AfterSaleEvent,
    InterceptRequest,
)
from shops.access import access_for, visible_shop_ids
from shops.scoped_admin import (
    MERCHANT_ALL,
    NOBODY,
    PLATFORM_ALL,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
    object_view_path,
)


class ArbitrationFilter(admin.SimpleListFilter):
    """Platform arbitration, with the cases awaiting the platform first and how many there are:
    CS works from that queue. The number covers only the shops the user may see."""

    title = _("arbitration")
    parameter_name = "arbitration"
    UNDER_ARBITRATION = "open"

    def lookups(self, request, model_admin):
        count = selectors.after_sales_under_arbitration(shop_ids=visible_shop_ids(request.user))
        return [
            (self.UNDER_ARBITRATION, _("Awaiting the platform (%(count)s)") % {"count": count}),
            *AfterSale.Arbitration.choices,
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.UNDER_ARBITRATION:
            return queryset.filter(AfterSale.awaiting_platform())
        if value in AfterSale.Arbitration.values:
            return queryset.filter(arbitration=value)
        return queryset


class AfterSaleEventInline(StatusHistoryInline):
    model = AfterSaleEvent


class AfterSaleInterceptInline(ScopedTabularInline):
    """The after-sale's intercepts, each linking to its record and history."""

    model = InterceptRequest
    fk_name = "after_sale"
    fields = ("created_at", "parcel", "action", "channel", "status", "fee", "failure_reason")
    readonly_fields = fields
    show_change_link = True
    show_title = True  # the row's title carries the link to the record
    verbose_name_plural = _("intercepts")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parcel__courier").with_fee_state()

    @display(description=_("fee (yuan)"))
    def fee(self, obj: InterceptRequest) -> str:
        return fee_cell(obj.fee_fen, obj.fee_state)


@admin.register(AfterSale)
class AfterSaleAdmin(ShopColumnForPlatformMixin, ExactNumberSearchMixin, ShopScopedAdmin):
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "order_no",
        "shop",
        "buyer",
        "parcels",
        "kind",
        "status",
        "arbitration",
        "refund_amount",
        "age",
    )
    list_select_related = ("order", "shop")
    list_filter = (
        "status",
        "kind",
        ArbitrationFilter,
        CourierFilter,
        StageFilter,
        PlatformShopFilter,
    )
    list_filter_submit = True  # the shop filter is typed
    search_fields = ("order__order_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-created_at", "-id")
    sortable_by = ()
    list_display_links = ("order_no",)
    readonly_fields = (
        "shop",
        "order",
        "buyer",
        "parcels",
        "kind",
        "status",
        "arbitration",
        "refund_amount",
        "reason",
        "created_at",
    )
    fields = readonly_fields
    inlines = (AfterSaleInterceptInline, AfterSaleEventInline)
    change_form_before_template = "admin/intercepts/aftersale/actions.html"

    def get_urls(self):
        return [
            object_view_path(self, intercept_views.intercept_view, "intercept"),
            object_view_path(self, intercept_views.approve_refund_view, "approve-refund"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The object the page already loaded: the intercept button and the refund prompt.
        if obj is not None:
            context.update(intercept_views.after_sale_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_list_select_related(self, request):
        # Merchants see no shop column: no shop to join.
        if access_for(request.user).sees_all_shops:
            return self.list_select_related
        return ("order",)

    def load_changelist_extras(self, request, rows: list[AfterSale]) -> None:
        # Each row's parcels as the column shows them, in one query for the page: only the
        # values a badge needs, not a parcel and a courier object per badge.
        badges: dict[int, list[str]] = {row.order_id: [] for row in rows}
        parcels = selectors.parcels_of_orders(list(badges), shop_ids=visible_shop_ids(request.user))
        for order_id, courier_name, waybill_no, stage in parcels:
            badges[order_id].append(stage_badge(courier_name, waybill_no, stage))
        for row in rows:
            row.parcel_badges = badges[row.order_id]

    @display(description=_("order number"), ordering="order__order_no")
    def order_no(self, obj: AfterSale) -> str:
        return obj.order.order_no

    @display(description=_("buyer"))
    def buyer(self, obj: AfterSale) -> str:
        order = obj.order
        return format_html(
            '{}<br><span class="text-subtle">{}</span>', order.buyer_name, order.buyer_phone_masked
        )

    @display(description=_("parcels"))
    def parcels(self, obj: AfterSale) -> str:
        badges = getattr(obj, "parcel_badges", None)
        if badges is None:  # the detail page
            badges = [
                parcel_badge(parcel)
                for parcel in obj.order.parcels.select_related("courier").order_by("id")
            ]
        if not badges:
            return _("Not shipped")
        return mark_safe("".join(badges))

    @display(description=_("refund (yuan)"))
    def refund_amount(self, obj: AfterSale) -> str:
        return format_fen(obj.refund_amount_fen)

    @display(description=_("age"))
    def age(self, obj: AfterSale) -> str:
        language = get_language()
        created = obj.created_at
        if obj.status in (AfterSale.Status.REFUNDED, AfterSale.Status.CLOSED):
            return "-"  # nobody waits on a finished case
        return format_html(
            '<span title="{}">{}</span>',
            short_datetime(created, language=language),
            short_age(timezone.now() - created, language=language),
        )
