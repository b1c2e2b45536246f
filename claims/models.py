"""Claims for intercepted parcels lost or damaged on the way back, their evidence and history.

A claim is filed against an intercept that succeeded (``intercepts.InterceptRequest``): the
courier caught the parcel, and then lost it, damaged it, or never brought it to the new address.
The courier pays up to the value of the goods in that parcel and at most 1,000 yuan; the amount
asked is capped when the claim is filed (``claims.services.claim_ceiling_fen``).
"""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.money import MoneyField
from couriers.models import Courier
from intercepts.models import InterceptRequest, Parcel
from shops.history import StatusHistory, status_fields
from shops.models import Shop

# What a courier pays at most for one parcel (Douyin and JD both say 1,000 yuan).
CLAIM_CAP_FEN = 1000 * 100


class ClaimReason(models.TextChoices):
    LOST = "lost", _("Lost on the way back")
    DAMAGED = "damaged", _("Came back damaged")
    NOT_DELIVERED = "not_delivered", _("Never reached the new address")


class ClaimStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    WITH_COURIER = "with_courier", _("With the courier")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    APPEALED = "appealed", _("Appealed")
    PAID = "paid", _("Paid")
    CLOSED = "closed", _("Closed")
    WITHDRAWN = "withdrawn", _("Withdrawn")


def evidence_storage():
    """Where evidence files are kept: the ``claim_evidence`` storage (``settings.STORAGES``),
    private local files unless configured otherwise. Never served from a public URL."""
    return storages["claim_evidence"]


def evidence_path(instance: "ClaimEvidence", filename: str) -> str:
    # A random name: the merchant's file name is kept in a column, never in the path.
    suffix = PurePosixPath(filename).suffix.lower()[:8]
    return f"claims/{instance.claim_id}/{uuid.uuid4().hex}{suffix}"


