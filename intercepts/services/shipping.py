"""Shipping an order: recording the waybill of its parcel under the platform's rules.

The rules are Kuaishou's against fake shipping, applied to every shop, each refusal in the
platform's own words:

- the waybill must fit its courier's number pattern (code 4009, 运单号和物流公司不匹配);
- a waybill names one shop's parcel: another shop's is refused;
- a waybill already used for two other receivers is refused (当前运单号对应3个收件地址，上传失败);
  one used for one other receiver is accepted and flagged as a suspected fake shipment, while
  orders of the same receiver may share a parcel (merged shipping) without a flag.

The receiver is the one the platform sent with the order, never one typed at shipping.
``judge_shipment`` is the one statement of the rules: ``ship_order`` applies it to one order
under locks, and the batch upload previews a whole file with it before shipping row by row
through ``ship_order``.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from couriers.models import Courier
from intercepts.models import InterceptPolicy, Order, Parcel, Shipment, ShipmentUpload
from intercepts.services.errors import DomainError
from intercepts.services.orders import order_set_status
from intercepts.services.parcels import (
    _carried_line_ids,
    _queue_subscription,
    _require_shop_writer,
    normalise_waybill,
)

# Refusal codes, as the API and the failed-row report give them.
WAYBILL_MISMATCH = "4009"  # Kuaishou's code for 运单号和物流公司不匹配
THREE_ADDRESSES = "three_addresses"
WAYBILL_TAKEN = "waybill_taken"
ORDER_NOT_FOUND = "order_not_found"
COURIER_UNKNOWN = "courier_unknown"
NOT_SHIPPABLE = "not_shippable"
NOTHING_TO_SHIP = "nothing_to_ship"
NO_ADDRESS = "no_address"
MISSING = "missing"
DUPLICATE_ROW = "duplicate_row"

# A waybill may carry orders of this many receivers at most: one, and one more flagged.
MAX_RECEIVERS_PER_WAYBILL = 2

_ADDRESS_NOISE = re.compile(r"[\s,，.。;；:：#＃\-—_/\\()（）]+")


def receiver_key(phone: str, address: str) -> str:
    """Who and where, compared: the phone's digits and the address without spaces,
    punctuation or letter case, so that 'Room 1, No.8' and 'room1 no8' are one address."""
    digits = re.sub(r"\D", "", phone or "")[-11:]
    text = _ADDRESS_NOISE.sub("", unicodedata.normalize("NFKC", address or "").upper())
    return f"{digits}|{text}"[:300]


def order_receiver_key(order: Order) -> str:
    return receiver_key(order.receiver_phone, order.receiver_address)


class ShippingRefused(DomainError):
    """A rule refused the shipment; ``code`` says which (see the codes above)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verdict:
    code: str = ""
    message: str = ""
    flagged: bool = False  # accepted on a waybill already used for another receiver
    already: bool = False  # this order is already shipped with this waybill

    @property
    def ok(self) -> bool:
        return not self.code


def refusal_message(code: str) -> str:
    return {
        WAYBILL_MISMATCH: _("The waybill number does not match the courier."),
        THREE_ADDRESSES: _(
            "This waybill number is used for 3 receiver addresses; the upload failed."
        ),
        WAYBILL_TAKEN: _("This waybill number is already recorded for a parcel."),
        ORDER_NOT_FOUND: _("No order of this shop has this order number."),
        COURIER_UNKNOWN: _("Unknown courier: use a name or code from the template's list."),
        NOT_SHIPPABLE: _("The order is cancelled or completed and cannot be shipped."),
        NOTHING_TO_SHIP: _("Every item of this order is already in a shipped parcel."),
        NO_ADDRESS: _("The order has no receiver address from the platform; it cannot ship."),
        MISSING: _("The order number, courier and waybill number are all needed."),
        DUPLICATE_ROW: _("The same order and waybill are on an earlier row of this file."),
    }[code]


def refusal_text(code: str, message: str) -> str:
    """A refusal as the workbench shows it: the platform's own numeric code after its words
    (运单号和物流公司不匹配（4009）), ours by their words alone."""
    return f"{message}（{code}）" if code.isdigit() else message


