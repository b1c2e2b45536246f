"""Orders, parcels, tracking and after-sales of the shops, and the intercepts of parcels."""

import re

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Hold
from billing.money import MoneyField
from couriers.models import Courier
from couriers.stages import SHIPMENT_FINAL_STAGES, TERMINAL_STAGES, ParcelStage
from intercepts.validators import validate_phone
from shops.history import StatusHistory, status_fields
from shops.models import Shop


def mask_phone(phone: str) -> str:
    """'13812341234' -> '138****1234'; short numbers keep only their last four digits."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]  # +86 country code
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return f"****{digits[-4:]}"
    return "****" if digits else ""


class GoodsCategory(models.TextChoices):
    NORMAL = "normal", _("General goods")
    FRESH = "fresh", _("Fresh food")
    VIRTUAL = "virtual", _("Virtual goods")
    CUSTOMISED = "customised", _("Customised goods")
    JEWELLERY = "jewellery", _("Jewellery")
    ANTIQUE = "antique", _("Antiques")
    SECOND_HAND = "second_hand", _("Second-hand goods")
    TEA = "tea", _("Tea")
    LARGE_APPLIANCE = "large_appliance", _("Large appliances")


class Order(models.Model):
    class Status(models.TextChoices):
        PAID = "paid", _("Paid, awaiting shipment")
        SHIPPED = "shipped", _("Shipped")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    # The moves the platform's order makes, as its feed tells them; anything else is refused.
    TRANSITIONS = {
        Status.PAID: {Status.SHIPPED, Status.CANCELLED},
        Status.SHIPPED: {Status.COMPLETED, Status.CANCELLED},
        Status.COMPLETED: set(),
        Status.CANCELLED: set(),
    }

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="orders", verbose_name=_("shop")
    )
    order_no = models.CharField(_("order number"), max_length=32)
    status = models.CharField(
        _("order status"), max_length=16, choices=Status.choices, default=Status.PAID
    )
    buyer_name = models.CharField(_("buyer"), max_length=50)
    buyer_phone = models.CharField(_("buyer phone"), max_length=20)
    total_fen = MoneyField(_("order total (yuan)"), default=0)
    paid_at = models.DateTimeField(_("paid at"), default=timezone.now)
    # Where the buyer asked the goods to go, as the platform sent it with the order. The
    # shipment rules count addresses from here, never from what a merchant types. Empty in the
    # database too for rows loaded in bulk from before the platform sent it.
    receiver_name = models.CharField(
        _("receiver"), max_length=50, blank=True, default="", db_default=""
    )
    receiver_phone = models.CharField(
        _("receiver phone"),
        max_length=20,
        blank=True,
        default="",
        db_default="",
        validators=[validate_phone],
    )
    receiver_address = models.CharField(
        _("receiver address"), max_length=255, blank=True, default="", db_default=""
    )
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    # The buyer's receipt is confirmed automatically on this date; a stalled parcel extends it.
    receipt_confirm_at = models.DateTimeField(
        _("automatic receipt confirmation"), null=True, blank=True
    )
    # The platform holds the order's settlement while its parcel is stalled (10 days after
    # shipping with no final stage); lifted when the anomaly clears.
    settlement_held_at = models.DateTimeField(_("settlement held since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("shop", "order_no"), name="order_shop_order_no_unique"),
            models.CheckConstraint(condition=Q(total_fen__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=("order_no",), name="order_order_no_idx"),
            models.Index(fields=("-created_at", "-id"), name="order_created_idx"),
            models.Index(fields=("status", "-created_at"), name="order_status_created_idx"),
            models.Index(fields=("shop", "-created_at", "-id"), name="order_shop_created_idx"),
            # Finance's list of held settlements, per shop.
            models.Index(
                fields=("shop", "settlement_held_at"),
                condition=Q(settlement_held_at__isnull=False),
                name="order_settlement_held_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.order_no

    @property
    def receiver_phone_masked(self) -> str:
        return mask_phone(self.receiver_phone)

    @property
    def buyer_phone_masked(self) -> str:
        return mask_phone(self.buyer_phone)


class OrderEvent(StatusHistory):
    """Append-only history of an order's status, as the platform reported it."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order")
    )
    from_status, to_status = status_fields(Order.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("order event")
        verbose_name_plural = _("order events")


MAX_UNIT_PRICE_FEN = 100_000_000
MAX_QUANTITY = 9_999


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    goods_name = models.CharField(_("goods"), max_length=120)
    category = models.CharField(
        _("goods category"),
        max_length=24,
        choices=GoodsCategory.choices,
        default=GoodsCategory.NORMAL,
    )
    # What a platform could sell, with room to spare: anything above is a typing or feed error,
    # and would pass every value rule of an intercept or a claim unchecked.
    unit_price_fen = MoneyField(
        _("unit price (yuan)"),
        validators=[
            MaxValueValidator(
                MAX_UNIT_PRICE_FEN, _("A unit price cannot be more than 1,000,000.00 yuan.")
            )
        ],
    )
    quantity = models.PositiveIntegerField(
        _("quantity"),
        default=1,
        validators=[MaxValueValidator(MAX_QUANTITY, _("A quantity cannot be more than 9,999."))],
    )

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_price_fen__gte=0), name="order_line_price_not_negative"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_min_1"),
        ]

    def __str__(self) -> str:
        return f"{self.goods_name} × {self.quantity}"

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


