"""Forms of the claim pages: filing, finding the intercept to claim on, and the buttons on a
claim (appeal, evidence, the courier's decision, payment). They only clean input; the services
in ``claims.services`` decide."""

from django import forms
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from billing.money import YuanFormField
from claims import evidence
from claims.models import Claim
from intercepts.models import InterceptRequest

# What the file picker offers; the content is checked again whatever the browser sends.
ACCEPT = ",".join(evidence.ACCEPTED_TYPES)
FILE_INPUT_CLASSES = (
    "block w-full text-sm border border-base-200 rounded-default px-3 py-2 shadow-xs "
    "bg-white dark:bg-base-900 dark:border-base-700"
)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True
    template_name = "django/forms/widgets/file.html"


class EvidenceFilesField(forms.FileField):
    """Several photos or PDFs at once, as Django's uploaded files.

    No checks here: ``claims.evidence`` judges each file by its content when the service runs,
    with a message naming the file (an empty one included), and stores nothing on refusal."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ACCEPT, "class": FILE_INPUT_CLASSES})
        )
        super().__init__(**kwargs)

    def to_python(self, data):
        return data

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [upload for upload in files if upload]
        if self.required and not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


def _yuan_widget():
    return UnfoldAdminTextInputWidget(attrs={"inputmode": "decimal", "autocomplete": "off"})


def _note_widget(rows: int = 2):
    return UnfoldAdminTextareaWidget(attrs={"rows": rows})


def _evidence_help() -> str:
    return _(
        "Photos (JPEG, PNG, WebP) or PDFs, at most %(count)s files of %(size)s MB each. "
        "Several files can be chosen at once."
    ) % {"count": evidence.max_files(), "size": evidence.max_bytes() // (1024 * 1024)}


class FindInterceptForm(forms.Form):
    """The claims list's "file a claim": the parcel is found by its waybill or order number."""

    number = forms.CharField(
        label=_("Waybill or order number"),
        max_length=64,
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "off"}),
        help_text=_("The whole number of a parcel whose intercept succeeded."),
    )


class ClaimFileForm(forms.Form):
    """A claim on one intercepted parcel: what happened, how much, what shows it; customer
    service records an offline one with how the merchant reached them."""

    reason = forms.ChoiceField(
        label=_("What happened to the parcel"), widget=UnfoldAdminRadioSelectWidget
    )
    amount_claimed_fen = YuanFormField(
        label=_("Amount claimed (yuan)"), min_fen=0, widget=_yuan_widget()
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=2000,
        required=False,
        widget=_note_widget(3),
        help_text=_("What was lost or damaged, and anything the courier should know."),
    )
    files = EvidenceFilesField(label=_("Photos and PDFs"))
    contact_note = forms.CharField(
        label=_("How the merchant reached us"),
        max_length=255,
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("For example: phone call from the shop owner, 13800000000, 10:20."),
    )

    def __init__(self, *args, intercept: InterceptRequest, offline: bool, **kw):
        super().__init__(*args, **kw)
        self.offline = offline
        # "Never reached the new address" is for a change of address only.
        self.fields["reason"].choices = [
            (value, label)
            for value, label in Claim.Reason.choices
            if value != Claim.Reason.NOT_DELIVERED
            or intercept.action == InterceptRequest.Action.REDIRECT
        ]
        self.fields["files"].help_text = _evidence_help()
        if offline:
            self.fields["contact_note"].required = True
        else:
            del self.fields["contact_note"]


class AppealForm(forms.Form):
    note = forms.CharField(label=_("Why the rejection is wrong"), max_length=255)


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=255, required=False)


class EvidenceForm(forms.Form):
    files = EvidenceFilesField(label=_("Photos and PDFs"), required=True)


class ApproveForm(forms.Form):
    amount_fen = YuanFormField(label=_("Amount approved (yuan)"), min_fen=0)
    note = forms.CharField(label=_("Note"), max_length=255, required=False)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("The courier's reason"), max_length=255)


class PayForm(forms.Form):
    WALLET, OFFLINE = "wallet", "offline"
    payout = forms.ChoiceField(
        label=_("Paid how"),
        choices=((WALLET, _("Into the shop's wallet")), (OFFLINE, _("Paid outside the platform"))),
    )
    payment_reference = forms.CharField(label=_("Payment reference"), max_length=64, required=False)
