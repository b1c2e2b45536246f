"""Shops, their members and e-waybill accounts, and the platform's users and groups, in the
workbench."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from shops import (
    admin_signin,  # noqa: F401  (registers the sign-in records)
    admin_webhooks,  # noqa: F401  (registers the webhook endpoints and deliveries)
    services,
)
from shops.access import access_for
from shops.api_keys import api_key_create, api_key_revoke, duplicate_key_message, live_key_named
from shops.models import ApiKey, EwaybillAccount, Shop, ShopMembership
from shops.scoped_admin import (
    MERCHANT_ALL,
    NOBODY,
    OWNER,
    PLATFORM_ALL,
    PLATFORM_CS,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopScopedAdmin,
)


class MembershipInline(ScopedTabularInline):
    model = ShopMembership
    parent_shop_path = "pk"
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class EwaybillAccountInline(ScopedTabularInline):
    """The shop's e-waybill accounts, as the platform granted them (read-only here)."""

    model = EwaybillAccount
    parent_shop_path = "pk"
    fields = ("courier", "account_no", "granted_by", "granted_at")
    readonly_fields = fields
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("courier", "granted_by")


@admin.register(EwaybillAccount)
class EwaybillAccountAdmin(ShopScopedAdmin):
    """E-waybill accounts are granted and revoked by platform customer service: the courier
    takes an intercept only from the account that issued the waybill."""

    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": frozenset({PLATFORM_CS}),
        "change": NOBODY,
        "delete": frozenset({PLATFORM_CS}),
    }
    list_display = ("shop", "courier", "account_no", "granted_by", "granted_at")
    list_select_related = ("shop", "courier", "granted_by")
    list_filter = ("courier", PlatformShopFilter)
    list_filter_submit = True  # the shop filter is typed
    ordering = ("-id",)
    autocomplete_fields = ("shop",)
    fields = ("shop", "courier", "account_no")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("shop", "courier", "account_no", "granted_by", "granted_at")
        return ()

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ("shop", "courier", "account_no", "granted_by", "granted_at")
        return self.fields

    def save_checked(self, request, obj, form, change):
        try:
            created = services.ewaybill_account_grant(
                actor=request.user,
                shop=obj.shop,
                courier=obj.courier,
                account_no=obj.account_no,
            )
        except ValidationError as exc:
            raise PermissionDenied(" ".join(exc.messages)) from exc
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.ewaybill_account_revoke(actor=request.user, account=obj)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            services.ewaybill_account_revoke(actor=request.user, account=account)


