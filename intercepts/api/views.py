"""The ERP API's after-sale, parcel, intercept and shipment endpoints. Every queryset is scoped
to the key's shop through the one access object, so another shop's record is simply not found."""

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from intercepts.api import examples, filters, serializers
from intercepts.eligibility import fee_quote, intercept_eligibility, is_eligible
from intercepts.models import (
    AfterSale,
    InterceptRequest,
    Order,
    Parcel,
    Shipment,
    ShipmentAnomaly,
    TrackingEvent,
)
from intercepts.selectors import intercept_success_chance
from intercepts.services.errors import DomainError, IneligibleError
from intercepts.services.intercept_requests import intercept_withdraw, intercepts_request
from intercepts.services.shipping import (
    COURIER_UNKNOWN,
    ORDER_NOT_FOUND,
    ShippingRefused,
    find_courier,
    refusal_message,
    ship_order,
)
from shops.access import scope_to_shops
from shops.api.errors import ApiError, not_found
from shops.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shops.api.idempotency import idempotent

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=True,
    description=_("Any string up to 255 characters, new for each new request."),
)
IDEMPOTENCY_OPTIONAL = OpenApiParameter(
    IDEMPOTENCY_HEADER, type=str, location=OpenApiParameter.HEADER, required=False
)


def _refusal(exc: DomainError) -> ApiError:
    if isinstance(exc, IneligibleError):
        refused = [
            {"code": rule.code, "message": rule.message}
            for rule in exc.results
            if rule.passed is False
        ]
        return ApiError(
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            code="ineligible",
            message=str(exc),
            details={"rules": refused},
        )
    return ApiError(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY, code="refused", message=str(exc)
    )


@extend_schema_view(
    list=extend_schema(examples=examples.listed("After-sales", examples.AFTER_SALE)),
    retrieve=extend_schema(examples=examples.one("An after-sale", examples.AFTER_SALE)),
)
class AfterSaleViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.AfterSaleSerializer
    lookup_value_regex = "[0-9]+"
    filterset_class = filters.AfterSaleFilter

    def get_queryset(self):
        queryset = AfterSale.objects.select_related("order").prefetch_related(
            Prefetch("order__parcels", queryset=Parcel.objects.only("id", "order_id"))
        )
        return scope_to_shops(queryset, self.request.user)


