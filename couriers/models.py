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
        language = get_language() or "zh-hans"
        return self.name_zh if language.startswith("zh") else self.name_en

    def waybill_matches(self, waybill_no: str) -> bool:
        return re.fullmatch(self.waybill_pattern, waybill_no) is not None
