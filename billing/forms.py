"""Forms of the wallet and invoice pages: top-up, adjustment, payment password, invoice request
and finance's decision. They only clean input; the services decide."""

from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminPasswordWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
)

from billing.money import YuanFormField, format_fen
from billing.services import MAX_AMOUNT_FEN, PIN_LENGTH
from billing.validators import validate_uscc
from couriers.models import Courier


class _DateInput(UnfoldAdminTextInputWidget):
    """The browser's own date picker, in the workbench's style."""

    input_type = "date"


def _yuan_widget():
    return UnfoldAdminTextInputWidget(attrs={"inputmode": "decimal", "autocomplete": "off"})


class TopUpForm(forms.Form):
    amount_fen = YuanFormField(
        label=_("Amount (yuan)"), min_fen=1, max_fen=MAX_AMOUNT_FEN, widget=_yuan_widget()
    )
    external_reference = forms.CharField(
        label=_("External reference"),
        max_length=100,
        help_text=_(
            "The bank's or payment channel's serial number; each one applies once, in any "
            "letter case."
        ),
        widget=UnfoldAdminTextInputWidget,
    )
    note = forms.CharField(
        label=_("Note"), max_length=255, required=False, widget=UnfoldAdminTextInputWidget
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount_fen"].help_text = _(
            "Above %(yuan)s yuan, another finance user must approve it."
        ) % {"yuan": format_fen(settings.BILLING_TOP_UP_APPROVAL_FEN)}


class AdjustmentForm(forms.Form):
    amount_fen = YuanFormField(
        label=_("Amount (yuan)"),
        min_fen=-MAX_AMOUNT_FEN,
        max_fen=MAX_AMOUNT_FEN,
        help_text=_(
            "Positive adds to the available balance, negative takes from it. Above 10,000 yuan "
            "either way, another finance user must approve it."
        ),
        widget=_yuan_widget(),
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=UnfoldAdminTextInputWidget)

    def clean_amount_fen(self):
        amount = self.cleaned_data["amount_fen"]
        if amount == 0:
            raise forms.ValidationError(_("The adjustment must be a non-zero amount."))
        return amount


def _pin_field(label):
    return forms.CharField(
        label=label,
        min_length=PIN_LENGTH,
        max_length=PIN_LENGTH,
        strip=True,
        widget=UnfoldAdminPasswordWidget(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": r"\d{6}"}
        ),
    )


class PinSetForm(forms.Form):
    pin = _pin_field(_("New payment password (6 digits)"))
    pin_again = _pin_field(_("New payment password again"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("pin") and cleaned.get("pin") != cleaned.get("pin_again"):
            self.add_error("pin_again", _("The two payment passwords differ."))
        return cleaned


class PinResetForm(PinSetForm):
    login_password = forms.CharField(
        label=_("Your login password"),
        strip=False,
        widget=UnfoldAdminPasswordWidget(attrs={"autocomplete": "current-password"}),
    )

    field_order = ("login_password", "pin", "pin_again")


class InvoiceRequestForm(forms.Form):
    invoice_type = forms.ChoiceField(
        label=_("Invoice type"), choices=(), widget=UnfoldAdminSelectWidget
    )
    title = forms.CharField(
        label=_("Invoice title"), max_length=100, widget=UnfoldAdminTextInputWidget
    )
    taxpayer_id = forms.CharField(
        label=_("Unified social credit code"),
        max_length=40,
        validators=[validate_uscc],
        widget=UnfoldAdminTextInputWidget,
    )
    address_phone = forms.CharField(
        label=_("Address and phone (special invoices)"),
        max_length=200,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )
    bank_account = forms.CharField(
        label=_("Bank and account number (special invoices)"),
        max_length=200,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )

    courier = forms.ModelChoiceField(
        label=_("Courier (all when empty)"),
        queryset=Courier.objects.none(),
        required=False,
        empty_label=_("All couriers"),
        widget=UnfoldAdminSelectWidget,
    )
    charged_from = forms.DateField(
        label=_("Fees charged from (date)"), required=False, widget=_DateInput
    )
    charged_until = forms.DateField(
        label=_("Fees charged until (date, included)"),
        required=False,
        widget=_DateInput,
    )

    def __init__(self, *args, **kwargs):
        from billing.models import InvoiceRequest

        super().__init__(*args, **kwargs)
        self.fields["invoice_type"].choices = InvoiceRequest.Type.choices
        self.fields["courier"].queryset = Courier.objects.order_by("sort_order", "code")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("charged_from"), cleaned.get("charged_until")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        # Whole local days: from the first day's midnight to the midnight after the last.
        if start:
            cleaned["charged_from"] = _local_midnight(start)
        if end:
            cleaned["charged_until"] = _local_midnight(end + timedelta(days=1))
        return cleaned


def _local_midnight(day):
    return timezone.make_aware(datetime.combine(day, time.min))


class InvoiceDecisionForm(forms.Form):
    ISSUE, REJECT, REVERSE = "issue", "reject", "reverse"

    decision = forms.ChoiceField(label=_("Decision"), choices=(), widget=UnfoldAdminSelectWidget)
    invoice_number = forms.CharField(
        label=_("Invoice number (when issuing)"),
        max_length=32,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )
    note = forms.CharField(
        label=_("Reason (when rejecting or reversing)"),
        max_length=255,
        required=False,
        widget=UnfoldAdminTextInputWidget,
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decision"].choices = choices
