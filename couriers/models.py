"""The courier registry: who the couriers are and what they can do."""

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(
            _("Not a valid regular expression: %(error)s"), params={"error": exc}
        ) from exc


class CourierAccount(models.Model):
    """An account at a courier gateway: which protocol, where, and the credentials to sign with.

    Secrets are stored for signing but never shown again once saved (the admin form is
    write-only for them).
    """

    class Protocol(models.TextChoices):
        KUAIDI100 = "kuaidi100", _("Kuaidi100-style aggregator")
        SF = "sf", _("SF Express open platform")
        KDNIAO = "kdniao", _("Kdniao")

    SECRET_FIELDS = ("key", "secret", "salt", "check_word", "app_key")

    name = models.CharField(_("name"), max_length=64, unique=True)
    protocol = models.CharField(_("protocol"), max_length=16, choices=Protocol.choices)
    base_url = models.URLField(_("gateway URL"), max_length=255)
    customer = models.CharField(_("customer id (Kuaidi100)"), max_length=64, blank=True)
    partner_id = models.CharField(_("partner id (SF)"), max_length=64, blank=True)
    ebusiness_id = models.CharField(_("EBusinessID (Kdniao)"), max_length=64, blank=True)
    key = models.CharField(_("key"), max_length=128, blank=True)
    secret = models.CharField(_("secret"), max_length=128, blank=True)
    salt = models.CharField(_("push salt"), max_length=128, blank=True)
    check_word = models.CharField(_("check word (SF)"), max_length=128, blank=True)
    app_key = models.CharField(_("AppKey (Kdniao)"), max_length=128, blank=True)
    callback_url = models.URLField(_("callback URL"), max_length=255, blank=True)
    requests_per_second = models.PositiveSmallIntegerField(_("requests per second"), default=10)
    batch_size = models.PositiveSmallIntegerField(_("query batch size"), default=1)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("gateway account")
        verbose_name_plural = _("gateway accounts")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def config(self):
        """The plain settings an adapter works from."""
        from couriers.adapters.base import AccountConfig

        return AccountConfig(
            protocol=self.protocol,
            base_url=self.base_url.rstrip("/"),
            customer=self.customer,
            key=self.key,
            secret=self.secret,
            salt=self.salt,
            partner_id=self.partner_id,
            check_word=self.check_word,
            ebusiness_id=self.ebusiness_id,
            app_key=self.app_key,
            callback_url=self.callback_url,
        )


class Courier(models.Model):
    class TrackingMode(models.TextChoices):
        PUSH = "push", _("Push")
        POLL = "poll", _("Poll")

    code = models.CharField(_("code"), max_length=16, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=32)
    name_en = models.CharField(_("English name"), max_length=64)
    service_phone = models.CharField(_("customer-service phone"), max_length=32)
    waybill_pattern = models.CharField(
        _("waybill number pattern"),
        max_length=200,
        validators=[validate_regex],
        help_text=_("A regular expression that every waybill number of this courier matches."),
    )
    waybill_example = models.CharField(_("waybill number example"), max_length=32, blank=True)
    kuaidi100_code = models.CharField(_("Kuaidi100 code"), max_length=32, blank=True)
    kdniao_code = models.CharField(_("Kdniao code"), max_length=16, blank=True)
    can_return_to_sender = models.BooleanField(_("can return to sender"), default=True)
    can_redirect = models.BooleanField(_("can change address"), default=True)
    tracking_mode = models.CharField(
        _("tracking mode"), max_length=8, choices=TrackingMode.choices, default=TrackingMode.PUSH
    )
    batch_size = models.PositiveSmallIntegerField(_("query batch size"), default=1)
    requests_per_second = models.PositiveSmallIntegerField(_("requests per second"), default=10)
    account = models.ForeignKey(
        CourierAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="couriers",
        verbose_name=_("gateway account"),
        help_text=_("The gateway account that serves this courier's tracking and intercepts."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("courier")
        verbose_name_plural = _("couriers")
        ordering = ("sort_order", "code")

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.localized_name(self.name_zh, self.name_en)

    @staticmethod
    def localized_name(name_zh: str, name_en: str, language: str | None = None) -> str:
        """The name to show in ``language`` (default: the active one), for lists that read
        only the names."""
        language = language or get_language() or "zh-hans"
        return name_zh if language.startswith("zh") else name_en

    def waybill_matches(self, waybill_no: str) -> bool:
        return re.fullmatch(self.waybill_pattern, waybill_no) is not None

    def check_waybill(self, waybill_no: str) -> None:
        """Refuse a waybill number that does not fit this courier's pattern."""
        if not self.waybill_matches(waybill_no):
            raise ValidationError(
                {
                    "waybill_no": _(
                        "“%(waybill)s” is not a %(courier)s waybill number "
                        "(for example %(example)s)."
                    )
                    % {
                        "waybill": waybill_no,
                        "courier": self.display_name,
                        "example": self.waybill_example,
                    }
                }
            )
