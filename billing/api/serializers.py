"""What the ERP API reads and writes for the wallet and invoice requests."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from billing.models import InvoiceLine, InvoiceRequest, LedgerEntry
from billing.selectors import movement_amount_fen
from couriers.models import Courier
from shops.api.fields import CodeRelatedField


class WalletSerializer(serializers.Serializer):
    available_fen = serializers.IntegerField(help_text=_("Money free to pay fees, in fen."))
    held_fen = serializers.IntegerField(help_text=_("Fees held for intercepts in progress."))


class WalletEntrySerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="transaction.kind", read_only=True)
    reference = serializers.CharField(source="transaction.reference", read_only=True)
    memo = serializers.CharField(source="transaction.memo", read_only=True)
    amount_fen = serializers.SerializerMethodField(
        help_text=_("The change of the available money; for a fee charged, the fee.")
    )
    available_after_fen = serializers.IntegerField(source="available_after", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = (
            "id",
            "kind",
            "reference",
            "amount_fen",
            "available_after_fen",
            "memo",
            "created_at",
        )
        read_only_fields = fields

    def get_amount_fen(self, entry) -> int:
        return movement_amount_fen(entry)


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ("reference", "courier_name", "amount_fen", "charged_at")
        read_only_fields = fields


class InvoiceRequestSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = InvoiceRequest
        fields = (
            "id",
            "invoice_type",
            "title",
            "taxpayer_id",
            "address_phone",
            "bank_account",
            "status",
            "invoice_number",
            "amount_fen",
            "lines",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class InvoiceRequestCreateSerializer(serializers.Serializer):
    invoice_type = serializers.ChoiceField(choices=InvoiceRequest.Type.choices)
    title = serializers.CharField(max_length=100)
    taxpayer_id = serializers.CharField(max_length=30)
    address_phone = serializers.CharField(max_length=200, required=False, allow_blank=True)
    bank_account = serializers.CharField(max_length=200, required=False, allow_blank=True)
    charged_from = serializers.DateTimeField(required=False)
    charged_until = serializers.DateTimeField(required=False)
    courier = CodeRelatedField(
        slug_field="code",
        queryset=Courier.objects.all(),
        required=False,
        help_text=_("Only this courier's fees (its code, such as ZTO)."),
    )
