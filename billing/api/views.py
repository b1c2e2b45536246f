"""The ERP API's wallet and invoice endpoints, scoped to the key's shop."""

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.response import Response

from billing import selectors, services
from billing.api import examples, filters, serializers
from billing.models import InvoiceLine, InvoiceRequest, LedgerEntry, Wallet
from shops.access import scope_to_shops
from shops.api.errors import ApiError
from shops.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shops.api.idempotency import idempotent


def _wallet(request) -> Wallet:
    wallet = scope_to_shops(Wallet.objects.all(), request.user).filter(shop_id=request.auth.shop_id)
    wallet = wallet.first()
    if wallet is None:
        raise ApiError(
            status_code=status.HTTP_404_NOT_FOUND,
            code="no_wallet",
            message=_("The shop has no wallet yet; its owner or finance must open it."),
        )
    return wallet


class WalletView(generics.GenericAPIView):
    serializer_class = serializers.WalletSerializer

    @extend_schema(examples=[OpenApiExample("Balances", value=examples.WALLET)])
    def get(self, request):
        """The wallet's available and held money, in fen."""
        wallet = _wallet(request)
        balances = selectors.wallet_balances(shop_id=wallet.shop_id)
        return Response(self.get_serializer(balances).data)


@extend_schema_view(
    get=extend_schema(
        examples=[
            OpenApiExample(
                "Movements",
                value={"next": None, "previous": None, "results": [examples.WALLET_ENTRY]},
            )
        ]
    )
)
class WalletEntryList(generics.ListAPIView):
    """The wallet's movements, newest first: one line per posting, as the workbench lists them."""

    serializer_class = serializers.WalletEntrySerializer
    filterset_class = filters.WalletEntryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's dry run
            return LedgerEntry.objects.none()
        return selectors.movement_entries(wallet_id=_wallet(self.request).pk)


@extend_schema_view(
    list=extend_schema(
        examples=[
            OpenApiExample(
                "Invoice requests",
                value={"next": None, "previous": None, "results": [examples.INVOICE]},
                response_only=True,
            )
        ]
    ),
    retrieve=extend_schema(
        examples=[OpenApiExample("An invoice request", value=examples.INVOICE, response_only=True)]
    ),
)
class InvoiceRequestViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = serializers.InvoiceRequestSerializer
    filterset_class = filters.InvoiceRequestFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        queryset = InvoiceRequest.objects.prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("pk"))
        )
        return scope_to_shops(queryset, self.request.user, shop_path="wallet__shop")

    @extend_schema(
        request=serializers.InvoiceRequestCreateSerializer,
        responses={201: serializers.InvoiceRequestSerializer},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, type=str, location=OpenApiParameter.HEADER, required=True
            )
        ],
        examples=[
            OpenApiExample(
                "Ordinary invoice over one month's fees",
                value={
                    "invoice_type": "digital_normal",
                    "title": "上海某某贸易有限公司",
                    "taxpayer_id": "91330100716105852F",
                    "charged_from": "2026-11-01T00:00:00+08:00",
                    "charged_until": "2026-12-01T00:00:00+08:00",
                },
                request_only=True,
            ),
            OpenApiExample("Requested", value=examples.INVOICE, response_only=True),
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        """Ask for an invoice over charged fees not yet invoiced (all, a period, a courier)."""
        body = serializers.InvoiceRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            invoice = services.invoice_request(
                actor=request.user, wallet=_wallet(request), **body.validated_data
            )
        except services.BillingError as exc:
            raise ApiError(
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                code="refused",
                message=str(exc),
            ) from exc
        invoice = self.get_queryset().get(pk=invoice.pk)
        return Response(self.get_serializer(invoice).data, status=status.HTTP_201_CREATED)