@extend_schema_view(
    list=extend_schema(examples=examples.listed("Parcels", examples.PARCEL)),
    retrieve=extend_schema(
        examples=examples.one(
            "A parcel with its tracking",
            {**examples.PARCEL, "tracking_events": [examples.TRACKING_EVENT]},
        )
    ),
)
class ParcelViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = filters.ParcelFilter
    lookup_value_regex = "[0-9]+"

    def get_serializer_class(self):
        if self.action == "list":
            return serializers.ParcelSerializer
        return serializers.ParcelDetailSerializer

    def get_queryset(self):
        queryset = Parcel.objects.select_related("order", "courier")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                Prefetch("tracking_events", queryset=TrackingEvent.objects.order_by("occurred_at"))
            )
        return scope_to_shops(queryset, self.request.user)

    @extend_schema(
        parameters=[serializers.EligibilityQuerySerializer],
        responses=serializers.EligibilitySerializer,
        examples=[
            OpenApiExample(
                "Eligible",
                value={
                    "parcel": 42,
                    "after_sale": 7,
                    "action": "return",
                    "eligible": True,
                    "rules": [
                        {
                            "code": "stage_window",
                            "title": "物流阶段允许拦截",
                            "passed": True,
                            "message": "",
                        }
                    ],
                    "fee_fen": 300,
                    "fee_error": "",
                    "chance": {"probability": 0.88, "from_own_outcomes": False, "outcomes": 3},
                },
                response_only=True,
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def eligibility(self, request, pk=None):
        """Every rule's answer, the fee and the chance of success for intercepting the parcel."""
        parcel = self.get_object()
        query = serializers.EligibilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after_sales = scope_to_shops(AfterSale.objects.all(), request.user).filter(
            order_id=parcel.order_id
        )
        if "after_sale" in query.validated_data:
            after_sales = after_sales.filter(pk=query.validated_data["after_sale"])
        after_sale = after_sales.order_by("-created_at", "-id").first()
        if after_sale is None:
            raise not_found()
        action_code = query.validated_data["action"]
        results = intercept_eligibility(after_sale=after_sale, parcel=parcel, action=action_code)
        fee_fen, fee_error = fee_quote(parcel.courier_id, action_code)
        chance = intercept_success_chance(courier_id=parcel.courier_id, stage=parcel.stage)
        data = {
            "parcel": parcel.pk,
            "after_sale": after_sale.pk,
            "action": action_code,
            "eligible": is_eligible(results),
            "rules": [vars(result) for result in results],
            "fee_fen": fee_fen,
            "fee_error": fee_error,
            "chance": {
                "probability": round(chance.probability, 4),
                "from_own_outcomes": chance.from_own_outcomes,
                "outcomes": chance.outcomes,
            },
        }
        return Response(serializers.EligibilitySerializer(data).data)


@extend_schema_view(
    list=extend_schema(examples=examples.listed("Intercepts", examples.INTERCEPT)),
    retrieve=extend_schema(examples=examples.one("An intercept", examples.INTERCEPT)),
)
class InterceptViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = serializers.InterceptSerializer
    filterset_class = filters.InterceptFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        queryset = InterceptRequest.objects.with_fee_state().select_related("parcel__courier")
        return scope_to_shops(queryset, self.request.user)

    @extend_schema(
        request=serializers.InterceptCreateSerializer,
        responses={201: serializers.InterceptSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample(
                "Return to sender",
                value={"after_sale": 7, "parcel": 42, "action": "return", "reason": "买家仅退款"},
                request_only=True,
            ),
            OpenApiExample(
                "Change of address",
                value={
                    "after_sale": 7,
                    "parcel": 42,
                    "action": "redirect",
                    "new_address": {
                        "name": "张三",
                        "phone": "13800001234",
                        "province": "上海市",
                        "city": "上海市",
                        "district": "徐汇区",
                        "address": "漕溪北路 88 号",
                    },
                },
                request_only=True,
            ),
            *examples.one("Created", {**examples.INTERCEPT, "status": "created"}),
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        """Intercept a parcel of an after-sale: its fee is held from the wallet at once, and the
        courier is asked within seconds; follow the status here or by webhook."""
        body = serializers.InterceptCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        after_sale = (
            scope_to_shops(AfterSale.objects.all(), request.user)
            .filter(pk=data["after_sale"])
            .first()
        )
        parcel = (
            scope_to_shops(Parcel.objects.select_related("courier", "shop", "order"), request.user)
            .filter(pk=data["parcel"])
            .first()
        )
        if after_sale is None or parcel is None:
            raise not_found()
        try:
            [intercept] = intercepts_request(
                actor=request.user,
                after_sale=after_sale,
                parcels=[parcel],
                action=data["action"],
                reason=data.get("reason", ""),
                new_address=data.get("new_address"),
                # The service's own once-only key, per use of the Idempotency-Key.
                idempotency_key=f"api:{request.idempotency_record_id}",
            )
        except DomainError as exc:
            raise _refusal(exc) from exc
        intercept = self.get_queryset().get(pk=intercept.pk)
        return Response(self.get_serializer(intercept).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_OPTIONAL],
        examples=examples.one(
            "Withdrawn before it was sent",
            {**examples.INTERCEPT, "status": "cancelled", "fee_state": "released"},
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=False)
    def withdraw(self, request, pk=None):
        """Withdraw the intercept: at once if not sent yet, else by asking the courier."""
        intercept = self.get_object()
        try:
            intercept_withdraw(actor=request.user, intercept=intercept)
        except DomainError as exc:
            raise _refusal(exc) from exc
        intercept = self.get_queryset().get(pk=intercept.pk)
        return Response(self.get_serializer(intercept).data)


def _shipping_refusal(code: str, message: str) -> ApiError:
    return ApiError(status_code=status.HTTP_422_UNPROCESSABLE_ENTITY, code=code, message=message)


@extend_schema_view(
    list=extend_schema(examples=examples.listed("Shipments", examples.SHIPMENT)),
)
class ShipmentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = serializers.ShipmentSerializer
    filterset_class = filters.ShipmentFilter

    def get_queryset(self):
        queryset = Shipment.objects.select_related("order", "parcel__courier")
        return scope_to_shops(queryset, self.request.user)

    @extend_schema(
        request=serializers.ShipmentCreateSerializer,
        responses={
            201: serializers.ShipmentResultSerializer,
            200: serializers.ShipmentResultSerializer,
        },
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample(
                "Ship an order",
                value={
                    "order_no": "DY20261207000123",
                    "courier": "ZTO",
                    "waybill_no": "78123456789012",
                },
                request_only=True,
            ),
            *examples.one("Shipped", {**examples.SHIPMENT, "created": True}),
            OpenApiExample(
                "The waybill does not fit the courier",
                value={"code": "4009", "message": "运单号和物流公司不匹配", "details": {}},
                response_only=True,
                status_codes=["422"],
            ),
            OpenApiExample(
                "The waybill already carries orders of two other receivers",
                value={
                    "code": "three_addresses",
                    "message": "当前运单号对应3个收件地址，上传失败",
                    "details": {},
                },
                response_only=True,
                status_codes=["422"],
            ),
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        """Ship an order of the shop with a courier's waybill, under the platform's rules
        against fake shipping. 201 with the shipment; 200 with ``created: false`` when the
        order is already shipped with this waybill. ``flagged`` is true when the waybill also
        carries an order of another receiver (accepted, with a shipment anomaly). Refused (422)
        with the rule's code: ``4009`` (the waybill does not fit the courier),
        ``three_addresses``, ``waybill_taken``, ``order_not_found``, ``courier_unknown``,
        ``not_shippable``, ``nothing_to_ship``, ``no_address``."""
        body = serializers.ShipmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        # Another shop's order is not found, exactly as an order that does not exist.
        order = (
            scope_to_shops(Order.objects.all(), request.user)
            .filter(order_no=data["order_no"].strip())
            .first()
        )
        if order is None:
            raise _shipping_refusal(ORDER_NOT_FOUND, refusal_message(ORDER_NOT_FOUND))
        courier = find_courier(data["courier"])
        if courier is None:
            raise _shipping_refusal(COURIER_UNKNOWN, refusal_message(COURIER_UNKNOWN))
        try:
            shipped = ship_order(
                actor=request.user,
                order=order,
                courier=courier,
                waybill_no=data["waybill_no"],
                channel=Shipment.Channel.API,
            )
        except ShippingRefused as exc:
            raise _shipping_refusal(exc.code, exc.message) from exc
        shipment = self.get_queryset().get(pk=shipped.shipment.pk)
        shipment.created = shipped.created
        return Response(
            serializers.ShipmentResultSerializer(shipment).data,
            status=status.HTTP_201_CREATED if shipped.created else status.HTTP_200_OK,
        )


@extend_schema_view(
    list=extend_schema(examples=examples.listed("Shipment anomalies", examples.SHIPMENT_ANOMALY)),
    retrieve=extend_schema(examples=examples.one("A shipment anomaly", examples.SHIPMENT_ANOMALY)),
)
class ShipmentAnomalyViewSet(viewsets.ReadOnlyModelViewSet):
    """Signs of fake shipping the platform found on the shop's shipments: a waybill shared with
    another receiver, a pickup before payment, no final stage 6 or 10 days after shipping."""

    serializer_class = serializers.ShipmentAnomalySerializer
    filterset_class = filters.ShipmentAnomalyFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        queryset = ShipmentAnomaly.objects.select_related("order", "parcel__courier")
        return scope_to_shops(queryset, self.request.user)
