"""The platform's checks after shipping, per shipped order (Kuaishou's 虚假发货订单拦截).

- A waybill used for a second receiver is flagged when it is recorded (``shipping``).
- A pickup scan earlier than the order's payment is an anomaly, found when tracking arrives.
- No final stage (signed, refused, returned) ``shipment_notice_days`` (6) after shipping is an
  anomaly with a notice; at ``shipment_hold_days`` (10) a second anomaly and notice, the buyer's
  automatic receipt confirmation put back and the order's settlement held. Found by
  ``shipments_scan_overdue``, a beat task, over every open shipment in batches.

A stall clears by itself when the parcel reaches a final stage, lifting the hold, with its
history row saying when. Every anomaly moves through ``anomaly_set_status``: the merchant may
answer it with an explanation and evidence, platform customer service upholds or dismisses it.
Notices go to the shop's ERP as ``shipment.anomaly`` webhooks, as intercept results do.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Exists, F, OuterRef, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from couriers.stages import SHIPMENT_FINAL_STAGES
from intercepts.models import (
    InterceptPolicy,
    InterceptRequest,
    Order,
    Shipment,
    ShipmentAnomaly,
    ShipmentAnomalyEvent,
)
from intercepts.services.errors import DomainError
from shops import webhooks
from shops.access import access_for
from shops.history import status_transition
from shops.models import PLATFORM_CS, WebhookEndpoint

Kind = ShipmentAnomaly.Kind
Status = ShipmentAnomaly.Status
BATCH = 5000
FINAL = sorted(SHIPMENT_FINAL_STAGES)


def _local(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i")


# --- Opening ------------------------------------------------------------------------------


def _emit(anomaly_id: int, *, shop_id: int) -> None:
    def data() -> dict:
        anomaly = ShipmentAnomaly.objects.select_related("order", "parcel", "parcel__courier").get(
            pk=anomaly_id
        )
        return {
            "anomaly": anomaly.pk,
            "kind": anomaly.kind,
            "status": anomaly.status,
            "reason": anomaly.reason,
            "order_no": anomaly.order.order_no,
            "courier": anomaly.parcel.courier.code,
            "waybill_no": anomaly.parcel.waybill_no,
            "settlement_held": anomaly.order.settlement_held_at is not None,
        }

    webhooks.webhook_emit(
        shop_id=shop_id,
        event_type=webhooks.SHIPMENT_ANOMALY,
        object_type="shipment_anomaly",
        object_id=anomaly_id,
        data=data,
    )


def anomaly_open(
    *, shop_id: int, order_id: int, parcel_id: int, kind: str, reason: str, now=None
) -> ShipmentAnomaly | None:
    """Open an anomaly of ``kind`` on an order's parcel, with its first history row and its
    notice; None if one of that kind was ever opened there (each kind is raised once)."""
    now = now or timezone.now()
    with transaction.atomic():
        anomaly, created = ShipmentAnomaly.objects.get_or_create(
            order_id=order_id,
            parcel_id=parcel_id,
            kind=kind,
            defaults={"shop_id": shop_id, "reason": reason[:255], "detected_at": now},
        )
        if not created:
            return None
        ShipmentAnomalyEvent.objects.create(
            anomaly=anomaly, to_status=Status.OPEN, note=reason[:255], created_at=now
        )
        _emit(anomaly.pk, shop_id=shop_id)
    return anomaly


def anomaly_open_shared_waybill(*, shipment: Shipment, now=None) -> ShipmentAnomaly | None:
    others = (
        Shipment.objects.filter(parcel_id=shipment.parcel_id)
        .exclude(receiver_key=shipment.receiver_key)
        .order_by("shipped_at", "id")
        .values_list("order__order_no", flat=True)
    )
    reason = _(
        "Waybill %(waybill)s is already used for another receiver address (order "
        "%(other)s): a suspected fake shipment."
    ) % {"waybill": shipment.parcel.waybill_no, "other": ", ".join(others[:2])}
    return anomaly_open(
        shop_id=shipment.shop_id,
        order_id=shipment.order_id,
        parcel_id=shipment.parcel_id,
        kind=Kind.SHARED_WAYBILL,
        reason=reason,
        now=now,
    )


# --- Moving and clearing ------------------------------------------------------------------


def _refuse(current: str) -> DomainError:
    return DomainError(
        _("This anomaly is “%(status)s” and can no longer change that way.")
        % {"status": Status(current).label}
    )


def anomaly_set_status(
    *, anomaly: ShipmentAnomaly, to_status: str, actor=None, note: str = "", now=None, **fields
) -> bool:
    """The one way an anomaly moves: guarded, with its history row. Leaving the open statuses
    closes it; a held settlement is lifted once no 10-day stall of the order is open."""
    now = now or timezone.now()
    closing = to_status in (Status.DISMISSED, Status.CLEARED)
    if closing:
        fields["closed_at"] = now
    with transaction.atomic():
        moved = status_transition(
            anomaly, to_status=to_status, refuse=_refuse, actor=actor, note=note, **fields
        )
        if moved:
            if closing and anomaly.kind == Kind.STALLED_10D:
                _lift_hold(anomaly, now=now)
            _emit(anomaly.pk, shop_id=anomaly.shop_id)
    return moved


def _lift_hold(anomaly: ShipmentAnomaly, *, now) -> None:
    # The order's row first: two parcels of one order cleared at once would each still see
    # the other's stall open, and neither would lift the hold.
    Order.objects.select_for_update().filter(pk=anomaly.order_id).first()
    still_open = ShipmentAnomaly.objects.filter(
        order_id=anomaly.order_id, kind=Kind.STALLED_10D, status__in=ShipmentAnomaly.OPEN_STATUSES
    )
    if still_open.exists():
        return
    if Order.objects.filter(pk=anomaly.order_id, settlement_held_at__isnull=False).update(
        settlement_held_at=None
    ):
        ShipmentAnomalyEvent.objects.create(
            anomaly=anomaly,
            from_status=anomaly.status,
            to_status=anomaly.status,
            note=_("The order's settlement hold is lifted."),
            created_at=now,
        )


def anomalies_clear_final(*, parcel_ids: Iterable[int] | None = None, now=None) -> int:
    """Clear the open stalls of parcels now at a final stage (all such parcels, or these)."""
    now = now or timezone.now()
    stalls = ShipmentAnomaly.objects.filter(
        kind__in=ShipmentAnomaly.STALLS,
        status__in=ShipmentAnomaly.OPEN_STATUSES,
        parcel__stage__in=FINAL,
    )
    if parcel_ids is not None:
        stalls = stalls.filter(parcel_id__in=list(parcel_ids))
    cleared = 0
    for anomaly in stalls.select_related("parcel").order_by("pk"):
        note = _("Cleared: the parcel reached “%(stage)s”.") % {
            "stage": anomaly.parcel.get_stage_display()
        }
        cleared += anomaly_set_status(anomaly=anomaly, to_status=Status.CLEARED, note=note, now=now)
    return cleared


# --- On tracking --------------------------------------------------------------------------


def shipments_check_tracking(*, parcel_ids: Iterable[int], now=None) -> int:
    """After tracking of these parcels is stored: a pickup before the order's payment is an
    anomaly; a final stage clears the parcel's stalls. Returns the anomalies opened."""
    parcel_ids = list(parcel_ids)
    if not parcel_ids:
        return 0
    now = now or timezone.now()
    early = (
        Shipment.objects.filter(
            parcel_id__in=parcel_ids,
            parcel__picked_up_at__isnull=False,
            parcel__picked_up_at__lt=F("order__paid_at"),
        )
        .exclude(
            Exists(
                ShipmentAnomaly.objects.filter(
                    order_id=OuterRef("order_id"),
                    parcel_id=OuterRef("parcel_id"),
                    kind=Kind.PICKUP_BEFORE_PAYMENT,
                )
            )
        )
        .values_list("shop_id", "order_id", "parcel_id", "parcel__picked_up_at", "order__paid_at")
    )
    opened = 0
    for shop_id, order_id, parcel_id, picked_up_at, paid_at in early:
        reason = _("The pickup scan (%(pickup)s) is earlier than the payment (%(paid)s).") % {
            "pickup": _local(picked_up_at),
            "paid": _local(paid_at),
        }
        opened += (
            anomaly_open(
                shop_id=shop_id,
                order_id=order_id,
                parcel_id=parcel_id,
                kind=Kind.PICKUP_BEFORE_PAYMENT,
                reason=reason,
                now=now,
            )
            is not None
        )
    anomalies_clear_final(parcel_ids=parcel_ids, now=now)
    return opened


