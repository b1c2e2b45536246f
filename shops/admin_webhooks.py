"""The shop's webhooks in the workbench: endpoints (the owner registers, rotates and deletes
them; a secret is shown once), and deliveries with every attempt, which the shop's staff read
and the owner or an agent sends again."""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display

from shops import webhooks
from shops.access import access_for
from shops.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shops.scoped_admin import (
    AGENT,
    MERCHANT_ALL,
    NOBODY,
    OWNER,
    PLATFORM_ALL,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
)

SECRET_TEMPLATE = "admin/shops/webhookendpoint/secret.html"
CONFIRM_TEMPLATE = "admin/shops/webhookendpoint/confirm.html"


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ("shop", "url", "description", "is_active")

    def clean_url(self):
        try:
            return webhooks.validate_endpoint_url(self.cleaned_data["url"])
        except ValidationError as exc:
            # The service names the field; a field's own clean raises just the messages.
            raise ValidationError(exc.messages) from exc

    def clean(self):
        cleaned = super().clean()
        # A reloaded confirmation page posts again: one URL is registered once per shop.
        shop, url = cleaned.get("shop"), cleaned.get("url")
        if self.instance.pk is None and shop and url and webhooks.endpoint_registered(shop, url):
            self.add_error("url", webhooks.duplicate_endpoint_message())
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": frozenset({OWNER}),
        "change": frozenset({OWNER}),
        "delete": frozenset({OWNER}),
    }
    form = WebhookEndpointForm
    list_display = ("url", "shop", "description", "is_active", "secret_rotated_at", "created_at")
    list_select_related = ("shop",)
    list_filter = ("is_active", PlatformShopFilter)
    list_filter_submit = True  # the shop filter is typed
    ordering = ("-id",)
    autocomplete_fields = ("shop",)
    actions_detail = ("rotate_secret",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("shop", "url", "description", "is_active")
        return (
            "shop",
            "url",
            "description",
            "is_active",
            "created_by",
            "created_at",
            "secret_rotated_at",
            "previous_secret_expires_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        readonly = [
            "shop",
            "created_by",
            "created_at",
            "secret_rotated_at",
            "previous_secret_expires_at",
        ]
        if not self.has_change_permission(request, obj):
            readonly += ["url", "description", "is_active"]
        return readonly

    def save_checked(self, request, obj, form, change):
        if change:
            webhooks.webhook_endpoint_update(actor=request.user, endpoint=obj)
            return
        endpoint, secret = webhooks.webhook_endpoint_create(
            actor=request.user,
            shop=obj.shop,
            url=obj.url,
            description=obj.description,
            is_active=obj.is_active,
        )
        obj.pk = endpoint.pk
        # Shown on the page that answers this request, and nowhere after it.
        request._webhook_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_webhook_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, obj, secret, rotated=False)

    def delete_model(self, request, obj):
        webhooks.webhook_endpoint_delete(actor=request.user, endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhooks.webhook_endpoint_delete(actor=request.user, endpoint=endpoint)

    def has_rotate_secret_permission(self, request, object_id=None):
        obj = self.get_object(request, object_id) if object_id else None
        return self._allowed("change", request, obj)

    @action(
        description=_("Rotate the signing secret"),
        url_path="rotate-secret",
        permissions=["rotate_secret"],
    )
    def rotate_secret(self, request, object_id):
        endpoint = self.get_object(request, object_id)  # another shop's: 404
        back_url = reverse("admin:shops_webhookendpoint_change", args=[endpoint.pk])
        if request.method == "POST":
            secret = webhooks.webhook_endpoint_rotate_secret(actor=request.user, endpoint=endpoint)
            return self._secret_page(request, endpoint, secret, rotated=True)
        hours = settings.WEBHOOK_SECRET_OVERLAP_S // 3600
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": endpoint,
            "title": _("Rotate the signing secret of %(url)s") % {"url": endpoint.url},
            "intro": _(
                "A new secret is made and shown once. For the next %(hours)s hours every "
                "delivery carries signatures with both the new and the current secret, so your "
                "receiver can switch to the new one without missing a delivery."
            )
            % {"hours": hours},
            "submit_label": _("Rotate the signing secret"),
            "back_url": back_url,
            "back_label": _("Back to the endpoint"),
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)

    def _secret_page(self, request, endpoint, secret, *, rotated: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": endpoint,
            "title": _("The signing secret of %(url)s") % {"url": endpoint.url},
            "secret": secret,
            "rotated": rotated,
            "back_url": reverse("admin:shops_webhookendpoint_change", args=[endpoint.pk]),
        }
        response = TemplateResponse(request, SECRET_TEMPLATE, context)
        # A page with a secret is never kept by a browser or a proxy.
        response["Cache-Control"] = "no-store"
        return response


class WebhookAttemptInline(ScopedTabularInline):
    model = WebhookAttempt
    fields = (
        "number",
        "started_at",
        "status_code",
        "latency_ms",
        "response_excerpt",
        "error",
    )
    readonly_fields = fields
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}
    ordering = ("number",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "created_at",
        "shop",
        "event_type",
        "object_key",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
    )
    list_select_related = ("shop", "endpoint")
    list_filter = ("status", "event_type", PlatformShopFilter)
    list_filter_submit = True
    ordering = ("-id",)
    inlines = (WebhookAttemptInline,)
    actions = ("send_again",)
    fields = (
        "shop",
        "endpoint",
        "event_id",
        "event_type",
        "object_key",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "give_up_at",
        "delivered_at",
        "pretty_body",
    )
    readonly_fields = fields

    @display(description=_("body"))
    def pretty_body(self, obj: WebhookDelivery):
        try:
            text = json.dumps(json.loads(obj.body), ensure_ascii=False, indent=2)
        except ValueError:
            text = obj.body
        return format_html('<pre class="whitespace-pre-wrap text-xs">{}</pre>', text)

    def has_send_again_permission(self, request, obj=None):
        access = access_for(request.user)
        return access.is_superuser or bool(access.roles() & {OWNER, AGENT})

    @admin.action(description=_("Send again"), permissions=["send_again"])
    def send_again(self, request, queryset):
        sent = refused = 0
        for delivery in queryset:
            try:
                requeued = webhooks.webhook_delivery_send_again(
                    actor=request.user, delivery=delivery
                )
            except PermissionDenied:
                refused += 1
                continue
            sent += requeued
        if sent:
            self.message_user(
                request, gettext("Deliveries to be sent again: %(count)d.") % {"count": sent}
            )
        if refused:
            self.message_user(
                request,
                _("Only the shop owner or an after-sales agent sends a delivery again."),
                level=messages.WARNING,
            )
        return redirect(request.get_full_path())
