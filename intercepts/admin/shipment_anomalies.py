"""Shipment anomalies in the workbench: the list (merchants their shops', platform staff every
shop's) with its count per kind; an anomaly's page with its reason, history and evidence, the
merchant's answer and customer service's ruling; and finance's page of held settlements.

Nothing is edited by form: the answer calls ``shipment_checks.anomaly_answer``, the ruling
``anomaly_rule``; their refusals are shown as messages.
"""

import csv
import io

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery, Sum
from django.http import Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.decorators import display

from billing.money import format_fen
from intercepts import selectors
from intercepts.models import Order, ShipmentAnomaly, ShipmentAnomalyEvent, ShipmentAnomalyEvidence
from intercepts.services import shipment_checks
from intercepts.services.errors import DomainError
from shops import evidence as evidence_checks
from shops.access import access_for, scope_to_shops, visible_shop_ids
from shops.scoped_admin import (
    MERCHANT_ALL,
    NOBODY,
    PLATFORM_ALL,
    LazyChangeList,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
)

Kind = ShipmentAnomaly.Kind
Status = ShipmentAnomaly.Status
# What customer service may still rule on: upheld ones only clear when the parcel arrives.
RULABLE = (Status.OPEN, Status.ANSWERED)
HELD_PER_PAGE = 50

STATUS_COLOURS = {
    Status.OPEN: "bg-red-100 text-red-700",
    Status.ANSWERED: "bg-orange-100 text-orange-700",
    Status.UPHELD: "bg-red-100 text-red-700",
    Status.DISMISSED: "bg-green-100 text-green-700",
    Status.CLEARED: "bg-green-100 text-green-700",
}


def _change_url(anomaly: ShipmentAnomaly) -> str:
    return reverse("admin:intercepts_shipmentanomaly_change", args=[anomaly.pk])


def days_since(anomaly: ShipmentAnomaly) -> int:
    """Whole days since the anomaly was detected."""
    return max((timezone.now() - anomaly.detected_at).days, 0)


# --- The list --------------------------------------------------------------------------------


class AnomalyChangeList(LazyChangeList):
    """The lazy list, with the count per kind of every row the filters let through."""

    def get_results(self, request):
        super().get_results(request)
        counts = dict(
            self.queryset.order_by().values("kind").annotate(n=Count("pk")).values_list("kind", "n")
        )
        self.kind_counts = [
            {"kind": value, "label": label, "count": counts.get(value, 0)}
            for value, label in Kind.choices
        ]


class AnomalyCourierFilter(admin.SimpleListFilter):
    title = gettext_lazy("courier")
    parameter_name = "courier"

    def lookups(self, request, model_admin):
        return selectors.courier_choices()

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isascii() and value.isdigit()):
            return queryset
        return queryset.filter(parcel__courier_id=int(value))


class AnomalyEventInline(StatusHistoryInline):
    model = ShipmentAnomalyEvent
    parent_shop_path = "shop"
    verbose_name_plural = gettext_lazy("History")


class AnomalyEvidenceInline(ScopedTabularInline):
    """The merchant's photos and PDFs, each a link to the protected download."""

    model = ShipmentAnomalyEvidence
    parent_shop_path = "shop"
    fields = ("download", "content_type", "size_text", "uploaded_by_name", "created_at")
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("Evidence")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("uploaded_by")

    @display(description=gettext_lazy("file name"))
    def download(self, obj: ShipmentAnomalyEvidence) -> str:
        return format_html(
            '<a class="evidence-link text-primary-600 font-medium" href="{}" target="_blank" '
            'rel="noopener">{}</a>',
            evidence_url(obj.anomaly_id, obj.pk),
            obj.original_name,
        )

    @display(description=gettext_lazy("uploaded by"))
    def uploaded_by_name(self, obj: ShipmentAnomalyEvidence) -> str:
        return obj.uploaded_by.get_username()

    @display(description=gettext_lazy("size"))
    def size_text(self, obj: ShipmentAnomalyEvidence) -> str:
        if obj.size >= 1024 * 1024:
            return f"{obj.size / (1024 * 1024):.1f} MB"
        return f"{max(obj.size // 1024, 1)} KB"