# --- The time-based scan ------------------------------------------------------------------


def _stall_reason(kind: str, days: int) -> str:
    if kind == Kind.STALLED_6D:
        return _(
            "No signature, refusal or return %(days)d days after shipping: please check the "
            "parcel with the courier."
        ) % {"days": days}
    return _(
        "No signature, refusal or return %(days)d days after shipping: the order's "
        "settlement is held and the buyer's automatic receipt confirmation is put back."
    ) % {"days": days}


def shipments_scan_overdue(*, now: datetime | None = None, batch: int = BATCH) -> dict[str, int]:
    """Open the 6-day and 10-day stalls of shipments past their days with no final stage, in
    batches of ``batch`` shipments, each batch one transaction; then clear stalls whose parcel
    has meanwhile reached a final stage. Safe to run twice or at once: the unique
    (order, parcel, kind) keeps one anomaly of a kind, and only the rows this run inserted get
    a history row, a notice and a hold."""
    now = now or timezone.now()
    policy = InterceptPolicy.current()
    with_endpoints = set(
        WebhookEndpoint.objects.filter(is_active=True).values_list("shop_id", flat=True)
    )
    opened = {}
    for kind, days in (
        (Kind.STALLED_6D, policy.shipment_notice_days),
        (Kind.STALLED_10D, policy.shipment_hold_days),
    ):
        reason = _stall_reason(kind, days)
        due = (
            Shipment.objects.filter(
                parcel__shipped_at__lte=now - timedelta(days=days),
                shipped_at__lte=now - timedelta(days=days),
            )
            .exclude(parcel__stage__in=FINAL)
            .exclude(
                Exists(
                    ShipmentAnomaly.objects.filter(
                        order_id=OuterRef("order_id"), parcel_id=OuterRef("parcel_id"), kind=kind
                    )
                )
            )
            # A parcel the merchant had intercepted is on its way back by the platform's own
            # record, not a fake shipment; the claim watch follows its return.
            .exclude(
                Exists(
                    InterceptRequest.objects.filter(
                        parcel_id=OuterRef("parcel_id"), status__in=InterceptRequest.CAUGHT
                    )
                )
            )
            .order_by()
            .values_list("shop_id", "order_id", "parcel_id")
        )
        count = 0
        rows = due.iterator(chunk_size=batch)
        while chunk := _take(rows, batch):
            count += _open_stalls(
                chunk,
                kind=kind,
                reason=reason,
                now=now,
                extend=timedelta(days=policy.receipt_extend_days),
                with_endpoints=with_endpoints,
            )
        opened[kind] = count
    opened["cleared"] = anomalies_clear_final(now=now)
    return opened


