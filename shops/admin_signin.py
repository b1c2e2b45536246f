"""Sign-in records (django-axes) in the workbench: platform staff read them, nobody edits them.

A locked or failed sign-in leaves a line here: the current counts per user and address
(``AccessAttempt``), every failed try (``AccessFailureLog``) and every sign-in and sign-out
(``AccessLog``).
"""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from unfold.admin import ModelAdmin
from unfold.decorators import display

from shops import two_factor
from shops.scoped_admin import LazyChangeList, StrictLookupsMixin, is_platform_staff

# The two-step sign-in pages, in the workbench's URLs (Unfold's site adds ``extra_urls``).
admin.site.extra_urls = two_factor.urls


class SigninRecordAdmin(StrictLookupsMixin, ModelAdmin):
    """Read-only for platform staff (customer service, finance) and superusers."""

    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time", "-id")
    actions = None

    def get_changelist(self, request, **kwargs):
        return LazyChangeList

    def has_module_permission(self, request):
        return is_platform_staff(request)

    def has_view_permission(self, request, obj=None):
        return is_platform_staff(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessAttempt)
class AccessAttemptAdmin(SigninRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "locked")
    readonly_fields = (
        "attempt_time",
        "username",
        "ip_address",
        "user_agent",
        "path_info",
        "failures_since_start",
    )
    fields = readonly_fields

    @display(description=_("locked"), boolean=True)
    def locked(self, obj: AccessAttempt) -> bool:
        return obj.failures_since_start >= settings.AXES_FAILURE_LIMIT


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(SigninRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "path_info", "locked_out")
    list_filter = ("locked_out",)
    readonly_fields = (
        "attempt_time",
        "username",
        "ip_address",
        "user_agent",
        "path_info",
        "locked_out",
    )
    fields = readonly_fields


@admin.register(AccessLog)
class AccessLogAdmin(SigninRecordAdmin):
    list_display = ("attempt_time", "logout_time", "username", "ip_address")
    readonly_fields = (
        "attempt_time",
        "logout_time",
        "username",
        "ip_address",
        "user_agent",
        "path_info",
    )
    fields = readonly_fields


class AuthenticatorAdmin(ModelAdmin):
    """Superusers remove a user's lost authenticator (the user then enrols again); the keys are
    never shown. Django's model permissions are not consulted: nobody else sees these."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    search_fields = ("user__username",)
    sortable_by = ()
    show_full_result_count = False
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    list_select_related = ("user",)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, AuthenticatorAdmin)