def judge_shipment(
    *,
    order: Order | None,
    courier: Courier | None,
    waybill_no: str,
    waybill_shop_id: int | None,
    receivers_on_waybill: set[str],
    first_receiver: str | None,
    order_has_goods: bool,
    already: bool,
) -> Verdict:
    """The rules, on facts already read: the order (None: not this shop's), the courier (None:
    unknown), the normalised waybill, the shop whose parcel it names (None: a new one), the
    receiver keys of the other orders already shipped with it and the first of them (whom the
    parcel was recorded for), whether some of the order's goods are in no parcel yet, and
    whether this order is already shipped with it."""

    def refuse(code: str) -> Verdict:
        return Verdict(code=code, message=refusal_message(code))

    if order is None:
        return refuse(ORDER_NOT_FOUND)
    if courier is None:
        return refuse(COURIER_UNKNOWN)
    if not courier.waybill_matches(waybill_no):
        return refuse(WAYBILL_MISMATCH)
    if waybill_shop_id is not None and waybill_shop_id != order.shop_id:
        return refuse(WAYBILL_TAKEN)
    if already:
        return Verdict(already=True)
    if order.status not in (Order.Status.PAID, Order.Status.SHIPPED):
        return refuse(NOT_SHIPPABLE)
    if not order.receiver_address.strip():
        return refuse(NO_ADDRESS)
    if waybill_shop_id is None and not order_has_goods:
        return refuse(NOTHING_TO_SHIP)
    # A new waybill, or merged shipping to the receiver the parcel was recorded for: no flag.
    # Anyone else is a second address, flagged (another order of a flagged receiver as well);
    # a third is refused.
    key = order_receiver_key(order)
    others = receivers_on_waybill - {key}
    if not others or key == first_receiver:
        return Verdict()
    if len(others) >= MAX_RECEIVERS_PER_WAYBILL:
        return refuse(THREE_ADDRESSES)
    return Verdict(flagged=True)


@dataclass(frozen=True)
class Shipped:
    shipment: Shipment
    created: bool  # False: the order was already shipped with this waybill (nothing written)
    flagged: bool