class Parcel(models.Model):
    # No single-column indexes on the foreign keys: the composite indexes below lead with each
    # of them, and every index is one more write on each tracking update of a busy table.
    shop = models.ForeignKey(
        Shop,
        on_delete=models.PROTECT,
        related_name="parcels",
        verbose_name=_("shop"),
        db_index=False,
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="parcels",
        verbose_name=_("order"),
        db_index=False,
    )
    courier = models.ForeignKey(
        Courier,
        on_delete=models.PROTECT,
        related_name="parcels",
        verbose_name=_("courier"),
        db_index=False,
    )
    waybill_no = models.CharField(_("waybill number"), max_length=32)
    lines = models.ManyToManyField(
        OrderLine, related_name="parcels", blank=True, verbose_name=_("order lines carried")
    )
    # The value of the goods the parcel carries, from its order lines (``shipping.ship_order``):
    # rules and claims read it, so it is never typed in.
    declared_value_fen = MoneyField(_("declared value (yuan)"), default=0, editable=False)
    receiver_name = models.CharField(_("receiver"), max_length=50)
    receiver_phone = models.CharField(
        _("receiver phone"), max_length=20, validators=[validate_phone]
    )
    receiver_address = models.CharField(_("receiver address"), max_length=255)
    stage = models.CharField(
        _("stage"), max_length=24, choices=ParcelStage.choices, default=ParcelStage.NO_INFO
    )
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    picked_up_at = models.DateTimeField(_("picked up at"), null=True, blank=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    next_poll_at = models.DateTimeField(_("next tracking poll"), null=True, blank=True)
    # A poll worker holds the parcel until then. Not indexed, so taking and dropping the lease
    # can be a heap-only update (the table keeps free room in each page for that).
    poll_leased_until = models.DateTimeField(
        _("tracking poll leased until"), null=True, blank=True, editable=False
    )
    subscribed_at = models.DateTimeField(_("tracking push subscribed at"), null=True, blank=True)
    poll_failures = models.PositiveSmallIntegerField(_("failed polls in a row"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("parcel")
        verbose_name_plural = _("parcels")
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(declared_value_fen__gte=0), name="parcel_declared_value_not_negative"
            ),
            # A waybill names one parcel, of the one shop that shipped it: pushes, polls and
            # intercepts find the parcel by it.
            models.UniqueConstraint(
                fields=("courier", "waybill_no"),
                name="parcel_waybill_unique",
                # Whose parcel it is stays unsaid.
                violation_error_message=_("This waybill number is already recorded for a parcel."),
            ),
            # Stored as ``services.normalise_waybill`` writes it, so that the uniqueness above
            # cannot be dodged by letter case or spaces.
            models.CheckConstraint(
                condition=Q(waybill_no=Upper("waybill_no")) & ~Q(waybill_no__contains=" "),
                name="parcel_waybill_normalised",
            ),
        ]
        indexes = [
            models.Index(fields=("waybill_no",), name="parcel_waybill_idx"),
            models.Index(fields=("-created_at", "-id"), name="parcel_created_idx"),
            models.Index(fields=("courier", "-created_at"), name="parcel_courier_created_idx"),
            models.Index(fields=("order", "courier"), name="parcel_order_courier_idx"),
            models.Index(fields=("order", "stage"), name="parcel_order_stage_idx"),
            models.Index(fields=("shop", "-created_at", "-id"), name="parcel_shop_created_idx"),
            models.Index(fields=("stage", "-created_at"), name="parcel_stage_created_idx"),
            models.Index(
                fields=("next_poll_at",),
                name="parcel_due_poll_idx",
                condition=Q(next_poll_at__isnull=False),
            ),
            # The stalled-shipment scan's queue: parcels shipped and not yet at a final stage.
            models.Index(
                fields=("shipped_at",),
                name="parcel_open_shipped_idx",
                condition=~Q(stage__in=sorted(SHIPMENT_FINAL_STAGES)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.courier.display_name} {self.waybill_no}"

    @property
    def is_terminal(self) -> bool:
        return self.stage in TERMINAL_STAGES

    def clean(self) -> None:
        super().clean()
        if self.waybill_no and self.courier_id:
            self.courier.check_waybill(self.waybill_no)


class ParcelCorrection(models.Model):
    """A recorded correction of a mistyped waybill: the only way a shipped parcel's courier or
    waybill number changes (``services.parcel_correct_waybill``)."""

    parcel = models.ForeignKey(
        Parcel, on_delete=models.CASCADE, related_name="corrections", verbose_name=_("parcel")
    )
    old_courier = models.ForeignKey(
        Courier, on_delete=models.PROTECT, related_name="+", verbose_name=_("courier before")
    )
    old_waybill_no = models.CharField(_("waybill number before"), max_length=32)
    new_courier = models.ForeignKey(
        Courier, on_delete=models.PROTECT, related_name="+", verbose_name=_("courier after")
    )
    new_waybill_no = models.CharField(_("waybill number after"), max_length=32)
    reason = models.CharField(_("reason"), max_length=255)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("waybill correction")
        verbose_name_plural = _("waybill corrections")
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.old_waybill_no} → {self.new_waybill_no}"


class TrackingEvent(models.Model):
    class Source(models.TextChoices):
        POLL = "poll", _("Tracking poll")
        DEMO = "demo", _("Demo data")
        # A push is stored under the protocol of the gateway that sent it
        # (``couriers.CourierAccount.Protocol``).
        PUSH_KUAIDI100 = "kuaidi100", _("Courier push (Kuaidi100)")
        PUSH_SF = "sf", _("Courier push (SF Express)")
        PUSH_KDNIAO = "kdniao", _("Courier push (Kdniao)")

    # Indexed by the dedup constraint, which leads with the parcel.
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.CASCADE,
        related_name="tracking_events",
        verbose_name=_("parcel"),
        db_index=False,
    )
    occurred_at = models.DateTimeField(_("time"))
    raw_code = models.CharField(_("courier code"), max_length=32)
    stage = models.CharField(_("stage"), max_length=24, choices=ParcelStage.choices)
    description = models.CharField(_("description"), max_length=255, blank=True)
    location = models.CharField(_("location"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=16, blank=True, choices=Source.choices)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ("-occurred_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("parcel", "occurred_at", "raw_code"), name="tracking_event_dedup"
            )
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.description}"


class AfterSale(models.Model):
    class Kind(models.TextChoices):
        REFUND_ONLY = "refund_only", _("Refund only")
        RETURN_AND_REFUND = "return_refund", _("Return and refund")
        CANCEL_ORDER = "cancel_order", _("Cancel order")

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting merchant")
        APPROVED = "approved", _("Refund approved")
        REFUNDED = "refunded", _("Refunded")
        REJECTED = "rejected", _("Rejected by merchant")
        CLOSED = "closed", _("Closed")

    # The moves a status may make; anything else is refused by the status service.
    TRANSITIONS = {
        Status.PENDING: {Status.APPROVED, Status.REJECTED, Status.CLOSED},
        Status.APPROVED: {Status.REFUNDED, Status.CLOSED},
        Status.REJECTED: {Status.PENDING, Status.APPROVED, Status.CLOSED},
        Status.REFUNDED: set(),
        Status.CLOSED: set(),
    }

    class Arbitration(models.TextChoices):
        NONE = "none", _("No arbitration")
        REQUESTED = "requested", _("Buyer asked the platform")
        IN_PROGRESS = "in_progress", _("Platform arbitrating")
        FOR_BUYER = "for_buyer", _("Decided for the buyer")
        FOR_MERCHANT = "for_merchant", _("Decided for the merchant")

    # Under arbitration: platform CS may intercept the parcel for the merchant.
    ARBITRATION_OPEN = (Arbitration.REQUESTED, Arbitration.IN_PROGRESS, Arbitration.FOR_BUYER)

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="after_sales", verbose_name=_("shop")
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="after_sales", verbose_name=_("order")
    )
    kind = models.CharField(_("after-sale type"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("after-sale status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    arbitration = models.CharField(
        _("arbitration"), max_length=16, choices=Arbitration.choices, default=Arbitration.NONE
    )
    refund_amount_fen = MoneyField(_("refund amount (yuan)"), default=0)
    reason = models.CharField(_("buyer's reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("applied at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("after-sale order")
        verbose_name_plural = _("after-sale orders")
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(refund_amount_fen__gte=0), name="after_sale_refund_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=("-created_at", "-id"), name="after_sale_created_idx"),
            models.Index(fields=("shop", "-created_at", "-id"), name="after_sale_shop_created_idx"),
            models.Index(
                fields=("shop", "status", "-created_at", "-id"), name="after_sale_shop_status_idx"
            ),
            models.Index(fields=("shop", "kind", "-created_at"), name="after_sale_shop_kind_idx"),
            models.Index(fields=("status", "-created_at", "-id"), name="after_sale_status_idx"),
            models.Index(fields=("kind", "-created_at"), name="after_sale_kind_idx"),
            # CS's queue (``awaiting_platform``) reads arbitration and status together.
            models.Index(
                fields=("arbitration", "status"),
                name="after_sale_arbitration_idx",
                condition=~Q(arbitration="none"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.order}"

    @classmethod
    def awaiting_platform(cls) -> Q:
        """The queue platform CS works from: on an after-sale not yet refunded or closed, a
        dispute still to be decided, or one decided for the buyer (CS may still have to
        intercept). A finished after-sale leaves the queue whatever its dispute says."""
        return Q(
            arbitration__in=(
                cls.Arbitration.REQUESTED,
                cls.Arbitration.IN_PROGRESS,
                cls.Arbitration.FOR_BUYER,
            ),
            status__in=(cls.Status.PENDING, cls.Status.APPROVED, cls.Status.REJECTED),
        )


class AfterSaleEvent(StatusHistory):
    """Append-only history of an after-sale's status."""

    after_sale = models.ForeignKey(
        AfterSale, on_delete=models.CASCADE, related_name="events", verbose_name=_("after-sale")
    )
    from_status, to_status = status_fields(AfterSale.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("after-sale event")
        verbose_name_plural = _("after-sale events")


def _default_excluded_categories() -> list[str]:
    # Douyin: fresh, virtual and customised goods; JD also jewellery, antiques, second-hand
    # goods, tea and large appliances.
    return [
        GoodsCategory.FRESH,
        GoodsCategory.VIRTUAL,
        GoodsCategory.CUSTOMISED,
        GoodsCategory.JEWELLERY,
        GoodsCategory.ANTIQUE,
        GoodsCategory.SECOND_HAND,
        GoodsCategory.TEA,
        GoodsCategory.LARGE_APPLIANCE,
    ]


def _default_return_stages() -> list[str]:
    # Between pickup and delivery, while the parcel still passes a scan that can catch it.
    return [
        ParcelStage.PICKED_UP,
        ParcelStage.IN_TRANSIT,
        ParcelStage.AT_DESTINATION_CITY,
        ParcelStage.AT_DELIVERY_STATION,
        ParcelStage.AWAITING_COLLECTION,
        ParcelStage.DELIVERY_FAILED,
    ]


def _default_redirect_stages() -> list[str]:
    # A new address needs time to be sorted to: not once the parcel is at its delivery station.
    return [ParcelStage.PICKED_UP, ParcelStage.IN_TRANSIT, ParcelStage.AT_DESTINATION_CITY]


def _all_rule_codes() -> list[str]:
    from intercepts.eligibility import RULE_CODES  # the rules live beside their checks

    return list(RULE_CODES)


class InterceptPolicy(models.Model):
    """The platform's intercept rules: which apply, and their settings. One row, edited by
    platform staff in the workbench (``InterceptPolicy.current()``)."""

    rules = models.JSONField(_("rules that apply"), default=_all_rule_codes, blank=True)
    excluded_categories = models.JSONField(
        _("goods categories that cannot be intercepted"),
        default=_default_excluded_categories,
        blank=True,
    )
    value_cap_fen = MoneyField(_("highest parcel value (yuan)"), default=100_000)
    return_stages = models.JSONField(
        _("stages that allow a return to sender"), default=_default_return_stages, blank=True
    )
    redirect_stages = models.JSONField(
        _("stages that allow a change of address"), default=_default_redirect_stages, blank=True
    )
    allow_one_parcel_of_many = models.BooleanField(
        _("allow intercepting one parcel of a multi-parcel order"), default=False
    )
    agreement_version = models.CharField(
        _("current intercept agreement version"), max_length=16, default="2026-01"
    )
    # Douyin and JD expect the parcel back within days of a successful intercept; past this, the
    # record is marked "claim suggested" (``intercepts.services.claim_watch``).
    claim_suggest_after_days = models.PositiveSmallIntegerField(
        _("days after a successful intercept before a claim is suggested"),
        default=7,
        validators=[
            MinValueValidator(1, _("Give at least 1 day.")),
            MaxValueValidator(365, _("Give at most 365 days.")),
        ],
        help_text=_(
            "An intercepted parcel that is not back (or not delivered at the new address) this "
            "many days after the intercept succeeded is marked “claim suggested”."
        ),
    )
    # Kuaishou's checks after shipping: a notice at 6 days without a final stage; at 10 days
    # the settlement is held and the buyer's automatic receipt confirmation put back.
    shipment_notice_days = models.PositiveSmallIntegerField(
        _("days after shipping before a stalled parcel is an anomaly"),
        default=6,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    shipment_hold_days = models.PositiveSmallIntegerField(
        _("days after shipping before a stalled parcel's settlement is held"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    receipt_confirm_days = models.PositiveSmallIntegerField(
        _("days after shipping before the buyer's receipt is confirmed automatically"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    receipt_extend_days = models.PositiveSmallIntegerField(
        _("days the automatic receipt confirmation is put back for a stalled parcel"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("intercept policy")
        verbose_name_plural = _("intercept policy")

    def __str__(self) -> str:
        return str(_("Intercept policy"))

    @classmethod
    def current(cls) -> "InterceptPolicy":
        policy, _created = cls.objects.get_or_create(pk=1)
        return policy

    def stages_for(self, action: str) -> list[str]:
        return self.redirect_stages if action == "redirect" else self.return_stages


class InterceptStatus(models.TextChoices):
    CREATED = "created", _("Created")
    SUBMITTED = "submitted", _("Sent to the courier")
    ACCEPTED = "accepted", _("Accepted by the courier")
    SUCCEEDED = "succeeded", _("Intercepted")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Refused by the courier")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Withdrawn")


# The statuses of an intercept still under way: the partial unique index and the code read this.
OPEN_INTERCEPT_STATUSES = (
    InterceptStatus.CREATED,
    InterceptStatus.SUBMITTED,
    InterceptStatus.ACCEPTED,
)


# An intercept's fee is held in billing under this prefix and the request's id.
HOLD_REFERENCE_PREFIX = "intercept:"


class InterceptRequestQuerySet(models.QuerySet):
    def with_fee_state(self):
        """Each request with ``fee_state``, its fee hold's status in billing (held, captured or
        released): what was really done with the money, read in the same query through the
        hold's unique reference, never a query per row. None for a request without a hold."""
        reference = Concat(
            Value(HOLD_REFERENCE_PREFIX), Cast(OuterRef("pk"), output_field=models.CharField())
        )
        return self.annotate(
            fee_state=Subquery(
                Hold.objects.filter(reference=reference).order_by().values("status")[:1]
            )
        )


class InterceptRequest(models.Model):
    """A request to a courier to stop a parcel: send it back, or deliver it to a new address.

    Its status moves only through ``intercepts.services.intercept_requests``'s
    ``intercept_set_status``; the fee is held from the shop's wallet when it is created (billing
    reference ``intercept:<id>``), charged when it succeeds and released when it is rejected,
    fails or is withdrawn.
    """

    class Action(models.TextChoices):
        RETURN = "return", _("Return to sender")
        REDIRECT = "redirect", _("Deliver to a new address")

    class ClaimSuggestion(models.TextChoices):
        NOT_BACK = "not_back", _("Not back in time")
        DAMAGED = "damaged", _("Tracking shows damage")
        LOST = "lost", _("Tracking shows it lost")

    class Channel(models.TextChoices):
        WORKBENCH = "workbench", _("Workbench")
        PLATFORM_CS = "platform_cs", _("Platform customer service")
        API = "api", _("API")
        AUTOMATIC = "automatic", _("Automatic")

    Status = InterceptStatus
    # At most one of these per parcel at a time (a partial unique index).
    OPEN = OPEN_INTERCEPT_STATUSES
    # The parcel was stopped: it is on its way back or to the new address, and is not
    # intercepted again.
    CAUGHT = (Status.SUCCEEDED, Status.COMPLETED)
    # A result can overtake the courier's acknowledgement (a push before the answer is
    # recorded), so a submitted request may also succeed or fail directly.
    TRANSITIONS = {
        Status.CREATED: {Status.SUBMITTED, Status.REJECTED, Status.CANCELLED},
        Status.SUBMITTED: {
            Status.ACCEPTED,
            Status.REJECTED,
            Status.SUCCEEDED,
            Status.FAILED,
            Status.CANCELLED,
        },
        Status.ACCEPTED: {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED},
        Status.SUCCEEDED: {Status.COMPLETED},
        Status.COMPLETED: set(),
        Status.REJECTED: set(),
        Status.FAILED: set(),
        Status.CANCELLED: set(),
    }

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="+", verbose_name=_("shop"), db_index=False
    )
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.PROTECT,
        related_name="intercepts",
        verbose_name=_("parcel"),
        db_index=False,
    )
    after_sale = models.ForeignKey(
        AfterSale,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="intercepts",
        verbose_name=_("after-sale"),
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    # Where the parcel was when the merchant asked: what the chance of success is learnt from.
    stage_at_request = models.CharField(
        _("stage when requested"), max_length=24, choices=ParcelStage.choices, blank=True
    )
    new_address = models.JSONField(_("new address"), default=dict, blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.CREATED
    )
    fee_fen = MoneyField(_("fee (yuan)"))
    courier_reference = models.CharField(_("courier reference"), max_length=64, blank=True)
    failure_code = models.CharField(_("failure reason code"), max_length=32, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    reason = models.CharField(_("reason given"), max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    # The confirming form's one-time token (or an API client's Idempotency-Key): a repeated
    # confirmation finds the request it already made instead of making another.
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=64, blank=True, editable=False
    )
    # Sending to the courier: how often, and when last (the reconciler's clock).
    send_attempts = models.PositiveSmallIntegerField(_("times sent"), default=0, editable=False)
    last_sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True, editable=False)
    withdraw_requested_at = models.DateTimeField(
        _("withdrawal asked at"), null=True, blank=True, editable=False
    )
    # When it moved to succeeded (``intercept_set_status``): the clock of "not back in time".
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True, editable=False)
    # "Claim suggested" and why (``intercepts.services.claim_watch``); blank when not suggested.
    claim_suggestion = models.CharField(
        _("claim suggested"),
        max_length=16,
        choices=ClaimSuggestion.choices,
        blank=True,
        editable=False,
    )
    claim_suggested_at = models.DateTimeField(
        _("claim suggested at"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    objects = InterceptRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("intercept record")
        verbose_name_plural = _("intercept records")
        ordering = ("-id",)
        indexes = [
            models.Index(fields=("shop", "-id"), name="intercept_shop_idx"),
            models.Index(fields=("status", "-id"), name="intercept_status_idx"),
            models.Index(fields=("stage_at_request", "status"), name="intercept_stage_outcome_idx"),
            # Tracking updates look up the requests on the parcels they moved.
            models.Index(fields=("parcel",), name="intercept_parcel_idx"),
            # The reconciler's queue: requests sent and not yet answered.
            models.Index(
                fields=("last_sent_at",),
                condition=Q(status="submitted"),
                name="intercept_unanswered_idx",
            ),
            # The claim watch's queue: succeeded, not yet suggested, oldest success first.
            models.Index(
                fields=("succeeded_at",),
                condition=Q(status="succeeded", claim_suggested_at__isnull=True),
                name="intercept_claim_watch_idx",
            ),
            # The workbench's "claim suggested" filter, of one shop or all.
            models.Index(
                fields=("shop", "-id"),
                condition=~Q(claim_suggestion=""),
                name="intercept_claim_suggested_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("shop", "idempotency_key"),
                condition=~Q(idempotency_key=""),
                name="intercept_idempotency_key_unique",
            ),
            models.UniqueConstraint(
                fields=("parcel",),
                condition=Q(status__in=OPEN_INTERCEPT_STATUSES),
                name="intercept_one_open_per_parcel",
            ),
        ]

    def __str__(self) -> str:
        # No status here: the page title would go stale while the status panel moves on.
        return f"{self.get_action_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    # What a caught parcel means for the buyer's after-sale, kind by kind. Every kind here ends
    # in a refund once the goods are back with the merchant: refund only (the buyer is not to
    # get the goods), return and refund (the courier does the return), cancel order (nothing
    # was to be delivered). A change of address delivers the goods all the same, so it calls
    # for no refund on any kind: the buyer would keep the goods and the money.
    REFUND_ON_RETURN_KINDS = frozenset(
        {
            AfterSale.Kind.REFUND_ONLY,
            AfterSale.Kind.RETURN_AND_REFUND,
            AfterSale.Kind.CANCEL_ORDER,
        }
    )

    @classmethod
    def calls_for_refund(cls, *, action: str, after_sale_kind: str) -> bool:
        """Whether this intercept, once it succeeds, means the buyer's refund should be
        approved (prompted, or approved at once for a shop that chose so)."""
        return action == cls.Action.RETURN and after_sale_kind in cls.REFUND_ON_RETURN_KINDS

    @property
    def new_address_line(self) -> str:
        """The new address of a change of address on one line, as pages show it."""
        address = self.new_address or {}
        return " ".join(
            str(address[key])
            for key in ("name", "phone", "province", "city", "district", "address")
            if address.get(key)
        )

    @property
    def hold_reference(self) -> str:
        """What the fee is held under in billing: one hold, one charge, whatever the retries."""
        return f"{HOLD_REFERENCE_PREFIX}{self.pk}"


class InterceptEvent(StatusHistory):
    """Append-only history of an intercept request: who or what moved it, and what came with it."""

    class Source(models.TextChoices):
        USER = "user", _("User")
        COURIER_ANSWER = "answer", _("Courier's answer")
        PUSH = "push", _("Courier push")
        POLL = "poll", _("Tracking poll")
        RECONCILER = "reconciler", _("Reconciler")
        SYSTEM = "system", _("System")

    intercept = models.ForeignKey(
        InterceptRequest,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("intercept record"),
    )
    from_status, to_status = status_fields(InterceptRequest.Status)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    payload = models.JSONField(_("courier payload"), null=True, blank=True)

    class Meta(StatusHistory.Meta):
        verbose_name = _("intercept event")
        verbose_name_plural = _("intercept events")


class CourierPush(models.Model):
    """Every push a courier gateway sent us, as received, and what became of it."""

    EXCERPT_CHARS = 2000

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received, not yet applied")
        ACCEPTED = "accepted", _("Accepted")
        REFUSED = "refused", _("Refused")
        FAILED = "failed", _("Failed while applying")

    account = models.ForeignKey(
        "couriers.CourierAccount",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("gateway account"),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    # A refused push keeps only the first EXCERPT_CHARS characters of its body, with the whole
    # body's size and SHA-256 (blank where the body was too large to be read).
    body = models.TextField(_("raw body"))
    body_size = models.PositiveIntegerField(_("body size (bytes)"), default=0)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    error = models.CharField(_("error"), max_length=255, blank=True)
    parcels_updated = models.PositiveIntegerField(_("parcels updated"), default=0)
    # On the one row that marks an account's refused pushes going over the limit in a minute:
    # how many more were refused that minute and answered, but not stored.
    refused_dropped = models.PositiveIntegerField(_("refused pushes not stored"), default=0)

    class Meta:
        verbose_name = _("courier push")
        verbose_name_plural = _("courier pushes")
        ordering = ("-received_at", "-id")
        indexes = [
            models.Index(fields=("-received_at", "-id"), name="courier_push_received_idx"),
            models.Index(fields=("status", "-received_at"), name="courier_push_status_idx"),
            # The drain's queue: small, as received pushes are applied within moments.
            models.Index(
                fields=("id",),
                condition=models.Q(status="received"),
                name="courier_push_received_queue",
            ),
        ]

    def __str__(self) -> str:
        # Shown as the page's title: in local time and in words, as the page's fields are.
        received = timezone.localtime(self.received_at)
        return f"{self.account} {received:%Y-%m-%d %H:%M:%S} {self.get_status_display()}"


# Shipping an order, and the platform's checks against fake shipping (Kuaishou's 虚假发货拦截).


def shipment_uploads_storage():
    from django.core.files.storage import storages

    return storages["shipment_uploads"]


class ShipmentUpload(models.Model):
    """A spreadsheet of shipments a shop uploaded: parsed and checked in a Celery task, shown as
    a preview, then applied row by row (``intercepts.services.shipment_uploads``)."""

    class Status(models.TextChoices):
        PARSING = "parsing", _("Reading the file")
        PREVIEW = "preview", _("Awaiting confirmation")
        APPLYING = "applying", _("Shipping")
        DONE = "done", _("Done")
        FAILED = "failed", _("File not readable")

    TRANSITIONS = {
        # A file with no row to ship is done once read: there is nothing to confirm.
        Status.PARSING: {Status.PREVIEW, Status.DONE, Status.FAILED},
        Status.PREVIEW: {Status.APPLYING},
        Status.APPLYING: {Status.DONE},
        Status.DONE: set(),
        Status.FAILED: set(),
    }

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="shipment_uploads", verbose_name=_("shop")
    )
    file = models.FileField(
        _("file"), upload_to="shipments/%Y/%m/", storage=shipment_uploads_storage, max_length=255
    )
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("file digest (SHA-256)"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PARSING
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    parsed_rows = models.PositiveIntegerField(_("rows read"), default=0)
    valid_rows = models.PositiveIntegerField(_("valid rows"), default=0)
    failed_rows = models.PositiveIntegerField(_("failed rows"), default=0)
    flagged_rows = models.PositiveIntegerField(_("rows flagged"), default=0)
    applied_rows = models.PositiveIntegerField(_("rows shipped"), default=0)
    refused_rows = models.PositiveIntegerField(_("rows refused when shipping"), default=0)
    error = models.CharField(_("why the file could not be read"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    applied_at = models.DateTimeField(_("shipped at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipment upload")
        verbose_name_plural = _("shipment uploads")
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("shop", "-created_at"), name="shipupload_shop_created_idx"),
            models.Index(fields=("shop", "sha256"), name="shipupload_shop_digest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} #{self.pk}"


class ShipmentUploadEvent(StatusHistory):
    upload = models.ForeignKey(
        ShipmentUpload,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("shipment upload"),
    )
    from_status, to_status = status_fields(ShipmentUpload.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("shipment upload event")
        verbose_name_plural = _("shipment upload events")


class ShipmentUploadRow(models.Model):
    """One row of an uploaded file, as read and judged; its outcome once applied."""

    class Outcome(models.TextChoices):
        VALID = "valid", _("Ready to ship")
        FAILED = "failed", _("Failed")
        SHIPPED = "shipped", _("Shipped")
        ALREADY = "already", _("Already shipped with this waybill")
        REFUSED = "refused", _("Refused when shipping")

    upload = models.ForeignKey(
        ShipmentUpload,
        on_delete=models.CASCADE,
        related_name="rows",
        verbose_name=_("shipment upload"),
        db_index=False,  # the unique constraint leads with it
    )
    row_no = models.PositiveIntegerField(_("row"))
    order_no = models.CharField(_("order number"), max_length=64, blank=True)
    courier_text = models.CharField(_("courier"), max_length=64, blank=True)
    waybill_no = models.CharField(_("waybill number"), max_length=64, blank=True)
    order = models.ForeignKey(
        Order,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("order"),
        db_index=False,
    )
    courier = models.ForeignKey(
        Courier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("courier"),
        db_index=False,
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    code = models.CharField(_("reason code"), max_length=32, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    # Accepted, but on a waybill already used for another address: a suspected fake shipment.
    flagged = models.BooleanField(_("flagged"), default=False)

    class Meta:
        verbose_name = _("shipment upload row")
        verbose_name_plural = _("shipment upload rows")
        ordering = ("upload", "row_no")
        constraints = [
            models.UniqueConstraint(fields=("upload", "row_no"), name="shipupload_row_unique"),
        ]
        indexes = [
            models.Index(fields=("upload", "outcome", "row_no"), name="shipupload_row_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.row_no} {self.order_no} {self.waybill_no}"


class Shipment(models.Model):
    """An order shipped in a parcel: the record the shipment rules count. Several orders of one
    buyer and address may share a parcel (merged shipping); an order in several parcels has a
    shipment per parcel."""

    class Channel(models.TextChoices):
        WORKBENCH = "workbench", _("Workbench")
        UPLOAD = "upload", _("Batch upload")
        API = "api", _("API")

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="+", verbose_name=_("shop"), db_index=False
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="shipments",
        verbose_name=_("order"),
        db_index=False,  # the unique constraint leads with it
    )
    parcel = models.ForeignKey(
        Parcel, on_delete=models.PROTECT, related_name="shipments", verbose_name=_("parcel")
    )
    # The receiver the order named, normalised (``services.shipping.receiver_key``): what
    # "another address" means for the rules.
    receiver_key = models.CharField(_("receiver key"), max_length=300)
    receiver_address = models.CharField(_("receiver address"), max_length=255)
    flagged = models.BooleanField(_("suspected fake shipment"), default=False)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    upload = models.ForeignKey(
        ShipmentUpload,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shipments",
        verbose_name=_("shipment upload"),
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        db_index=False,
    )
    shipped_at = models.DateTimeField(_("shipped at"), default=timezone.now)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ("shipped_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("order", "parcel"), name="shipment_order_parcel_unique")
        ]
        indexes = [
            # A shop's shipments, newest first (the API's list).
            models.Index(fields=("shop", "-id"), name="shipment_shop_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} → {self.parcel_id}"


class ShipmentAnomaly(models.Model):
    """A sign of fake shipping on an order's parcel, with its reason and history. The merchant
    may answer it; platform customer service rules on it; a stall clears by itself when the
    parcel reaches a final stage (``intercepts.services.shipment_checks``)."""

    class Kind(models.TextChoices):
        SHARED_WAYBILL = "shared_waybill", _("Waybill used for another address")
        PICKUP_BEFORE_PAYMENT = "pickup_before_payment", _("Picked up before payment")
        STALLED_6D = "stalled_6d", _("No final stage 6 days after shipping")
        STALLED_10D = "stalled_10d", _("No final stage 10 days after shipping")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Explained by the merchant")
        UPHELD = "upheld", _("Upheld by the platform")
        DISMISSED = "dismissed", _("Dismissed by the platform")
        CLEARED = "cleared", _("Cleared: final stage reached")

    TRANSITIONS = {
        Status.OPEN: {Status.ANSWERED, Status.UPHELD, Status.DISMISSED, Status.CLEARED},
        Status.ANSWERED: {Status.UPHELD, Status.DISMISSED, Status.CLEARED},
        Status.UPHELD: {Status.CLEARED},
        Status.DISMISSED: set(),
        Status.CLEARED: set(),
    }
    OPEN_STATUSES = (Status.OPEN, Status.ANSWERED, Status.UPHELD)
    # Kinds the parcel's arrival at a final stage settles; the others are ruled on.
    STALLS = (Kind.STALLED_6D, Kind.STALLED_10D)

    shop = models.ForeignKey(
        Shop, on_delete=models.PROTECT, related_name="+", verbose_name=_("shop"), db_index=False
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="anomalies",
        verbose_name=_("order"),
        db_index=False,  # the unique constraint leads with it
    )
    parcel = models.ForeignKey(
        Parcel,
        on_delete=models.PROTECT,
        related_name="anomalies",
        verbose_name=_("parcel"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    reason = models.CharField(_("reason"), max_length=255)
    detected_at = models.DateTimeField(_("detected at"), default=timezone.now)
    explanation = models.TextField(_("merchant's explanation"), blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipment anomaly")
        verbose_name_plural = _("shipment anomalies")
        ordering = ("-detected_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("order", "parcel", "kind"), name="shipanomaly_one_per_kind"
            )
        ]
        indexes = [
            models.Index(fields=("shop", "status", "-detected_at"), name="shipanomaly_shop_idx"),
            models.Index(fields=("status", "kind", "-detected_at"), name="shipanomaly_status_idx"),
            models.Index(
                fields=("parcel",),
                condition=Q(status__in=("open", "answered", "upheld")),
                name="shipanomaly_open_parcel_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ShipmentAnomalyEvent(StatusHistory):
    anomaly = models.ForeignKey(
        ShipmentAnomaly,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("shipment anomaly"),
    )
    from_status, to_status = status_fields(ShipmentAnomaly.Status)

    class Meta(StatusHistory.Meta):
        verbose_name = _("shipment anomaly event")
        verbose_name_plural = _("shipment anomaly events")


class ShipmentAnomalyEvidence(models.Model):
    """A photo or PDF a merchant gave with an explanation: stored privately, served only to
    those who may see the anomaly."""

    anomaly = models.ForeignKey(
        ShipmentAnomaly,
        on_delete=models.CASCADE,
        related_name="evidence",
        verbose_name=_("shipment anomaly"),
    )
    file = models.FileField(
        _("file"), upload_to="anomalies/%Y/%m/", storage=shipment_uploads_storage, max_length=255
    )
    original_name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=64)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("file digest (SHA-256)"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("anomaly evidence")
        verbose_name_plural = _("anomaly evidence")
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return self.original_name
