"""Finance's page of claim payouts by courier and month, and its CSV. Platform finance only
(and superusers), as the finance exports are: customer service records the courier's decision,
finance pays and accounts for it.

The page is the admin of ``ClaimPayout`` (a proxy of ``Claim`` with no table), so that it sits in
the sidebar and answers permission checks the way every workbench page does. It has no list, add
or change views: only the report and its export.
"""

from datetime import date

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from billing.admin.finance_only import FinanceOnlyMixin
from claims import exports, selectors
from claims.models import Claim, ClaimPayout
from claims.selectors import PayoutPeriod
from couriers.models import Courier
from shops.models import Shop

# The longest period the page covers; the default is the last twelve months.
MAX_MONTHS = 24
DEFAULT_MONTHS = 12


class MonthInput(UnfoldAdminTextInputWidget):
    """A month picker where the browser has one (``<input type="month">``), "2026-03" typed
    where it has not."""

    input_type = "month"

    def format_value(self, value):
        if isinstance(value, date):
            return f"{value:%Y-%m}"
        return super().format_value(value)


class MonthField(forms.DateField):
    """A month, read as the first day of it."""

    widget = MonthInput
    input_formats = ["%Y-%m"]
    default_error_messages = {"invalid": _("Enter a month, for example 2026-03.")}


class PayoutFilterForm(forms.Form):
    month_from = MonthField(label=_("From month"))
    month_to = MonthField(label=_("To month (included)"))
    courier = forms.ModelChoiceField(
        label=_("Courier"),
        queryset=Courier.objects.order_by("sort_order", "code"),
        required=False,
        empty_label=_("All couriers"),
        widget=UnfoldAdminSelectWidget,
    )
    # Searched as typed (the shops' own admin answers), as on the finance exports.
    shop = forms.ModelChoiceField(
        label=_("Shop (all when empty)"),
        queryset=Shop.objects.order_by("name"),
        required=False,
        widget=AutocompleteSelect(
            Claim._meta.get_field("shop"),
            admin.site,
            attrs={"class": "unfold-admin-autocomplete", "data-theme": "admin-autocomplete"},
        ),
    )

    @classmethod
    def defaults(cls) -> dict[str, str]:
        this_month = timezone.localdate().replace(day=1)
        first = selectors.add_months(this_month, -(DEFAULT_MONTHS - 1))
        return {"month_from": f"{first:%Y-%m}", "month_to": f"{this_month:%Y-%m}"}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        first, last = cleaned["month_from"], cleaned["month_to"]
        if last < first:
            raise forms.ValidationError(_("The period ends before it starts."))
        if selectors.months_between(first, last) > MAX_MONTHS:
            raise forms.ValidationError(
                _("The page covers at most %(months)s months; shorten the period.")
                % {"months": MAX_MONTHS}
            )
        cleaned["period"] = PayoutPeriod(
            month_from=first,
            month_to=last,
            courier_id=cleaned["courier"].pk if cleaned.get("courier") else None,
            shop_id=cleaned["shop"].pk if cleaned.get("shop") else None,
        )
        return cleaned


def _filter_form(request) -> PayoutFilterForm:
    # The filters live in the address, so that a period can be bookmarked and the CSV link
    # carries the same ones; an address without them shows the last twelve months.
    keys = ("month_from", "month_to", "courier", "shop")
    if any(key in request.GET for key in keys):
        return PayoutFilterForm(request.GET)
    return PayoutFilterForm(PayoutFilterForm.defaults())


@admin.register(ClaimPayout)
class ClaimPayoutAdmin(FinanceOnlyMixin, ModelAdmin):
    def get_urls(self):
        # Only the report and its export: the claims themselves have their own pages.
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="claims_claimpayout_changelist"),
            path("export/", wrap(self.export_view), name="claims_claimpayout_export"),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self._finance(request):
            raise PermissionDenied
        form = _filter_form(request)
        report = None
        if form.is_valid():
            report = selectors.payouts_by_courier_month(form.cleaned_data["period"])
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "opts": self.opts,
            "title": self.opts.verbose_name_plural,
            "form": form,
            "report": report,
            "export_url": reverse("admin:claims_claimpayout_export"),
            "page_url": reverse("admin:claims_claimpayout_changelist"),
            "time_zone": timezone.get_default_timezone_name(),
        }
        response = TemplateResponse(request, "admin/claims/claimpayout/report.html", context)
        if report is None:
            response.status_code = 400
        return response

    def export_view(self, request):
        if not self._finance(request):
            raise PermissionDenied
        form = _filter_form(request)
        if not form.is_valid():
            # The page again, with the filters' errors in place.
            return self.changelist_view(request)
        report = selectors.payouts_by_courier_month(form.cleaned_data["period"])
        shop = form.cleaned_data.get("shop")
        response = StreamingHttpResponse(
            exports.csv_chunks(report), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(
            True, exports.filename(report, shop.code if shop else "")
        )
        return response
