"""The ERP API's claims: file one (with its evidence) on an intercept that succeeded, see the
ceiling first, list, read with evidence and history, fetch an evidence file, withdraw. Every
queryset is scoped to the key's shop, so another shop's claim or intercept is simply not found."""

import json
import logging

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from claims import services
from claims.api import examples, filters, serializers
from claims.evidence import ACCEPTED_TYPES
from claims.models import Claim, ClaimEvent, ClaimEvidence
from claims.services import ClaimError
from intercepts.models import InterceptRequest
from shops.access import scope_to_shops
from shops.api.errors import ApiError, not_found
from shops.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from shops.api.idempotency import idempotent

logger = logging.getLogger(__name__)

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


def _refusal(exc: ClaimError, intercept: InterceptRequest | None = None) -> ApiError:
    """A claim rule's refusal: 422 with the rule's code and its message in the user's words."""
    details = {}
    if isinstance(exc.__cause__, ValidationError):  # the evidence check: one line per file
        details = {"evidence": exc.__cause__.messages}
    elif exc.code == "over_ceiling" and intercept is not None:
        _value_fen, ceiling_fen = services.claim_ceiling_fen(intercept.parcel)
        details = {"ceiling_fen": ceiling_fen}
    return ApiError(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        code=exc.code,
        message=str(exc),
        details=details,
    )


def _intercept(request, intercept_id: int) -> InterceptRequest:
    """The key's shop's intercept, or 404 whoever else's it is."""
    queryset = InterceptRequest.objects.select_related("parcel__courier")
    intercept = scope_to_shops(queryset, request.user).filter(pk=intercept_id).first()
    if intercept is None:
        raise not_found()
    return intercept


