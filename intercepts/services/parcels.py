"""Recording shipped parcels and putting right a mistyped waybill."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.models import (
    InterceptRequest,
    Order,
    Parcel,
    ParcelCorrection,
)
from intercepts.services.errors import DomainError
from shops.access import access_for
from shops.models import PLATFORM_CS


def normalise_waybill(waybill_no: str) -> str:
    """Waybill numbers are compared upper-case and without surrounding or inner spaces."""
    return "".join((waybill_no or "").split()).upper()


def _waybill_taken() -> ValidationError:
    # Whose waybill it is stays unsaid: another shop's parcels are not this user's business.
    return ValidationError(
        {"waybill_no": _("This waybill number is already recorded for a parcel.")},
        code="waybill_taken",
    )


def _require_shop_writer(actor, shop_id: int) -> None:
    access = access_for(actor)
    if not (access.is_superuser or access.acts_for(shop_id)):
        raise PermissionDenied(_("Only the shop's owner or an after-sales agent may do this."))


def may_correct_waybill(actor, shop_id: int) -> bool:
    """The shop's owner and agents put right their own typing; platform customer service
    settles a waybill two shops claim (one recorded another's number first)."""
    access = access_for(actor)
    return access.is_superuser or access.acts_for(shop_id) or PLATFORM_CS in access.platform_groups


def _check_waybill(courier: Courier, waybill_no: str) -> None:
    courier.check_waybill(waybill_no)
    if Parcel.objects.filter(courier=courier, waybill_no=waybill_no).exists():
        raise _waybill_taken()


def _save_refusing_taken_waybill(parcel: Parcel, **kwargs) -> None:
    """Save in a savepoint: a waybill recorded meanwhile by someone else is refused as taken."""
    try:
        with transaction.atomic():
            parcel.save(**kwargs)
    except IntegrityError as exc:
        if "parcel_waybill_unique" in str(exc):
            raise _waybill_taken() from exc
        raise


def _carried_line_ids(order: Order) -> set[int]:
    return set(
        Parcel.lines.through.objects.filter(orderline__order=order).values_list(
            "orderline_id", flat=True
        )
    )


def order_has_goods_to_ship(order: Order) -> bool:
    """Whether some line of the order is in no recorded parcel yet (what a new parcel carries)."""
    return order.lines.exclude(pk__in=_carried_line_ids(order)).exists()


def parcel_create(
    *,
    actor,
    order: Order,
    courier: Courier,
    waybill_no: str,
    receiver_name: str,
    receiver_phone: str,
    receiver_address: str,
    line_ids: list[int] | None = None,
) -> Parcel:
    """Record a shipped parcel of an order: its waybill, the lines it carries (the order's
    lines not yet in another parcel, unless chosen) and their value, which is what the rules and
    claims read. An item is in one parcel only, so no value is counted twice.

    A waybill names one parcel: one already recorded, in this shop or another, is refused.
    Once shipped, the parcel's courier, waybill and goods are fixed; a mistyped waybill is put
    right with ``parcel_correct_waybill``.
    """
    _require_shop_writer(actor, order.shop_id)
    waybill_no = normalise_waybill(waybill_no)
    now = timezone.now()
    parcel = Parcel(
        shop_id=order.shop_id,
        order=order,
        courier=courier,
        waybill_no=waybill_no,
        receiver_name=receiver_name,
        receiver_phone=receiver_phone,
        receiver_address=receiver_address,
        shipped_at=now,
        next_poll_at=now,  # first tracking check at the next poll
    )
    parcel.full_clean(exclude=["order", "courier", "shop"], validate_unique=False)
    _check_waybill(courier, waybill_no)
    with transaction.atomic():
        # The order's row is the lock two parcels of one order being recorded at once wait on,
        # so that the same goods never go into both.
        Order.objects.select_for_update().filter(pk=order.pk).first()
        lines = list(order.lines.all())
        carried = _carried_line_ids(order)
        if line_ids is not None:
            chosen = set(line_ids)
            if not chosen or not chosen <= {line.pk for line in lines}:
                raise ValidationError(
                    {"lines": _("A parcel can only carry lines of its own order.")}
                )
            if chosen & carried:
                raise ValidationError(
                    {"lines": _("These goods are already in another recorded parcel.")}
                )
            lines = [line for line in lines if line.pk in chosen]
        else:
            lines = [line for line in lines if line.pk not in carried]
            if not lines:
                raise ValidationError(
                    {"order": _("Every item of this order is already in a recorded parcel.")}
                )
        parcel.declared_value_fen = sum(line.amount_fen for line in lines)
        _save_refusing_taken_waybill(parcel)
        parcel.lines.set(lines)
        transaction.on_commit(lambda: _queue_subscription(parcel))
    return parcel


def parcel_correct_waybill(
    *, actor, parcel: Parcel, courier: Courier, waybill_no: str, reason: str
) -> ParcelCorrection:
    """Put right a mistyped courier or waybill number, with a record of what it was and why:
    the shop's own staff, or platform customer service when another shop's parcel holds the
    waybill.

    Refused once an intercept has been asked for the parcel (its history names the waybill),
    and for a waybill already recorded. The tracking read under the wrong number is dropped and
    the parcel is tracked afresh under the right one.
    """
    if not may_correct_waybill(actor, parcel.shop_id):
        raise PermissionDenied(
            _("Only the shop's staff or platform customer service may correct its waybill.")
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say what was wrong with the waybill.")})
    waybill_no = normalise_waybill(waybill_no)
    with transaction.atomic():
        current = Parcel.objects.select_for_update().select_related("courier").get(pk=parcel.pk)
        if current.courier_id == courier.pk and current.waybill_no == waybill_no:
            raise ValidationError(
                {"waybill_no": _("This is the parcel's waybill already; nothing to correct.")}
            )
        if InterceptRequest.objects.filter(parcel_id=current.pk).exists():
            raise DomainError(
                _("An intercept was asked for this parcel: its waybill can no longer change.")
            )
        _check_waybill(courier, waybill_no)
        correction = ParcelCorrection(
            parcel=current,
            old_courier_id=current.courier_id,
            old_waybill_no=current.waybill_no,
            new_courier=courier,
            new_waybill_no=waybill_no,
            reason=reason[:255],
            actor=actor,
        )
        current.courier, current.waybill_no = courier, waybill_no
        current.stage = ParcelStage.NO_INFO
        current.picked_up_at = current.signed_at = current.subscribed_at = None
        current.next_poll_at, current.poll_failures = timezone.now(), 0
        _save_refusing_taken_waybill(current)
        current.tracking_events.all().delete()
        correction.save()
        transaction.on_commit(lambda: _queue_subscription(current))
    parcel.refresh_from_db()
    return correction


def parcel_value_fen(parcel: Parcel) -> int:
    """What the goods a parcel carries are worth, from their order lines (the platform's)."""
    return sum(line.amount_fen for line in parcel.lines.all())


def _queue_subscription(parcel: Parcel) -> None:
    from intercepts import tasks  # tasks import services
    from intercepts.tracking.polling import courier_queue

    tasks.parcel_subscribe.apply_async(args=[parcel.pk], queue=courier_queue(parcel.courier.code))
