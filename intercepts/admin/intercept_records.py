"""Intercept records: every intercept a user may see, its panel and withdrawal."""

import csv
import io
from datetime import datetime, time, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import display
from unfold.utils import parse_date_str

from billing.money import format_fen
from intercepts import selectors
from intercepts.admin import intercept_views
from intercepts.admin.common import (
    CourierFilter,
    fee_cell,
    fee_state_label,
    parcel_badge,
)
from intercepts.models import (
    InterceptEvent,
    InterceptRequest,
)
from shops.access import visible_shop_ids
from shops.scoped_admin import (
    MERCHANT_ALL,
    NOBODY,
    PLATFORM_ALL,
    PlatformShopFilter,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
    object_view_path,
)


class InterceptCourierFilter(CourierFilter):
    """The same choices as the after-sales' courier filter; an intercept names its parcel."""

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(parcel__courier_id=self.value())


class ClaimSuggestedFilter(admin.SimpleListFilter):
    """Intercepts marked "claim suggested" (not back in time, damaged or lost), or not."""

    title = _("claim suggested")
    parameter_name = "claim"

    def lookups(self, request, model_admin):
        return (("suggested", _("Claim suggested")), ("none", _("No claim suggested")))

    def queryset(self, request, queryset):
        if self.value() == "suggested":
            return queryset.exclude(claim_suggestion="")
        if self.value() == "none":
            return queryset.filter(claim_suggestion="")
        return queryset


class LocalDayRangeFilter(RangeDateFilter):
    """A range of whole local days on a date-time column, both ends included.

    Unfold's filter compares the dates themselves, which on a date-time column means midnight:
    "to the 22nd" would leave the 22nd out. This one asks for [from 00:00, day after to 00:00)
    in the workbench's time zone, which an index on the column still serves.
    """

    def queryset(self, request, queryset):
        bounds = {}
        for suffix, lookup, shift in (("_from", "gte", 0), ("_to", "lt", 1)):
            text = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if text in (None, ""):
                continue
            try:
                day = parse_date_str(text)
            except (ValueError, ValidationError):
                return None
            if day is None:
                return None
            start = datetime.combine(day + timedelta(days=shift), time.min)
            bounds[f"{self.parameter_name}__{lookup}"] = timezone.make_aware(start)
        return queryset.filter(**bounds)


class InterceptEventInline(StatusHistoryInline):
    model = InterceptEvent
    parent_shop_path = "shop"
    fields = ("created_at", "from_status", "to_status", "source", "actor_name", "note")