@extend_schema_view(
    list=extend_schema(examples=examples.listed("Claims", examples.CLAIM)),
    retrieve=extend_schema(
        description=(
            "A claim with its evidence (each file from `/api/v1/claims/{id}/evidence/"
            "{evidence_id}/`), its history, oldest first, and the courier's complaint phone.\n\n"
            "Its filing and every status change are also sent to the shop's webhook endpoints "
            "as `claim.status_changed`, in order, with this `data` (`from` is null at filing, "
            "`payout` null until paid):\n\n```json\n"
            + json.dumps(examples.WEBHOOK_DATA, indent=2)
            + "\n```"
        ),
        examples=examples.one("A claim with its evidence and history", examples.CLAIM_DETAIL),
    ),
)
class ClaimViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = filters.ClaimFilter
    lookup_value_regex = "[0-9]+"
    # A claim is created with its files; the other writes take no body.
    parser_classes = [MultiPartParser]

    def get_serializer_class(self):
        if self.action == "list":
            return serializers.ClaimSerializer
        return serializers.ClaimDetailSerializer

    def get_queryset(self):
        queryset = Claim.objects.select_related("parcel", "courier")
        if self.action in ("retrieve", "create", "withdraw"):
            queryset = queryset.prefetch_related(
                Prefetch("evidence", queryset=ClaimEvidence.objects.order_by("id")),
                Prefetch("events", queryset=ClaimEvent.objects.order_by("created_at", "id")),
            )
        return scope_to_shops(queryset, self.request.user)

    def perform_content_negotiation(self, request, force=False):
        # An evidence file answers in its own type whatever the client accepts; its refusals
        # still answer JSON.
        return super().perform_content_negotiation(
            request, force=force or self.action == "evidence"
        )

    def _detail(self, claim_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        claim = self.get_queryset().get(pk=claim_id)
        return Response(self.get_serializer(claim).data, status=status_code)

    @extend_schema(
        request={"multipart/form-data": serializers.ClaimCreateSerializer},
        responses={201: serializers.ClaimDetailSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        examples=[
            OpenApiExample(
                "Lost on the way back, with a photo",
                value={
                    "intercept": 301,
                    "reason": "lost",
                    "amount_claimed_fen": 12900,
                    "description": "拦截成功后退回途中丢失，至今未退回仓库",
                    "evidence": ["(the photo's bytes)"],
                },
                request_only=True,
            ),
            *examples.one("Filed", examples.CLAIM_DETAIL),
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        """File a claim on an intercept of the shop that succeeded and whose parcel was then
        lost or damaged (or, for a change of address, never reached it): multipart/form-data,
        with photos or PDFs under ``evidence``. Refused (422) with the rule's code:
        ``not_succeeded``, ``already_claimed``, ``over_ceiling``, ``no_value``,
        ``evidence_refused`` (nothing is stored) or ``refused``."""
        body = serializers.ClaimCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        intercept = _intercept(request, data["intercept"])
        try:
            claim = services.claim_file(
                actor=request.user,
                intercept=intercept,
                reason=data["reason"],
                amount_claimed_fen=data["amount_claimed_fen"],
                description=data["description"],
                files=data["evidence"],
            )
        except ClaimError as exc:
            raise _refusal(exc, intercept) from exc
        return self._detail(claim.pk, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[serializers.ClaimCeilingQuerySerializer],
        responses=serializers.ClaimCeilingSerializer,
        examples=[
            *examples.one("Claimable", examples.CEILING),
            *examples.one(
                "Already claimed",
                {
                    **examples.CEILING,
                    "claimable": False,
                    "refusal_code": "already_claimed",
                    "refusal": "此拦截已申请过索赔 #88。",
                },
            ),
        ],
    )
    @action(detail=False, methods=["get"])
    def ceiling(self, request):
        """The most a claim on this intercept may ask (the value of the goods in its parcel,
        and at most 1,000 yuan), and whether one can be filed now, before filing it."""
        query = serializers.ClaimCeilingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        intercept = _intercept(request, query.validated_data["intercept"])
        parcel = intercept.parcel
        value_fen, ceiling_fen = services.claim_ceiling_fen(parcel)
        refusal = services.claim_refusal(intercept)
        code = services.claim_refusal_code(intercept) if refusal else None
        if refusal is None and ceiling_fen <= 0:
            code = "no_value"
            refusal = _("The goods in this parcel have no recorded value; nothing to claim.")
        data = {
            "intercept": intercept.pk,
            "parcel": parcel.pk,
            "waybill_no": parcel.waybill_no,
            "courier": parcel.courier.code,
            "goods_value_fen": value_fen,
            "ceiling_fen": ceiling_fen,
            "claimable": refusal is None,
            "refusal_code": code,
            "refusal": refusal or "",
        }
        return Response(serializers.ClaimCeilingSerializer(data).data)

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_OPTIONAL],
        examples=examples.one(
            "Withdrawn",
            {
                **examples.CLAIM_DETAIL,
                "status": "withdrawn",
                "events": [
                    examples.EVENT,
                    {
                        "from_status": "submitted",
                        "to_status": "withdrawn",
                        "note": "已撤回。",
                        "created_at": "2026-12-15T10:00:00+08:00",
                    },
                ],
            },
        ),
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=False)
    def withdraw(self, request, pk=None):
        """Take the claim back, until the courier approves it; withdrawing a withdrawn claim
        answers it as it is. Refused (422 ``not_withdrawable``) once approved or decided."""
        claim = self.get_object()
        if claim.status != Claim.Status.WITHDRAWN:
            try:
                services.claim_withdraw(actor=request.user, claim=claim)
            except ClaimError as exc:
                raise _refusal(exc) from exc
        return self._detail(claim.pk)

    @extend_schema(
        parameters=[OpenApiParameter("evidence_id", int, OpenApiParameter.PATH)],
        responses={(200, content_type): OpenApiTypes.BINARY for content_type in ACCEPTED_TYPES},
    )
    @action(detail=True, methods=["get"], url_path=r"evidence/(?P<evidence_id>[0-9]+)")
    def evidence(self, request, pk=None, evidence_id=None):
        """One evidence file of the claim, as sent, in its detected type (an attachment);
        only to the shop's own keys."""
        claim = self.get_object()
        item = ClaimEvidence.objects.filter(claim=claim, pk=evidence_id).first()
        if item is None:
            raise not_found()
        try:
            handle = item.file.open("rb")
        except FileNotFoundError:
            logger.error("Evidence %s of claim %s is missing from storage", item.pk, claim.pk)
            raise not_found() from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=item.original_name,
            content_type=item.content_type,
        )
        response["Cache-Control"] = "private, no-store"
        return response
