"""The claims workbench: the list (merchants their shop's, platform CS and finance every shop's),
with its figures and the bulk "pass to the courier"; a claim's page with its evidence, history
and the buttons each role may press; the filing form (the admin's add page)."""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin import SimpleListFilter
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q, Sum
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.decorators import action, display

from billing.money import format_fen
from claims import services
from claims.admin import claim_views
from claims.models import Claim, ClaimEvent, ClaimEvidence
from claims.services import ClaimError
from intercepts import selectors as intercept_selectors
from intercepts.admin.common import CourierFilter
from intercepts.admin.intercept_records import LocalDayRangeFilter
from shops.access import visible_shop_ids
from shops.scoped_admin import (
    AGENT,
    MERCHANT_ALL,
    NOBODY,
    OWNER,
    PLATFORM_ALL,
    PLATFORM_CS,
    LazyChangeList,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
)

Status = Claim.Status
# Approved by the courier, whether paid yet or not (a closed claim that was paid counts).
APPROVED_STATES = (Status.APPROVED, Status.PAID, Status.CLOSED)


def claim_figures(queryset) -> dict:
    """Open claims, the amount approved and the amount paid of the claims listed, in one
    aggregate query. Claims are few beside intercepts (a lost or damaged parcel is rare), and
    the filters the list offers are on indexed columns."""
    return queryset.order_by().aggregate(
        open=Count("pk", filter=Q(status__in=Claim.OPEN)),
        approved_fen=Sum(
            "amount_approved_fen",
            filter=Q(status__in=APPROVED_STATES, amount_approved_fen__isnull=False),
        ),
        paid_fen=Sum("amount_approved_fen", filter=Q(paid_at__isnull=False)),
    )


class ClaimChangeList(LazyChangeList):
    """The lazy list, with the figures of every row the filters let through (not the page's)."""

    def get_results(self, request):
        super().get_results(request)
        figures = claim_figures(self.queryset)
        self.figures = {
            "open": figures["open"] or 0,
            "approved_fen": figures["approved_fen"] or 0,
            "paid_fen": figures["paid_fen"] or 0,
        }
        start = request.GET.get("created_at_from", "")
        end = request.GET.get("created_at_to", "")
        self.figures_period = (start, end) if (start or end) else None


class ClaimCourierFilter(CourierFilter):
    """The couriers as the other lists offer them; a claim names its courier itself."""

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isascii() and value.isdigit()):
            return queryset
        return queryset.filter(courier_id=int(value))


class DaysOpenFilter(SimpleListFilter):
    """How long open claims have waited since they were filed: the customer-service queue's
    oldest first. Claims that ended are left out."""

    title = _("open for")
    parameter_name = "age"
    # (value, label, fewest whole days, most whole days or None)
    BANDS = (
        ("0-3", _("3 days or less"), 0, 3),
        ("4-7", _("4 to 7 days"), 4, 7),
        ("8-15", _("8 to 15 days"), 8, 15),
        ("16-", _("more than 15 days"), 16, None),
    )

    def lookups(self, request, model_admin):
        return [(value, label) for value, label, _low, _high in self.BANDS]

    def queryset(self, request, queryset):
        band = next((b for b in self.BANDS if b[0] == self.value()), None)
        if band is None:
            return queryset
        _value, _label, fewest, most = band
        now = timezone.now()
        # Open for at least N whole days: filed at or before now - N days.
        bounds = Q(status__in=Claim.OPEN, created_at__lte=now - timedelta(days=fewest))
        if most is not None:
            bounds &= Q(created_at__gt=now - timedelta(days=most + 1))
        return queryset.filter(bounds)


def days_open(claim: Claim) -> int:
    """Whole days from filing to now (still open) or to its last move (ended)."""
    end = timezone.now() if claim.is_open else claim.updated_at
    return max((end - claim.created_at).days, 0)


STATUS_COLOURS = {
    Status.SUBMITTED: "bg-blue-100 text-blue-700",
    Status.WITH_COURIER: "bg-orange-100 text-orange-700",
    Status.APPEALED: "bg-orange-100 text-orange-700",
    Status.APPROVED: "bg-green-100 text-green-700",
    Status.PAID: "bg-green-100 text-green-700",
    Status.REJECTED: "bg-red-100 text-red-700",
}