class ApiKeyForm(forms.ModelForm):
    allowed_ips = forms.CharField(
        label=_("allowed addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One address or network (CIDR) per line; empty for any."),
    )

    class Meta:
        model = ApiKey
        fields = ("shop", "name", "allowed_ips", "expires_at")

    def clean_allowed_ips(self):
        return self.cleaned_data["allowed_ips"].split()

    def clean(self):
        cleaned = super().clean()
        # A reloaded "new key" page posts again: a live key's name is not taken twice.
        shop, name = cleaned.get("shop"), (cleaned.get("name") or "").strip()
        if shop and name and live_key_named(shop, name):
            self.add_error("name", duplicate_key_message())
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(ShopScopedAdmin):
    """The shop's keys for its ERP: made and revoked by the owner, the key shown once."""

    form = ApiKeyForm
    role_permissions = {
        "view": frozenset({OWNER}) | PLATFORM_ALL,
        "add": frozenset({OWNER}),
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = ("name", "shop", "prefix", "state", "last_used_at", "expires_at", "created_at")
    list_select_related = ("shop",)
    list_filter = (PlatformShopFilter,)
    list_filter_submit = True
    ordering = ("-id",)
    actions = ("revoke",)
    readonly_fields = (
        "shop",
        "name",
        "prefix",
        "allowed_ips",
        "expires_at",
        "last_used_at",
        "created_by",
        "created_at",
        "revoked_at",
        "revoked_by",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("shop", "name", "allowed_ips", "expires_at")
        return self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "shop":
            # Only the shops this user owns: the service refuses any other.
            owned = [
                shop_id
                for shop_id, role in access_for(request.user).shop_roles.items()
                if role == OWNER
            ]
            field.queryset = field.queryset.filter(pk__in=owned)
        return field

    @display(description=_("status"), label=True)
    def state(self, obj):
        if obj.revoked_at is not None:
            return _("Revoked")
        return _("Active") if obj.is_active else _("Expired")

    def save_checked(self, request, obj, form, change):
        try:
            key, raw = api_key_create(
                actor=request.user,
                shop=obj.shop,
                name=obj.name,
                allowed_ips=obj.allowed_ips,
                expires_at=obj.expires_at,
            )
        except ValidationError as exc:
            raise PermissionDenied(" ".join(exc.messages)) from exc
        obj.pk = key.pk
        # Shown once, on the page the save answers with (never in a message, which would
        # travel in a cookie or the session): only its hash is kept.
        request._api_key_raw = raw

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "title": _("The new API key “%(name)s”") % {"name": obj.name},
            "raw_key": request._api_key_raw,
            "back_url": reverse("admin:shops_apikey_changelist"),
        }
        response = TemplateResponse(request, "admin/shops/apikey/created.html", context)
        # A page with a key on it is never kept by a browser or a proxy.
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Revoke the selected keys"), permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            try:
                api_key_revoke(actor=request.user, key=key)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            revoked += 1
        self.message_user(request, _("%(count)d keys revoked.") % {"count": revoked})

    def has_revoke_permission(self, request):
        return self._allowed("add", request)


@admin.register(Shop)
class ShopAdmin(ShopScopedAdmin):
    change_form_before_template = "admin/shops/shop/agreement_link.html"
    shop_path = "pk"
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": frozenset({OWNER}),
        "delete": NOBODY,
    }
    list_display = ("name", "code", "status", "is_cross_border", "agreement_signed")
    list_filter = ("status", "is_cross_border")
    search_fields = ("name", "code")
    ordering = ("name",)
    inlines = (MembershipInline, EwaybillAccountInline)
    readonly_fields = (
        "name",
        "code",
        "status",
        "is_cross_border",
        "intercept_agreement_version",
        "intercept_agreement_signed_at",
        "intercept_agreement_signed_by",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "code", "status", "is_cross_border")}),
        (_("Return address"), {"fields": ("return_contact", "return_phone", "return_address")}),
        (
            _("Intercept agreement"),
            {
                "fields": (
                    "intercept_agreement_version",
                    "intercept_agreement_signed_at",
                    "intercept_agreement_signed_by",
                )
            },
        ),
        (
            _("Policy"),
            {
                "fields": (
                    "auto_intercept_enabled",
                    "auto_intercept_daily_cap",
                    "auto_complete_refund",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        if access_for(request.user).is_superuser:
            # Status changes will go through their own service, with history.
            return (
                "status",
                "intercept_agreement_signed_at",
                "intercept_agreement_signed_by",
                "created_at",
            )
        return self.readonly_fields

    @display(description=_("agreement signed"), boolean=True)
    def agreement_signed(self, obj: Shop) -> bool:
        return obj.intercept_agreement_signed_at is not None

    def save_checked(self, request, obj, form, change):
        services.shop_save_settings(actor=request.user, shop=obj)


class SuperuserOnlyMixin:
    """Accounts and groups are managed by superusers only.

    Answering from the cached access also spares every page the two permission queries Django's
    default module check would make for the sidebar.
    """

    def _superuser(self, request) -> bool:
        return request.user.is_active and access_for(request.user).is_superuser

    def has_module_permission(self, request):
        return self._superuser(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request)

    def has_add_permission(self, request, *args):
        return self._superuser(request)

    def has_change_permission(self, request, obj=None):
        return self._superuser(request)

    def has_delete_permission(self, request, obj=None):
        return self._superuser(request)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(SuperuserOnlyMixin, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class GroupAdmin(SuperuserOnlyMixin, BaseGroupAdmin, ModelAdmin):
    pass