def _take(rows, size: int) -> list:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            break
    return chunk


def _stall_rows(chunk, *, kind, reason, now) -> list[ShipmentAnomaly]:
    return [
        ShipmentAnomaly(
            shop_id=shop_id,
            order_id=order_id,
            parcel_id=parcel_id,
            kind=kind,
            reason=reason,
            detected_at=now,
        )
        for shop_id, order_id, parcel_id in chunk
    ]


def _open_stalls(chunk, *, kind, reason, now, extend, with_endpoints) -> int:
    with transaction.atomic():
        try:
            with transaction.atomic():
                created = ShipmentAnomaly.objects.bulk_create(
                    _stall_rows(chunk, kind=kind, reason=reason, now=now)
                )
            mine = [(row.pk, row.shop_id, row.order_id) for row in created]
        except IntegrityError:
            # Another run opened some of these meanwhile: write the others, and take as this
            # run's the rows stamped with its ``detected_at`` (matched on (order, parcel): an
            # order on two parcels may have the other's stall from an earlier batch).
            ShipmentAnomaly.objects.bulk_create(
                _stall_rows(chunk, kind=kind, reason=reason, now=now), ignore_conflicts=True
            )
            pairs = {(order_id, parcel_id) for _s, order_id, parcel_id in chunk}
            mine = [
                (pk, shop_id, order_id)
                for pk, shop_id, order_id, parcel_id in ShipmentAnomaly.objects.filter(
                    order_id__in={order_id for order_id, _p in pairs},
                    parcel_id__in={parcel_id for _o, parcel_id in pairs},
                    kind=kind,
                    detected_at=now,
                ).values_list("pk", "shop_id", "order_id", "parcel_id")
                if (order_id, parcel_id) in pairs
            ]
        ShipmentAnomalyEvent.objects.bulk_create(
            [
                ShipmentAnomalyEvent(
                    anomaly_id=pk, to_status=Status.OPEN, note=reason, created_at=now
                )
                for pk, _shop, _order in mine
            ]
        )
        if kind == Kind.STALLED_10D and mine:
            # One UPDATE, so each order row (and every index of the table) is rewritten once,
            # of the orders not held yet (an order with two stalled parcels is held, and its
            # receipt put back, once): the buyer's automatic receipt confirmation put back by
            # the policy's days from where it stood (from now for an order that had none), so
            # the buyer is not made to confirm a parcel still on its way.
            Order.objects.filter(
                pk__in=[order_id for _pk, _shop, order_id in mine],
                settlement_held_at__isnull=True,
            ).update(
                settlement_held_at=now,
                receipt_confirm_at=Coalesce(
                    F("receipt_confirm_at"), Value(now), output_field=DateTimeField()
                )
                + extend,
            )
        for pk, shop_id, _order in mine:
            if shop_id in with_endpoints:
                _emit(pk, shop_id=shop_id)
    return len(mine)