def status_badge(claim: Claim) -> str:
    colours = STATUS_COLOURS.get(claim.status, "bg-base-100 text-base-700")
    return format_html(
        '<span class="claim-status inline-block font-semibold h-6 leading-6 px-2 '
        'rounded-default text-[11px] whitespace-nowrap {}" data-status="{}">{}</span>',
        colours,
        claim.status,
        claim.get_status_display(),
    )


class ClaimEventInline(StatusHistoryInline):
    model = ClaimEvent
    parent_shop_path = "shop"
    verbose_name_plural = _("History")


class ClaimEvidenceInline(ScopedTabularInline):
    """The claim's photos and PDFs, each a link to the protected download."""

    model = ClaimEvidence
    parent_shop_path = "shop"
    fields = ("download", "content_type", "size_text", "uploaded_by_name", "created_at")
    readonly_fields = fields
    verbose_name_plural = _("Evidence")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")

    @display(description=_("file name"))
    def download(self, obj: ClaimEvidence) -> str:
        return format_html(
            '<a class="evidence-link text-primary-600 font-medium" href="{}" target="_blank" '
            'rel="noopener">{}</a>',
            claim_views.evidence_url(obj.claim_id, obj.pk),
            obj.original_name,
        )

    @display(description=_("uploaded by"))
    def uploaded_by_name(self, obj: ClaimEvidence) -> str:
        return obj.uploaded_by.get_username()

    @display(description=_("size"))
    def size_text(self, obj: ClaimEvidence) -> str:
        if obj.size >= 1024 * 1024:
            return f"{obj.size / (1024 * 1024):.1f} MB"
        return f"{max(obj.size // 1024, 1)} KB"


