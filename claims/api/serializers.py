"""What the ERP API reads and writes for claims, their evidence and their history."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from claims.models import Claim, ClaimEvent, ClaimEvidence

# Named for the schema's enums (``SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]``).
CHANNEL_CHOICES = Claim.Channel.choices
PAYOUT_CHOICES = Claim.Payout.choices


class _BlankAsNull(serializers.ChoiceField):
    """A choice not made yet (a blank column) answered as null, as the webhooks do."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None


class ClaimEvidenceSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name", read_only=True)
    content_type = serializers.CharField(
        read_only=True, help_text=_("Detected from the file's content, not from its name.")
    )
    uploaded_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = ClaimEvidence
        fields = ("id", "name", "content_type", "size", "sha256", "uploaded_at")
        read_only_fields = fields


class ClaimEventSerializer(serializers.ModelSerializer):
    from_status = _BlankAsNull(
        choices=Claim.Status.choices, help_text=_("Null on the first row, the filing.")
    )

    class Meta:
        model = ClaimEvent
        fields = ("from_status", "to_status", "note", "created_at")
        read_only_fields = fields


class ClaimSerializer(serializers.ModelSerializer):
    waybill_no = serializers.CharField(source="parcel.waybill_no", read_only=True)
    courier = serializers.CharField(source="courier.code", read_only=True)
    payout = _BlankAsNull(
        choices=Claim.Payout.choices, help_text=_("How it was paid; null until paid.")
    )

    class Meta:
        model = Claim
        fields = (
            "id",
            "intercept",
            "parcel",
            "waybill_no",
            "courier",
            "reason",
            "description",
            "channel",
            "status",
            "goods_value_fen",
            "ceiling_fen",
            "amount_claimed_fen",
            "amount_approved_fen",
            "decision_note",
            "appeal_note",
            "appealed_at",
            "payout",
            "payment_reference",
            "paid_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields
        extra_kwargs = {
            "goods_value_fen": {"help_text": _("Read from the parcel's order lines, in fen.")},
            "ceiling_fen": {
                "help_text": _(
                    "The most that can be claimed: the goods' value, and at most 100000 "
                    "(1,000 yuan)."
                )
            },
        }


class ClaimDetailSerializer(ClaimSerializer):
    courier_name = serializers.CharField(source="courier.display_name", read_only=True)
    courier_phone = serializers.CharField(
        source="courier.service_phone",
        read_only=True,
        help_text=_("The courier's complaint and customer-service phone."),
    )
    evidence = ClaimEvidenceSerializer(
        many=True,
        read_only=True,
        help_text=_("Each file is fetched from /api/v1/claims/{id}/evidence/{evidence_id}/."),
    )
    events = ClaimEventSerializer(many=True, read_only=True, help_text=_("Oldest first."))

    class Meta(ClaimSerializer.Meta):
        fields = (
            *ClaimSerializer.Meta.fields,
            "courier_name",
            "courier_phone",
            "evidence",
            "events",
        )
        read_only_fields = fields


class ClaimCreateSerializer(serializers.Serializer):
    intercept = serializers.IntegerField(
        min_value=1, help_text=_("The intercept that succeeded, of the key's shop.")
    )
    reason = serializers.ChoiceField(choices=Claim.Reason.choices)
    amount_claimed_fen = serializers.IntegerField(
        min_value=1, help_text=_("At most the ceiling (GET /api/v1/claims/ceiling/), in fen.")
    )
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
    evidence = serializers.ListField(
        # Empty and odd files reach the content check, which refuses them in the user's words.
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        required=False,
        default=list,
        help_text=_("Photos (JPEG, PNG, WebP) or PDFs, judged by their content; repeat the field."),
    )


class ClaimCeilingQuerySerializer(serializers.Serializer):
    intercept = serializers.IntegerField(min_value=1)


class ClaimCeilingSerializer(serializers.Serializer):
    intercept = serializers.IntegerField()
    parcel = serializers.IntegerField()
    waybill_no = serializers.CharField()
    courier = serializers.CharField()
    goods_value_fen = serializers.IntegerField(
        help_text=_("The value of the goods in the parcel, from its order lines.")
    )
    ceiling_fen = serializers.IntegerField(help_text=_("The most that can be claimed."))
    claimable = serializers.BooleanField(help_text=_("Whether a claim can be filed now."))
    refusal_code = serializers.CharField(
        allow_null=True, help_text=_("Why not, for machines; null when claimable.")
    )
    refusal = serializers.CharField(
        allow_blank=True, help_text=_("Why not, in the request's language; empty when claimable.")
    )