# --- The merchant's answer and the platform's ruling ----------------------------------------


def may_answer(actor, anomaly: ShipmentAnomaly) -> bool:
    access = access_for(actor)
    return access.is_superuser or access.acts_for(anomaly.shop_id)


def may_rule(actor) -> bool:
    access = access_for(actor)
    return access.is_superuser or PLATFORM_CS in access.platform_groups


def anomaly_answer(*, actor, anomaly: ShipmentAnomaly, explanation: str, files=()) -> None:
    """The shop's owner or agent explains an open anomaly, with photos or PDFs; platform
    customer service then rules on it. Every file is checked before anything is written."""
    from intercepts.services.anomaly_evidence import (
        discard_on_rollback,
        evidence_check,
        evidence_store,
    )

    if not may_answer(actor, anomaly):
        raise PermissionDenied(_("Only the shop's owner or an after-sales agent may do this."))
    explanation = (explanation or "").strip()
    if not explanation:
        raise ValidationError({"explanation": _("Say what happened to this shipment.")})
    checked = evidence_check(files)
    # Files stored for a transaction that does not commit are deleted again.
    with discard_on_rollback(), transaction.atomic():
        current = ShipmentAnomaly.objects.select_for_update().get(pk=anomaly.pk)
        if current.status != Status.OPEN:
            raise _refuse(current.status)
        anomaly_set_status(
            anomaly=current,
            to_status=Status.ANSWERED,
            actor=actor,
            note=explanation[:255],
            explanation=explanation,
        )
        evidence_store(anomaly=current, files=checked, actor=actor)
    anomaly.refresh_from_db()


def anomaly_rule(*, actor, anomaly: ShipmentAnomaly, uphold: bool, note: str) -> None:
    """Platform customer service upholds an anomaly (the shipment is fake: it stays open and a
    stall keeps the settlement held) or dismisses it (closed, a held settlement lifted)."""
    if not may_rule(actor):
        raise PermissionDenied(_("Only platform customer service may rule on an anomaly."))
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say why.")})
    with transaction.atomic():
        current = ShipmentAnomaly.objects.select_for_update().get(pk=anomaly.pk)
        anomaly_set_status(
            anomaly=current,
            to_status=Status.UPHELD if uphold else Status.DISMISSED,
            actor=actor,
            note=note,
        )
    anomaly.refresh_from_db()
