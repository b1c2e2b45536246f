"""Finance exports in the workbench: a form that streams CSV or queues an Excel workbook, and
the list of workbooks with their progress and download links. Platform finance only.

The billing pages that merchants see too live in ``billing.admin.wallets``, beside the shop
scoping they need; this one is for platform finance alone and needs none.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import UnfoldAdminDateWidget, UnfoldAdminSelectWidget

from billing import exports
from billing.admin.finance_only import FinanceOnlyMixin
from billing.exports import ExportSpec
from billing.models import Export
from billing.services import BillingError
from couriers.models import Courier
from shops.models import Shop


class ExportForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Content"), choices=Export.Kind.choices, widget=UnfoldAdminSelectWidget
    )
    date_from = forms.DateField(label=_("From"), widget=UnfoldAdminDateWidget)
    date_to = forms.DateField(label=_("To (included)"), widget=UnfoldAdminDateWidget)
    # Searched as typed (the shops' own admin answers), not a list of every shop on the platform.
    shop = forms.ModelChoiceField(
        label=_("Shop (all when empty)"),
        queryset=None,
        required=False,
        widget=AutocompleteSelect(
            Export._meta.get_field("shop"),
            admin.site,
            attrs={"class": "unfold-admin-autocomplete", "data-theme": "admin-autocomplete"},
        ),
    )
    courier = forms.ModelChoiceField(
        label=_("Courier"),
        queryset=Courier.objects.order_by("sort_order", "code"),
        required=False,
        empty_label=_("All couriers"),
        widget=UnfoldAdminSelectWidget,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["shop"].queryset = Shop.objects.order_by("name")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        spec = ExportSpec(
            kind=cleaned["kind"],
            date_from=cleaned["date_from"],
            date_to=cleaned["date_to"],
            shop_id=cleaned["shop"].pk if cleaned.get("shop") else None,
            courier_id=cleaned["courier"].pk if cleaned.get("courier") else None,
        )
        try:
            cleaned["spec"] = exports.spec_check(spec)
        except BillingError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(Export)
class ExportAdmin(FinanceOnlyMixin, ModelAdmin):
    # Finance only, and nothing is added or changed here except through the form's services.
    list_display = (
        "kind",
        "period",
        "shop",
        "courier",
        "state",
        "progress",
        "requested_by",
        "created_at",
        "download",
    )
    list_select_related = ("shop", "courier", "requested_by")
    list_display_links = None
    list_before_template = "admin/billing/export/form.html"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(self.run_view), name="billing_export_run"),
            path("<int:pk>/download/", wrap(self.download_view), name="billing_export_download"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        today = timezone.localdate()
        form = ExportForm(initial={"date_from": today.replace(day=1), "date_to": today})
        return super().changelist_view(request, self._context(form, extra_context))

    def _context(self, form, extra_context=None) -> dict:
        busy = Export.objects.filter(status__in=[Export.Status.QUEUED, Export.Status.RUNNING])
        return {
            **(extra_context or {}),
            "export_form": form,
            "run_url": reverse("admin:billing_export_run"),
            # While a workbook is being built the page refreshes itself to show its progress.
            "refresh_seconds": 3 if busy.exists() else None,
        }

    def run_view(self, request):
        if not self._finance(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:billing_export_changelist"))
        form = ExportForm(request.POST)
        if not form.is_valid():
            # The list again, with the form's errors in place.
            return self.changelist_view_with_form(request, form)
        spec = form.cleaned_data["spec"]
        if request.POST.get("format") == "xlsx":
            exports.export_request(actor=request.user, spec=spec)
            messages.success(
                request, _("The workbook is being built; it appears below when it is ready.")
            )
            return HttpResponseRedirect(reverse("admin:billing_export_changelist"))
        response = StreamingHttpResponse(
            exports.csv_chunks(spec), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(
            True, exports.filename(spec, "csv")
        )
        return response

    def changelist_view_with_form(self, request, form):
        response = super().changelist_view(request, self._context(form))
        if isinstance(response, TemplateResponse):
            response.status_code = 400
        return response

    def download_view(self, request, pk: int):
        if not self._finance(request):
            raise PermissionDenied
        export = get_object_or_404(Export, pk=pk)
        if export.status != Export.Status.DONE or not export.file:
            raise Http404
        return FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=export.file.name.rsplit("/", 1)[-1],
        )

    @display(description=_("period"))
    def period(self, obj: Export) -> str:
        return f"{obj.date_from:%Y-%m-%d} – {obj.date_to:%Y-%m-%d}"

    @display(
        description=_("status"),
        label={
            Export.Status.QUEUED: "info",
            Export.Status.RUNNING: "warning",
            Export.Status.DONE: "success",
            Export.Status.FAILED: "danger",
        },
    )
    def state(self, obj: Export):
        return obj.status, obj.get_status_display()

    @display(description=_("progress"))
    def progress(self, obj: Export) -> str:
        if obj.rows_total is None:
            return "—"
        if not obj.rows_total:
            return "0 / 0"
        percent = obj.rows_done * 100 // obj.rows_total
        return f"{obj.rows_done:,} / {obj.rows_total:,} ({percent}%)"

    @display(description=_("file"))
    def download(self, obj: Export) -> str:
        if obj.status == Export.Status.DONE and obj.file:
            return format_html(
                '<a class="text-primary-600 font-medium" href="{}">{}</a>',
                reverse("admin:billing_export_download", args=[obj.pk]),
                _("Download"),
            )
        if obj.status == Export.Status.FAILED:
            return obj.error
        return "—"
