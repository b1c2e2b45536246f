"""The courier registry and the gateway accounts in the workbench.

Platform staff read them through the view permissions their groups hold (granted where the
groups are made, in ``shops``); superusers change them; nobody deletes them.
"""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from couriers.models import Courier, CourierAccount


class PlatformStaffReadMixin:
    """Django's model permissions decide; deleting is never offered (rows are referred to)."""

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Courier)
class CourierAdmin(PlatformStaffReadMixin, ModelAdmin):
    list_display = (
        "code",
        "name_zh",
        "name_en",
        "service_phone",
        "waybill_pattern",
        "account",
        "is_active",
    )
    list_select_related = ("account",)
    ordering = ("sort_order", "code")
    search_fields = ("code", "name_zh", "name_en")


class CourierAccountForm(forms.ModelForm):
    """Secrets can be typed in but are never shown again; a blank field keeps the saved one."""

    class Meta:
        model = CourierAccount
        fields = (
            "name",
            "protocol",
            "base_url",
            "customer",
            "partner_id",
            "ebusiness_id",
            *CourierAccount.SECRET_FIELDS,
            "callback_url",
            "requests_per_second",
            "batch_size",
            "is_active",
        )
        widgets = {
            name: forms.PasswordInput(render_value=False) for name in CourierAccount.SECRET_FIELDS
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in CourierAccount.SECRET_FIELDS:
            if name not in self.fields:  # a reader's form shows no secret fields at all
                continue
            saved = bool(getattr(self.instance, name, ""))
            self.fields[name].help_text = (
                _("Saved. Leave blank to keep it; type a new value to replace it.")
                if saved
                else _("Not set.")
            )

    def clean(self):
        cleaned = super().clean()
        # The instance still holds the saved values here: the form's input is copied onto it
        # only after clean(), from cleaned_data.
        for name in CourierAccount.SECRET_FIELDS:
            if name in self.fields and not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(CourierAccount)
class CourierAccountAdmin(PlatformStaffReadMixin, ModelAdmin):
    form = CourierAccountForm
    list_display = (
        "name",
        "protocol",
        "base_url",
        "requests_per_second",
        "batch_size",
        "is_active",
    )
    ordering = ("name",)

    def lookup_allowed(self, lookup, value, request):
        # The list has no filters; a URL lookup such as secret__startswith would let a reader
        # probe a secret one character at a time.
        return False

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return self.form.Meta.fields
        # Readers see which secrets are set, never their values.
        public = [f for f in self.form.Meta.fields if f not in CourierAccount.SECRET_FIELDS]
        return [*public, "secrets_set"]

    def get_readonly_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return ()
        return self.get_fields(request, obj)

    @display(description=_("secrets set"))
    def secrets_set(self, obj: CourierAccount) -> str:
        names = [
            str(obj._meta.get_field(name).verbose_name)
            for name in obj.SECRET_FIELDS
            if getattr(obj, name)
        ]
        return "、".join(names) or "-"
