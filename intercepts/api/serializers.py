"""What the ERP API reads and writes for after-sales, parcels, intercepts and shipments."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from intercepts.models import (
    AfterSale,
    InterceptRequest,
    Parcel,
    Shipment,
    ShipmentAnomaly,
    TrackingEvent,
    mask_phone,
)

# Named in the schema's enums (``SPECTACULAR_SETTINGS``): InterceptRequest has a "channel" too.
SHIPMENT_CHANNEL_CHOICES = Shipment.Channel.choices


class AfterSaleSerializer(serializers.ModelSerializer):
    order_no = serializers.CharField(source="order.order_no", read_only=True)
    parcel_ids = serializers.SerializerMethodField()

    class Meta:
        model = AfterSale
        fields = (
            "id",
            "order_no",
            "kind",
            "status",
            "arbitration",
            "refund_amount_fen",
            "reason",
            "parcel_ids",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_parcel_ids(self, after_sale) -> list[int]:
        # Prefetched by the view: no query per row.
        return sorted(parcel.pk for parcel in after_sale.order.parcels.all())


class TrackingEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrackingEvent
        fields = ("occurred_at", "stage", "raw_code", "description", "location", "source")
        read_only_fields = fields


class ParcelSerializer(serializers.ModelSerializer):
    order_no = serializers.CharField(source="order.order_no", read_only=True)
    courier = serializers.CharField(source="courier.code", read_only=True)
    receiver_phone = serializers.SerializerMethodField(
        help_text=_("Masked, as the workbench shows it.")
    )

    class Meta:
        model = Parcel
        fields = (
            "id",
            "order_no",
            "courier",
            "waybill_no",
            "stage",
            "declared_value_fen",
            "receiver_name",
            "receiver_phone",
            "shipped_at",
            "picked_up_at",
            "signed_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_receiver_phone(self, parcel) -> str:
        return mask_phone(parcel.receiver_phone)


class ParcelDetailSerializer(ParcelSerializer):
    tracking_events = TrackingEventSerializer(many=True, read_only=True)

    class Meta(ParcelSerializer.Meta):
        fields = (*ParcelSerializer.Meta.fields, "tracking_events")
        read_only_fields = fields


class RuleSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("The rule's stable code, as the workbench shows."))
    title = serializers.CharField()
    passed = serializers.BooleanField(
        allow_null=True, help_text=_("Null when the platform does not apply the rule.")
    )
    message = serializers.CharField(allow_blank=True)


class ChanceSerializer(serializers.Serializer):
    probability = serializers.FloatField()
    from_own_outcomes = serializers.BooleanField()
    outcomes = serializers.IntegerField()


class EligibilitySerializer(serializers.Serializer):
    parcel = serializers.IntegerField()
    after_sale = serializers.IntegerField()
    action = serializers.ChoiceField(choices=InterceptRequest.Action.choices)
    eligible = serializers.BooleanField()
    rules = RuleSerializer(many=True)
    fee_fen = serializers.IntegerField(allow_null=True)
    fee_error = serializers.CharField(allow_blank=True)
    chance = ChanceSerializer()


class EligibilityQuerySerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=InterceptRequest.Action.choices, default=InterceptRequest.Action.RETURN
    )
    after_sale = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text=_("The after-sale to judge it under; the order's latest one when left out."),
    )


class NewAddressSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    phone = serializers.CharField(max_length=20)
    province = serializers.CharField(max_length=20)
    city = serializers.CharField(max_length=20)
    district = serializers.CharField(max_length=20, required=False, allow_blank=True)
    address = serializers.CharField(max_length=200)


class InterceptSerializer(serializers.ModelSerializer):
    waybill_no = serializers.CharField(source="parcel.waybill_no", read_only=True)
    courier = serializers.CharField(source="parcel.courier.code", read_only=True)
    fee_state = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text=_("What was done with the fee: held, captured or released."),
    )

    class Meta:
        model = InterceptRequest
        fields = (
            "id",
            "after_sale",
            "parcel",
            "waybill_no",
            "courier",
            "action",
            "status",
            "channel",
            "stage_at_request",
            "fee_fen",
            "fee_state",
            "courier_reference",
            "failure_code",
            "failure_reason",
            "reason",
            "new_address",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class InterceptCreateSerializer(serializers.Serializer):
    after_sale = serializers.IntegerField(min_value=1)
    parcel = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=InterceptRequest.Action.choices)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    new_address = NewAddressSerializer(
        required=False, help_text=_("Required for a change of address.")
    )

    def validate(self, attrs):
        if attrs["action"] == InterceptRequest.Action.REDIRECT and not attrs.get("new_address"):
            raise serializers.ValidationError(
                {"new_address": [_("A change of address needs the new address.")]}
            )
        return attrs


class ShipmentSerializer(serializers.ModelSerializer):
    order_no = serializers.CharField(source="order.order_no", read_only=True)
    courier = serializers.CharField(source="parcel.courier.code", read_only=True)
    waybill_no = serializers.CharField(source="parcel.waybill_no", read_only=True)
    flagged = serializers.BooleanField(
        read_only=True,
        help_text=_(
            "The waybill also carries an order of another receiver: a suspected fake shipment, "
            "with its anomaly."
        ),
    )

    class Meta:
        model = Shipment
        fields = (
            "id",
            "order_no",
            "courier",
            "waybill_no",
            "parcel",
            "flagged",
            "channel",
            "shipped_at",
        )
        read_only_fields = fields


class ShipmentResultSerializer(ShipmentSerializer):
    created = serializers.BooleanField(
        read_only=True,
        help_text=_(
            "False when the order was already shipped with this waybill (nothing changed)."
        ),
    )

    class Meta(ShipmentSerializer.Meta):
        fields = (*ShipmentSerializer.Meta.fields, "created")
        read_only_fields = fields


class ShipmentCreateSerializer(serializers.Serializer):
    order_no = serializers.CharField(max_length=64, help_text=_("The platform's order number."))
    courier = serializers.CharField(
        max_length=64, help_text=_("The courier's code, e.g. ZTO (its Chinese name also works).")
    )
    waybill_no = serializers.CharField(max_length=64)


class ShipmentAnomalySerializer(serializers.ModelSerializer):
    order_no = serializers.CharField(source="order.order_no", read_only=True)
    courier = serializers.CharField(source="parcel.courier.code", read_only=True)
    waybill_no = serializers.CharField(source="parcel.waybill_no", read_only=True)
    settlement_held = serializers.SerializerMethodField(
        help_text=_("The order's settlement is held while a 10-day stall of it is open.")
    )

    class Meta:
        model = ShipmentAnomaly
        fields = (
            "id",
            "order_no",
            "courier",
            "waybill_no",
            "parcel",
            "kind",
            "status",
            "reason",
            "detected_at",
            "explanation",
            "closed_at",
            "settlement_held",
        )
        read_only_fields = fields

    def get_settlement_held(self, anomaly) -> bool:
        return anomaly.order.settlement_held_at is not None