class Claim(models.Model):
    """A claim for compensation on one intercepted parcel.

    Its status moves only through ``claims.services.claim_set_status``; money reaches the shop
    only through ``billing.services.wallet_compensate`` under the reference ``claim:<id>``.
    """

    Reason = ClaimReason
    Status = ClaimStatus

    class Channel(models.TextChoices):
        ONLINE = "online", _("Filed online by the merchant")
        OFFLINE = "offline", _("Recorded by platform customer service")

    class Payout(models.TextChoices):
        WALLET = "wallet", _("Credited to the shop's wallet")
        OFFLINE = "offline", _("Paid outside the platform")

    # The moves a claim may make; anything else is refused by the status service.
    TRANSITIONS = {
        ClaimStatus.SUBMITTED: {ClaimStatus.WITH_COURIER, ClaimStatus.WITHDRAWN},
        ClaimStatus.WITH_COURIER: {
            ClaimStatus.APPROVED,
            ClaimStatus.REJECTED,
            ClaimStatus.WITHDRAWN,
        },
        ClaimStatus.APPROVED: {ClaimStatus.PAID},
        ClaimStatus.REJECTED: {ClaimStatus.APPEALED, ClaimStatus.CLOSED},
        ClaimStatus.APPEALED: {ClaimStatus.WITH_COURIER, ClaimStatus.WITHDRAWN},
        ClaimStatus.PAID: {ClaimStatus.CLOSED},
        ClaimStatus.CLOSED: set(),
        ClaimStatus.WITHDRAWN: set(),
    }
    # Still being decided or paid: counted as open on the lists.
    OPEN = (
        ClaimStatus.SUBMITTED,
        ClaimStatus.WITH_COURIER,
        ClaimStatus.APPROVED,
        ClaimStatus.REJECTED,
        ClaimStatus.APPEALED,
    )
    # The merchant may take the claim back until it is approved.
    WITHDRAWABLE = (ClaimStatus.SUBMITTED, ClaimStatus.WITH_COURIER, ClaimStatus.APPEALED)

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="+", verbose_name=_("shop"), db_index=False
    )
    intercept = models.ForeignKey(
        InterceptRequest,
        on_delete=models.PROTECT,
        related_name="claims",
        verbose_name=_("intercept record"),
        db_index=False,
    )
    parcel = models.ForeignKey(
        Parcel, on_delete=models.PROTECT, related_name="claims", verbose_name=_("parcel")
    )
    courier = models.ForeignKey(
        Courier, on_delete=models.PROTECT, related_name="claims", verbose_name=_("courier")
    )
    reason = models.CharField(_("what happened"), max_length=16, choices=ClaimReason.choices)
    description = models.TextField(_("description"), max_length=2000, blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.SUBMITTED
    )
    # Read from the parcel's order lines when the claim is filed, never typed.
    goods_value_fen = MoneyField(_("value of the goods (yuan)"), editable=False)
    ceiling_fen = MoneyField(_("most that can be claimed (yuan)"), editable=False)
    amount_claimed_fen = MoneyField(_("amount claimed (yuan)"))
    amount_approved_fen = MoneyField(_("amount approved (yuan)"), null=True, blank=True)
    decision_note = models.CharField(_("courier's decision"), max_length=255, blank=True)
    appeal_note = models.CharField(_("appeal"), max_length=255, blank=True)
    appealed_at = models.DateTimeField(_("appealed at"), null=True, blank=True)
    payout = models.CharField(_("paid how"), max_length=16, choices=Payout.choices, blank=True)
    payment_reference = models.CharField(_("payment reference"), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    # An offline claim: how the merchant reached customer service.
    contact_note = models.CharField(_("how the merchant reached us"), max_length=255, blank=True)
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("filed by"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("filed at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        ordering = ("-id",)
        constraints = [
            # One claim per intercept at a time; a withdrawn one may be filed again.
            models.UniqueConstraint(
                fields=("intercept",),
                condition=~Q(status="withdrawn"),
                name="claim_one_per_intercept",
            ),
            models.CheckConstraint(
                condition=Q(amount_claimed_fen__gt=0)
                & Q(amount_claimed_fen__lte=F("ceiling_fen"))
                & Q(ceiling_fen__lte=CLAIM_CAP_FEN),
                name="claim_amount_within_ceiling",
            ),
            models.CheckConstraint(
                condition=Q(amount_approved_fen__isnull=True)
                | (
                    Q(amount_approved_fen__gt=0)
                    & Q(amount_approved_fen__lte=F("amount_claimed_fen"))
                ),
                name="claim_approved_within_claimed",
            ),
        ]
        indexes = [
            models.Index(fields=("shop", "-id"), name="claim_shop_idx"),
            models.Index(fields=("status", "created_at"), name="claim_status_age_idx"),
            models.Index(fields=("courier", "paid_at"), name="claim_courier_paid_idx"),
        ]

    def __str__(self) -> str:
        return str(_("Claim #%(id)s") % {"id": self.pk})

    @property
    def reference(self) -> str:
        """What the compensation is paid under in billing: once per claim."""
        return f"claim:{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class ClaimEvent(StatusHistory):
    """Append-only history of a claim: who moved it, when, and why."""

    claim = models.ForeignKey(
        Claim, on_delete=models.CASCADE, related_name="events", verbose_name=_("claim")
    )
    from_status, to_status = status_fields(ClaimStatus)

    class Meta(StatusHistory.Meta):
        verbose_name = _("claim event")
        verbose_name_plural = _("claim events")


class ClaimEvidence(models.Model):
    """A photo or PDF sent with a claim, checked by its content (``claims.evidence``)."""

    claim = models.ForeignKey(
        Claim, on_delete=models.CASCADE, related_name="evidence", verbose_name=_("claim")
    )
    file = models.FileField(
        _("file"), storage=evidence_storage, upload_to=evidence_path, max_length=200
    )
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=64)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("file SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("claim evidence")
        verbose_name_plural = _("claim evidence")
        ordering = ("id",)

    def __str__(self) -> str:
        return self.original_name


class ClaimPayout(Claim):
    """Finance's page of payouts by courier and month (``claims.admin.payouts``).

    A proxy with no table of its own: it gives the page a place in the workbench (its admin, its
    sidebar entry, its permission checks) the way every other page has one; the figures come
    from ``claims.selectors.payouts_by_courier_month``.
    """

    class Meta:
        proxy = True
        verbose_name = _("claim payouts")
        verbose_name_plural = _("claim payouts")