class AnswerForm(forms.Form):
    """The merchant's answer: what happened, and photos or PDFs (checked by the service)."""

    explanation = forms.CharField(max_length=2000, required=False)

    def __init__(self, *args, files_list=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.uploads = [upload for upload in files_list if upload]


class RuleForm(forms.Form):
    note = forms.CharField(max_length=255, required=False)


@admin.register(ShipmentAnomaly)
class ShipmentAnomalyAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    """Every anomaly the user may see; read-only, each button calls a service."""

    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "number",
        "kind",
        "state",
        "age",
        "courier_name",
        "order_no",
        "waybill",
        "shop",
        "detected_at",
    )
    list_display_links = ("number",)
    list_select_related = ("shop", "order", "parcel__courier")
    list_filter = ("kind", "status", AnomalyCourierFilter, PlatformShopFilter)
    list_filter_submit = True
    list_before_template = "admin/intercepts/shipmentanomaly/figures.html"
    search_fields = ("order__order_no",)
    search_help_text = gettext_lazy("A whole order number or waybill number")
    ordering = ("-detected_at", "-id")
    change_form_outer_before_template = "admin/intercepts/shipmentanomaly/panel.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "state",
                    "kind",
                    "shop",
                    "reason",
                    "order_link",
                    "parcel_label",
                    "detected_at",
                    "closed_at",
                    "settlement",
                    "explanation",
                )
            },
        ),
    )
    inlines = (AnomalyEvidenceInline, AnomalyEventInline)

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_changelist(self, request, **kwargs):
        return AnomalyChangeList

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        order_ids = selectors.order_ids_for_number(
            search_term, shop_ids=visible_shop_ids(request.user)
        )
        return queryset.filter(order_id__in=order_ids), False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        prefix = "intercepts_shipmentanomaly"

        def object_path(suffix, view):
            return path(
                f"<path:object_id>/{suffix}/",
                wrap(lambda request, object_id: view(request, unquote(object_id))),
                name=f"{prefix}_{suffix}",
            )

        return [
            path("held/", wrap(self.held_view), name=f"{prefix}_held"),
            path("held/export/", wrap(self.held_export_view), name=f"{prefix}_held_export"),
            path(
                "<path:object_id>/evidence/<int:evidence_id>/",
                wrap(
                    lambda request, object_id, evidence_id: self.evidence_view(
                        request, unquote(object_id), evidence_id
                    )
                ),
                name=f"{prefix}_evidence",
            ),
            object_path("answer", self.answer_view),
            object_path(
                "uphold", lambda request, object_id: self.rule_view(request, object_id, True)
            ),
            object_path(
                "dismiss", lambda request, object_id: self.rule_view(request, object_id, False)
            ),
            *super().get_urls(),
        ]

    # --- The anomaly page and its buttons ---

    def buttons(self, request, anomaly: ShipmentAnomaly) -> dict:
        user = request.user
        access = access_for(user)
        answer = anomaly.status == Status.OPEN and (
            access.is_superuser or access.acts_for(anomaly.shop_id)
        )
        rule = anomaly.status in RULABLE and shipment_checks.may_rule(user)
        return {
            "anomaly": anomaly,
            "can_answer": answer,
            "can_rule": rule,
            "accept_files": ",".join(evidence_checks.ACCEPTED_TYPES),
            "evidence_help": _(
                "Photos (JPEG, PNG, WebP) or PDFs, at most %(count)s files of %(size)s MB each."
            )
            % {
                "count": evidence_checks.max_files(),
                "size": evidence_checks.megabytes(evidence_checks.max_bytes()),
            },
            "answer_url": reverse("admin:intercepts_shipmentanomaly_answer", args=[anomaly.pk]),
            "uphold_url": reverse("admin:intercepts_shipmentanomaly_uphold", args=[anomaly.pk]),
            "dismiss_url": reverse("admin:intercepts_shipmentanomaly_dismiss", args=[anomaly.pk]),
        }

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.buttons(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _error(self, request, lines) -> None:
        for line in lines:
            self.message_user(request, line, level=messages.ERROR)

    def answer_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        anomaly = self.get_object(request, object_id)  # another shop's: 404
        if not shipment_checks.may_answer(request.user, anomaly):
            raise PermissionDenied
        form = AnswerForm(request.POST, files_list=request.FILES.getlist("files"))
        if not form.is_valid():
            self._error(request, [e for errors in form.errors.values() for e in errors])
            return redirect(_change_url(anomaly))
        try:
            shipment_checks.anomaly_answer(
                actor=request.user,
                anomaly=anomaly,
                explanation=form.cleaned_data["explanation"],
                files=form.uploads,
            )
        except ValidationError as exc:
            self._error(request, exc.messages)
        except DomainError as exc:
            self._error(request, [str(exc)])
        else:
            self.message_user(
                request,
                _("Your explanation was sent; platform customer service will rule on it."),
                level=messages.SUCCESS,
            )
        return redirect(_change_url(anomaly))

    def rule_view(self, request, object_id, uphold: bool):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        anomaly = self.get_object(request, object_id)  # another shop's: 404
        if not shipment_checks.may_rule(request.user):
            raise PermissionDenied
        form = RuleForm(request.POST)
        form.is_valid()
        before = anomaly.status
        try:
            shipment_checks.anomaly_rule(
                actor=request.user,
                anomaly=anomaly,
                uphold=uphold,
                note=form.cleaned_data.get("note", ""),
            )
        except ValidationError as exc:
            self._error(request, exc.messages)
        except DomainError as exc:
            self._error(request, [str(exc)])
        else:
            if anomaly.status == before:
                self.message_user(
                    request,
                    _("This anomaly was already “%(status)s”.")
                    % {"status": anomaly.get_status_display()},
                    level=messages.WARNING,
                )
            elif uphold:
                self.message_user(request, _("The anomaly was upheld."), level=messages.SUCCESS)
            else:
                self.message_user(request, _("The anomaly was dismissed."), level=messages.SUCCESS)
        return redirect(_change_url(anomaly))

    def evidence_view(self, request, object_id, evidence_id: int):
        """One evidence file, to whoever may see its anomaly; to anyone else it does not
        exist."""
        anomaly = self.get_object(request, object_id)  # another shop's: 404
        if not self.has_view_permission(request, anomaly):
            raise Http404
        item = ShipmentAnomalyEvidence.objects.filter(anomaly_id=anomaly.pk, pk=evidence_id).first()
        if item is None:
            raise Http404
        return evidence_checks.file_response(item)

    # --- Held settlements ---

    def _held_orders(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return scope_to_shops(Order.objects.filter(settlement_held_at__isnull=False), request.user)

    def held_view(self, request):
        """Orders whose settlement is held while a 10-day stall is open, with the sum held per
        shop: finance and customer service see every shop, a merchant its own."""
        held = self._held_orders(request)
        shops = list(
            held.order_by()
            .values("shop_id", "shop__name", "shop__code")
            .annotate(count=Count("pk"), total_fen=Sum("total_fen"))
            .order_by("-total_fen", "shop__code")
        )
        page = Paginator(
            held.select_related("shop").order_by("settlement_held_at", "pk"), HELD_PER_PAGE
        ).get_page(request.GET.get("p"))
        orders = list(page.object_list)
        stalls = {}
        for anomaly in ShipmentAnomaly.objects.filter(
            order_id__in=[order.pk for order in orders], kind=Kind.STALLED_10D
        ).order_by("-detected_at"):
            stalls.setdefault(anomaly.order_id, anomaly)
        rows = [
            {
                "order": order,
                "order_url": reverse("admin:intercepts_order_change", args=[order.pk]),
                "anomaly": stalls.get(order.pk),
                "anomaly_url": _change_url(stalls[order.pk]) if order.pk in stalls else "",
            }
            for order in orders
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Held settlements"),
            "shops": shops,
            "totals": {
                "count": sum(s["count"] for s in shops),
                "total_fen": sum(s["total_fen"] or 0 for s in shops),
            },
            "rows": rows,
            "page": page,
            "show_shop": access_for(request.user).sees_all_shops,
            "export_url": reverse("admin:intercepts_shipmentanomaly_held_export"),
        }
        return TemplateResponse(request, "admin/intercepts/shipmentanomaly/held.html", context)

    def held_export_view(self, request):
        """Every held order the page covers, as CSV for Excel (a byte-order mark for the
        Chinese, amounts in yuan without separators, times in the platform's zone)."""
        held = (
            self._held_orders(request)
            .select_related("shop")
            .annotate(
                stall_id=Subquery(
                    ShipmentAnomaly.objects.filter(order_id=OuterRef("pk"), kind=Kind.STALLED_10D)
                    .order_by("-detected_at")
                    .values("pk")[:1]
                )
            )
            .order_by("settlement_held_at", "pk")
        )
        titles = [
            _("Order number"),
            _("Shop"),
            _("Order total (yuan)"),
            _("Held since"),
            _("Anomaly"),
        ]

        def lines():
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(titles)
            yield "\ufeff" + buffer.getvalue()
            for order in held.iterator(chunk_size=1000):
                buffer.seek(0)
                buffer.truncate()
                writer.writerow(
                    [
                        order.order_no,
                        order.shop.name,
                        format_fen(order.total_fen).replace(",", ""),
                        timezone.localtime(order.settlement_held_at).strftime("%Y-%m-%d %H:%M"),
                        f"#{order.stall_id}" if order.stall_id else "",
                    ]
                )
                yield buffer.getvalue()

        response = StreamingHttpResponse(
            (line.encode() for line in lines()), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(
            True, f"{_('held-settlements')}-{timezone.localdate():%Y%m%d}.csv"
        )
        return response

    # --- Columns and fields ---

    @display(description=gettext_lazy("no."))
    def number(self, obj: ShipmentAnomaly) -> str:
        return f"#{obj.pk}"

    @display(description=gettext_lazy("status"))
    def state(self, obj: ShipmentAnomaly) -> str:
        colours = STATUS_COLOURS.get(obj.status, "bg-base-100 text-base-700")
        return format_html(
            '<span class="anomaly-status inline-block font-semibold h-6 leading-6 px-2 '
            'rounded-default text-[11px] whitespace-nowrap {}" data-status="{}">{}</span>',
            colours,
            obj.status,
            obj.get_status_display(),
        )

    @display(description=gettext_lazy("days since detected"))
    def age(self, obj: ShipmentAnomaly) -> int:
        return days_since(obj)

    @display(description=gettext_lazy("courier"))
    def courier_name(self, obj: ShipmentAnomaly) -> str:
        return obj.parcel.courier.display_name

    @display(description=gettext_lazy("order number"))
    def order_no(self, obj: ShipmentAnomaly) -> str:
        return format_html('<span class="font-mono">{}</span>', obj.order.order_no)

    @display(description=gettext_lazy("waybill number"))
    def waybill(self, obj: ShipmentAnomaly) -> str:
        return format_html('<span class="font-mono">{}</span>', obj.parcel.waybill_no)

    @display(description=gettext_lazy("order"))
    def order_link(self, obj: ShipmentAnomaly) -> str:
        return format_html(
            '<a id="order-link" class="text-primary-600 font-medium font-mono" href="{}">{}</a>',
            reverse("admin:intercepts_order_change", args=[obj.order_id]),
            obj.order.order_no,
        )

    @display(description=gettext_lazy("parcel"))
    def parcel_label(self, obj: ShipmentAnomaly) -> str:
        parcel = obj.parcel
        return format_html(
            '{} <span class="font-mono">{}</span> · {}',
            parcel.courier.display_name,
            parcel.waybill_no,
            parcel.get_stage_display(),
        )

    @display(description=gettext_lazy("settlement"))
    def settlement(self, obj: ShipmentAnomaly) -> str:
        held_at = obj.order.settlement_held_at
        if held_at is None:
            return _("Not held")
        return _("Held since %(moment)s") % {
            "moment": timezone.localtime(held_at).strftime("%Y-%m-%d %H:%M")
        }


def evidence_url(anomaly_id: int, evidence_id: int) -> str:
    return reverse("admin:intercepts_shipmentanomaly_evidence", args=[anomaly_id, evidence_id])