@admin.register(InterceptRequest)
class InterceptRequestAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    """Every intercept the user may see ("intercept records"); changed only by the services."""

    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "created_at",
        "shop",
        "order_no",
        "parcel_label",
        "action",
        "channel",
        "state",
        "claim_badge",
        "fee",
        "requested_by",
    )
    list_select_related = ("shop", "parcel__courier", "parcel__order", "requested_by")
    list_filter = (
        "status",
        InterceptCourierFilter,
        "action",
        "channel",
        ClaimSuggestedFilter,
        ("created_at", LocalDayRangeFilter),
        PlatformShopFilter,
    )
    list_filter_submit = True
    list_before_template = "admin/intercepts/interceptrequest/export_link.html"
    search_fields = ("parcel__waybill_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-id",)
    sortable_by = ()
    list_display_links = ("created_at",)
    # Only what a request keeps for life. What moves with its status (the status, the fee's
    # state, the courier's reference, the failure, the time of the last change) is in the live
    # panel above, which refreshes by itself: shown here too, it would stay behind and the page
    # would contradict itself until reloaded.
    fields = (
        "shop",
        "order_no",
        "parcel_label",
        "after_sale",
        "action",
        "stage_at_request",
        "new_address_text",
        "channel",
        "reason",
        "requested_by_name",
        "created_at",
    )
    readonly_fields = fields
    inlines = (InterceptEventInline,)

    def get_queryset(self, request):
        # What became of each fee, read from its hold in the same query.
        return super().get_queryset(request).with_fee_state()

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        parcel_ids = selectors.parcel_ids_for_number(
            search_term, shop_ids=visible_shop_ids(request.user)
        )
        return queryset.filter(parcel_id__in=parcel_ids), False

    change_form_before_template = "admin/intercepts/interceptrequest/live_status.html"

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="intercepts_interceptrequest_export",
            ),
            object_view_path(self, intercept_views.panel_view, "panel"),
            object_view_path(self, intercept_views.withdraw_view, "withdraw"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The object the page already loaded: the live status panel.
        if obj is not None:
            context.update(intercept_views.panel_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    EXPORT_COLUMNS = (
        (_("Created at"), lambda o: timezone.localtime(o.created_at).strftime("%Y-%m-%d %H:%M:%S")),
        (_("Shop"), lambda o: o.shop.name),
        (_("Order number"), lambda o: o.parcel.order.order_no),
        (_("Courier"), lambda o: o.parcel.courier.display_name),
        (_("Waybill number"), lambda o: o.parcel.waybill_no),
        (_("Action"), lambda o: o.get_action_display()),
        (_("Channel"), lambda o: o.get_channel_display()),
        (_("Status"), lambda o: o.get_status_display()),
        (_("Fee (yuan)"), lambda o: format_fen(o.fee_fen).replace(",", "")),
        (_("Fee state"), lambda o: fee_state_label(o.fee_state)),
        (_("Failure reason"), lambda o: o.failure_reason),
        (_("Claim suggested"), lambda o: o.get_claim_suggestion_display()),
        (_("Requested by"), lambda o: o.requested_by.get_username() if o.requested_by else ""),
    )

    def export_view(self, request):
        """The list as it is filtered and searched now, every page of it, as CSV for Excel."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = (
            changelist.get_queryset(request)
            .select_related("shop", "parcel__order", "parcel__courier", "requested_by")
            .order_by("-id")
        )

        def lines():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow([str(title) for title, _value in self.EXPORT_COLUMNS])
            yield "\ufeff" + buffer.getvalue()
            for intercept in rows.iterator(chunk_size=1000):
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([value(intercept) for _title, value in self.EXPORT_COLUMNS])
                yield buffer.getvalue()

        response = StreamingHttpResponse(
            (line.encode() for line in lines()), content_type="text/csv; charset=utf-8"
        )
        name = _("intercept-records")
        response["Content-Disposition"] = content_disposition_header(
            True, f"{name}-{timezone.localdate():%Y%m%d}.csv"
        )
        return response

    @display(description=_("requested by"))
    def requested_by_name(self, obj: InterceptRequest) -> str:
        # The name only: the user's admin page is not one a merchant may open.
        return obj.requested_by.get_username() if obj.requested_by_id else ""

    @display(description=_("order number"))
    def order_no(self, obj: InterceptRequest) -> str:
        return obj.parcel.order.order_no

    @display(description=_("parcel"))
    def parcel_label(self, obj: InterceptRequest) -> str:
        return parcel_badge(obj.parcel)

    # Drawn here rather than with Unfold's label option: the list and the read-only detail page
    # both show plain values.
    STATUS_COLOURS = {
        InterceptRequest.Status.SUCCEEDED: "bg-green-100 text-green-700",
        InterceptRequest.Status.COMPLETED: "bg-green-100 text-green-700",
        InterceptRequest.Status.REJECTED: "bg-red-100 text-red-700",
        InterceptRequest.Status.FAILED: "bg-red-100 text-red-700",
        InterceptRequest.Status.CANCELLED: "bg-orange-100 text-orange-700",
    }

    @display(description=_("status"))
    def state(self, obj: InterceptRequest) -> str:
        colours = self.STATUS_COLOURS.get(obj.status, "bg-blue-100 text-blue-700")
        return format_html(
            '<span class="inline-block font-semibold h-6 leading-6 px-2 rounded-default '
            'text-[11px] whitespace-nowrap {}">{}</span>',
            colours,
            obj.get_status_display(),
        )

    @display(description=_("claim suggested"))
    def claim_badge(self, obj: InterceptRequest) -> str:
        if not obj.claim_suggestion:
            return ""
        return format_html(
            '<span class="inline-block font-semibold h-6 leading-6 px-2 rounded-default '
            'text-[11px] whitespace-nowrap bg-orange-100 text-orange-700">{}</span>',
            obj.get_claim_suggestion_display(),
        )

    @display(description=_("new address"))
    def new_address_text(self, obj: InterceptRequest) -> str:
        return obj.new_address_line or "—"

    @display(description=_("fee (yuan)"))
    def fee(self, obj: InterceptRequest) -> str:
        return fee_cell(obj.fee_fen, obj.fee_state)