@admin.register(Claim)
class ClaimAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    """Every claim the user may see. Nothing is edited here: each button calls a service."""

    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        # The filing form: the shop's owner and agents online, customer service offline.
        "add": frozenset({OWNER, AGENT, PLATFORM_CS}),
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "number",
        "shop",
        "waybill",
        "courier_name",
        "reason",
        "state",
        "claimed",
        "approved",
        "age",
        "created_at",
    )
    list_display_links = ("number",)
    list_select_related = ("shop", "parcel", "courier")
    list_filter = (
        "status",
        ClaimCourierFilter,
        DaysOpenFilter,
        ("created_at", LocalDayRangeFilter),
        PlatformShopFilter,
    )
    list_filter_submit = True
    list_before_template = "admin/claims/claim/figures.html"
    search_fields = ("parcel__waybill_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-id",)
    actions = ("send_to_courier",)
    change_form_outer_before_template = "admin/claims/claim/claim_panel.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "state",
                    "shop",
                    "intercept_link",
                    "parcel_label",
                    "courier_phone",
                    "reason",
                    "description",
                    "channel",
                    "contact_note",
                    "filed_by_name",
                    "created_at",
                )
            },
        ),
        (
            _("Amounts"),
            {"fields": ("goods_value", "ceiling", "claimed", "approved")},
        ),
        (
            _("Decision and payment"),
            {
                "fields": (
                    "decision_note",
                    "appeal_note",
                    "appealed_at",
                    "payout",
                    "payment_reference",
                    "paid_at",
                )
            },
        ),
    )
    inlines = (ClaimEvidenceInline, ClaimEventInline)

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_changelist(self, request, **kwargs):
        return ClaimChangeList

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        parcel_ids = intercept_selectors.parcel_ids_for_number(
            search_term, shop_ids=visible_shop_ids(request.user)
        )
        return queryset.filter(parcel_id__in=parcel_ids), False

    def get_urls(self):
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}"

        def action_path(name):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(
                    lambda request, object_id: claim_views.action_view(
                        self, request, unquote(object_id), name
                    )
                ),
                name=f"{prefix}_{name}",
            )

        return [
            path(
                "<path:object_id>/evidence/<int:evidence_id>/",
                self.admin_site.admin_view(
                    lambda request, object_id, evidence_id: claim_views.evidence_view(
                        self, request, unquote(object_id), evidence_id
                    )
                ),
                name=f"{prefix}_evidence",
            ),
            *[action_path(name) for name in claim_views.ACTIONS],
            *super().get_urls(),
        ]

    # --- The filing form and the claim page ---

    def add_view(self, request, form_url="", extra_context=None):
        return claim_views.file_view(self, request)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(claim_views.claim_buttons(request, obj))
            context["claim"] = obj
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- The bulk action ---

    def has_send_to_courier_permission(self, request) -> bool:
        return services.is_claims_cs(request.user)

    @action(description=_("Pass to the courier"), permissions=["send_to_courier"])
    def send_to_courier(self, request, queryset):
        moved, skipped = [], []
        for claim in queryset.select_related("courier").order_by("id"):
            try:
                services.claim_send_to_courier(actor=request.user, claim=claim)
            except ClaimError:
                skipped.append(claim)
            else:
                moved.append(claim)
        if moved:
            self.message_user(
                request,
                ngettext(
                    "%(count)d claim was passed to the courier.",
                    "%(count)d claims were passed to the courier.",
                    len(moved),
                )
                % {"count": len(moved)},
                level=messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d claim was skipped, as only submitted or appealed claims go to "
                    "the courier: %(claims)s.",
                    "%(count)d claims were skipped, as only submitted or appealed claims go to "
                    "the courier: %(claims)s.",
                    len(skipped),
                )
                % {
                    "count": len(skipped),
                    "claims": _(", ").join(
                        _("#%(id)s (%(status)s)")
                        % {"id": claim.pk, "status": claim.get_status_display()}
                        for claim in skipped
                    ),
                },
                level=messages.WARNING,
            )

    # --- Columns and fields ---

    @display(description=_("claim no."))
    def number(self, obj: Claim) -> str:
        return f"#{obj.pk}"

    @display(description=_("waybill number"))
    def waybill(self, obj: Claim) -> str:
        return format_html('<span class="font-mono">{}</span>', obj.parcel.waybill_no)

    @display(description=_("courier"))
    def courier_name(self, obj: Claim) -> str:
        return obj.courier.display_name

    @display(description=_("status"))
    def state(self, obj: Claim) -> str:
        return status_badge(obj)

    @display(description=_("amount claimed (yuan)"))
    def claimed(self, obj: Claim) -> str:
        return format_fen(obj.amount_claimed_fen)

    @display(description=_("amount approved (yuan)"))
    def approved(self, obj: Claim) -> str:
        return "—" if obj.amount_approved_fen is None else format_fen(obj.amount_approved_fen)

    @display(description=_("days open"))
    def age(self, obj: Claim) -> int:
        return days_open(obj)

    @display(description=_("value of the goods (yuan)"))
    def goods_value(self, obj: Claim) -> str:
        return format_fen(obj.goods_value_fen)

    @display(description=_("most that can be claimed (yuan)"))
    def ceiling(self, obj: Claim) -> str:
        return format_fen(obj.ceiling_fen)

    @display(description=_("intercept record"))
    def intercept_link(self, obj: Claim) -> str:
        intercept = obj.intercept
        return format_html(
            '<a id="intercept-link" class="text-primary-600 font-medium" href="{}">{} · {}</a>',
            reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk]),
            intercept.get_action_display(),
            intercept.get_status_display(),
        )

    @display(description=_("parcel"))
    def parcel_label(self, obj: Claim) -> str:
        parcel = obj.parcel
        return format_html(
            '{} <span class="font-mono">{}</span> · {} {}',
            obj.courier.display_name,
            parcel.waybill_no,
            _("order"),
            parcel.order.order_no,
        )

    @display(description=_("filed by"))
    def filed_by_name(self, obj: Claim) -> str:
        # The name only: the user's admin page is not one a merchant may open.
        return obj.filed_by.get_username()

    @display(description=_("Courier's complaint phone"))
    def courier_phone(self, obj: Claim) -> str:
        return format_html('<span class="font-mono">{}</span>', obj.courier.service_phone)
