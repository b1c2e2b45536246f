"""Shops (the tenants), their members and platform groups, and their e-waybill accounts.

Everything a shop owns elsewhere (wallets, orders, parcels, claims) points here; this app
imports only from ``couriers`` below it. The shop's outbound webhooks live here too: every app
above emits them (``shops.webhooks``), so their records sit in the lowest app that knows a shop.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from couriers.models import Courier

PLATFORM_CS = "platform_cs"
PLATFORM_FINANCE = "platform_finance"
PLATFORM_GROUPS = (PLATFORM_CS, PLATFORM_FINANCE)


class Shop(models.Model):
    class Status(models.TextChoices):
        NORMAL = "normal", _("Operating normally")
        RESTRICTED = "restricted", _("Restricted")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=100)
    code = models.SlugField(_("shop code"), max_length=32, unique=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NORMAL
    )
    is_cross_border = models.BooleanField(_("cross-border shop"), default=False)
    return_contact = models.CharField(_("return contact"), max_length=50, blank=True)
    return_phone = models.CharField(_("return phone"), max_length=20, blank=True)
    return_address = models.CharField(_("return address"), max_length=255, blank=True)
    intercept_agreement_version = models.CharField(
        _("intercept agreement version"), max_length=16, blank=True
    )
    intercept_agreement_signed_at = models.DateTimeField(
        _("intercept agreement signed at"), null=True, blank=True
    )
    intercept_agreement_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("intercept agreement signed by"),
    )
    auto_intercept_enabled = models.BooleanField(_("automatic intercept"), default=False)
    auto_intercept_daily_cap = models.PositiveIntegerField(
        _("automatic intercepts per day"), default=0
    )
    auto_complete_refund = models.BooleanField(
        _("approve refund after a successful intercept"), default=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ShopMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Shop owner")
        AGENT = "agent", _("After-sales agent")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="shop_memberships",
        verbose_name=_("user"),
    )
    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("shop")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("shop member")
        verbose_name_plural = _("shop members")
        constraints = [
            models.UniqueConstraint(fields=("user", "shop"), name="membership_user_shop_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.shop} ({self.get_role_display()})"


class EwaybillAccount(models.Model):
    """A shop's e-waybill account with a courier (its monthly card or partner id).

    The courier issues a shop's waybill numbers under this account and takes an intercept only
    from the account that issued the waybill, so the account is granted by the platform (see
    ``services.ewaybill_account_grant``), never typed in by the merchant.
    """

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="ewaybill_accounts", verbose_name=_("shop")
    )
    courier = models.ForeignKey(
        Courier, on_delete=models.PROTECT, related_name="+", verbose_name=_("courier")
    )
    account_no = models.CharField(
        _("e-waybill account number"),
        max_length=64,
        help_text=_(
            "The monthly card or partner id the courier issues this shop's waybills under."
        ),
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )
    granted_at = models.DateTimeField(_("granted at"), default=timezone.now)

    class Meta:
        verbose_name = _("e-waybill account")
        verbose_name_plural = _("e-waybill accounts")
        ordering = ("shop", "courier")
        constraints = [
            models.UniqueConstraint(
                fields=("shop", "courier"), name="ewaybill_shop_courier_unique"
            ),
            # One courier account belongs to one shop: two shops cannot share its waybills.
            models.UniqueConstraint(
                fields=("courier", "account_no"), name="ewaybill_courier_account_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.courier} {self.account_no}"


class ApiKey(models.Model):
    """A key a shop's ERP uses on the REST API, scoped to that one shop.

    The secret is shown once when the key is made and kept only as its SHA-256 (a random
    256-bit secret needs no slow hash). Requests made with the key act as its own user
    (``user``), whose name says "API" and the key's name, so every history row they cause
    names the key.
    """

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("shop")
    )
    name = models.CharField(_("name"), max_length=50)
    # The key's public part: ``pik_<prefix>_<secret>``; looked up by it, then the hash compared.
    prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(_("secret's SHA-256"), max_length=64, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_key",
        editable=False,
        verbose_name=_("acts as"),
    )
    allowed_ips = models.JSONField(
        _("allowed addresses"),
        default=list,
        blank=True,
        help_text=_("Addresses or networks (CIDR) the key may be used from; empty for any."),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )


class ApiIdempotencyRecord(models.Model):
    """The answer to one ``Idempotency-Key`` of one shop, kept 24 hours, so a repeated POST
    replays it instead of doing the work twice."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="+", verbose_name=_("shop")
    )
    key = models.CharField(_("Idempotency-Key"), max_length=255)
    # SHA-256 of the method, the path and the body: the same key with another request is refused.
    request_hash = models.CharField(_("request's SHA-256"), max_length=64)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.RUNNING
    )
    response_status = models.PositiveSmallIntegerField(_("answer's HTTP status"), null=True)
    response_body = models.JSONField(_("answer"), null=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("API idempotent answer")
        verbose_name_plural = _("API idempotent answers")
        constraints = [
            models.UniqueConstraint(fields=("shop", "key"), name="api_idempotency_shop_key_unique")
        ]

    def __str__(self) -> str:
        return self.key


class WebhookEndpoint(models.Model):
    """A URL of the shop's ERP that receives its events, signed with the endpoint's secret.

    The secret is kept as it is (signing needs it) but shown only once, when it is made. A
    rotated secret keeps signing beside the new one until ``previous_secret_expires_at``, so a
    receiver can switch over without losing a delivery.
    """

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="webhook_endpoints", verbose_name=_("shop")
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=100, blank=True)
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Events are sent only to active endpoints."),
    )
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    previous_secret = models.CharField(
        _("previous signing secret"), max_length=100, blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret signs until"), null=True, blank=True, editable=False
    )
    secret_rotated_at = models.DateTimeField(
        _("secret rotated at"), null=True, blank=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ("-id",)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint, with its exact body; its attempts are its history.

    Deliveries of one object (``object_key``, e.g. ``intercept:42``) to one endpoint form a
    chain sent oldest first: a delivery waits while an earlier one of its chain is pending.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered to the endpoint")
        FAILED = "failed", _("Failed")

    # Pending moves on when an attempt is answered with 2xx or when the retry window has passed;
    # "send again" puts a finished delivery back (shops.webhooks.webhook_delivery_send_again).
    TRANSITIONS = {
        Status.PENDING: {Status.SUCCEEDED, Status.FAILED},
        Status.SUCCEEDED: {Status.PENDING},
        Status.FAILED: {Status.PENDING},
    }

    shop = models.ForeignKey(
        Shop, on_delete=models.CASCADE, related_name="+", verbose_name=_("shop")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event"), max_length=50)
    object_key = models.CharField(_("object"), max_length=100)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    give_up_at = models.DateTimeField(_("retried until"))
    # Set while a worker sends this delivery; the value is that worker's claim (see
    # shops.webhooks: it only records an outcome while the claim is still its own).
    leased_until = models.DateTimeField(_("being sent until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ("-id",)
        indexes = [
            # The head of a chain: its oldest pending delivery.
            models.Index(
                fields=("endpoint", "object_key", "id"),
                name="webhook_delivery_chain",
                condition=models.Q(status="pending"),
            ),
            # What the beat task looks at: pending deliveries that are due.
            models.Index(
                fields=("next_attempt_at",),
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
            # The workbench list, newest first, of one shop.
            models.Index(fields=("shop", "-id"), name="webhook_delivery_shop_list"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_key} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery and what came back (append-only)."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        verbose_name=_("delivery"),
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("sent at"))
    status_code = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"))
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ("delivery", "number")
        constraints = [
            models.UniqueConstraint(
                fields=("delivery", "number"), name="webhook_attempt_number_unique"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"