def ship_order(
    *,
    actor,
    order: Order,
    courier: Courier,
    waybill_no: str,
    channel: str,
    upload: ShipmentUpload | None = None,
    now=None,
) -> Shipped:
    """Ship ``order`` with ``courier``'s ``waybill_no``: a parcel for a new waybill (carrying
    the order's goods not yet in a parcel), or the order added to its own shop's parcel of that
    waybill (merged shipping, or a flagged second receiver). The order becomes shipped with its
    history row; a suspected fake shipment opens its anomaly. One transaction: all or nothing.

    Shipping an order again with the same waybill changes nothing (``created`` is False), so a
    retried request or a re-uploaded file ships nothing twice. Raises ``ShippingRefused``.
    """
    _require_shop_writer(actor, order.shop_id)
    waybill_no = normalise_waybill(waybill_no)
    now = now or timezone.now()
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _ship(
                    actor=actor,
                    order_id=order.pk,
                    courier=courier,
                    waybill_no=waybill_no,
                    channel=channel,
                    upload=upload,
                    now=now,
                )
        except IntegrityError as exc:
            # Another request recorded this waybill's parcel meanwhile: judge again with it.
            if attempt or "parcel_waybill_unique" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _ship(*, actor, order_id, courier, waybill_no, channel, upload, now) -> Shipped:
    from intercepts.services import shipment_checks  # it imports this module's rules

    # The order's row first, then the parcel's: every shipment onto one waybill waits on the
    # parcel's lock, so two receivers cannot both be the second.
    order = Order.objects.select_for_update().get(pk=order_id)
    parcel = (
        Parcel.objects.select_for_update()
        .filter(courier=courier, waybill_no=waybill_no)
        .only("pk", "shop_id", "picked_up_at")
        .first()
    )
    picked_up = parcel is not None and parcel.picked_up_at is not None
    receivers = set()
    first_receiver = None
    already = False
    if parcel is not None and parcel.shop_id == order.shop_id:
        rows = list(
            Shipment.objects.filter(parcel=parcel)
            .order_by("shipped_at", "id")
            .values_list("order_id", "receiver_key")
        )
        first_receiver = rows[0][1] if rows else None
        already = any(oid == order.pk for oid, _key in rows)
        receivers = {key for oid, key in rows if oid != order.pk}
    carried = _carried_line_ids(order)
    lines = [line for line in order.lines.all() if line.pk not in carried]
    verdict = judge_shipment(
        order=order,
        courier=courier,
        waybill_no=waybill_no,
        waybill_shop_id=parcel.shop_id if parcel is not None else None,
        receivers_on_waybill=receivers,
        first_receiver=first_receiver,
        order_has_goods=bool(lines),
        already=already,
    )
    if not verdict.ok:
        raise ShippingRefused(verdict.code, verdict.message)
    if verdict.already:
        shipment = Shipment.objects.get(order=order, parcel=parcel)
        return Shipped(shipment=shipment, created=False, flagged=shipment.flagged)
    if parcel is None:
        parcel = Parcel(
            shop_id=order.shop_id,
            order=order,
            courier=courier,
            waybill_no=waybill_no,
            receiver_name=order.receiver_name,
            receiver_phone=order.receiver_phone,
            receiver_address=order.receiver_address,
            declared_value_fen=sum(line.amount_fen for line in lines),
            shipped_at=now,
            next_poll_at=now,  # first tracking check at the next poll
            created_at=now,
        )
        try:
            parcel.full_clean(exclude=["order", "courier", "shop"], validate_unique=False)
        except ValidationError as exc:
            raise ShippingRefused(NO_ADDRESS, " ".join(exc.messages)) from exc
        with transaction.atomic():
            parcel.save()
        parcel.lines.set(lines)
        transaction.on_commit(lambda: _queue_subscription(parcel))
    elif lines and not verdict.flagged:
        # Merged shipping: the parcel carries this order's goods too, and their value with
        # them; a flagged second receiver's goods cannot be in it, so they are not added.
        parcel.lines.add(*lines)
        Parcel.objects.filter(pk=parcel.pk).update(
            declared_value_fen=F("declared_value_fen") + sum(line.amount_fen for line in lines)
        )
    shipment = Shipment.objects.create(
        shop_id=order.shop_id,
        order=order,
        parcel=parcel,
        receiver_key=order_receiver_key(order),
        receiver_address=order.receiver_address,
        flagged=verdict.flagged,
        channel=channel,
        upload=upload,
        actor=actor,
        shipped_at=now,
    )
    fields = {}
    if order.shipped_at is None:
        policy = InterceptPolicy.current()
        fields["shipped_at"] = now
        fields["receipt_confirm_at"] = now + timedelta(days=policy.receipt_confirm_days)
    if order.status == Order.Status.PAID:
        order_set_status(
            order=order,
            to_status=Order.Status.SHIPPED,
            actor=actor,
            note=_("Shipped with %(courier)s %(waybill)s.")
            % {"courier": courier.display_name, "waybill": waybill_no},
            **fields,
        )
    elif fields:
        Order.objects.filter(pk=order.pk).update(**fields)
    if verdict.flagged:
        shipment_checks.anomaly_open_shared_waybill(shipment=shipment, now=now)
    if picked_up:
        # Joining a parcel already picked up: its pickup scan will not arrive again, so the
        # pickup-before-payment check runs now for this order (an old waybill reused).
        shipment_checks.shipments_check_tracking(parcel_ids=[parcel.pk], now=now)
    return Shipped(shipment=shipment, created=True, flagged=verdict.flagged)


def courier_lookup() -> dict[str, Courier]:
    """Active couriers by every name a spreadsheet may give: code, Chinese and English name."""
    table = {}
    for courier in Courier.objects.filter(is_active=True):
        for name in (courier.code, courier.name_zh, courier.name_en):
            if name:
                table[name.strip().upper()] = courier
    return table


def find_courier(text: str, table: dict[str, Courier] | None = None) -> Courier | None:
    table = courier_lookup() if table is None else table
    return table.get((text or "").strip().upper())


def may_ship(actor, shop_id: int) -> bool:
    try:
        _require_shop_writer(actor, shop_id)
    except PermissionDenied:
        return False
    return True
