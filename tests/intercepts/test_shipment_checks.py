"""The checks after shipping, at their boundaries in the shop's local time (Asia/Shanghai):
no final stage 6 days after shipping is a stall with a notice, 10 days holds the settlement and
puts back the automatic receipt confirmation; a final stage reached through real scans clears
the stalls and lifts the hold; a pickup scanned before the payment is an anomaly."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from couriers.models import Courier
from couriers.stages import ParcelStage as S
from couriers.types import TrackingScan
from intercepts.models import InterceptPolicy, Order, Parcel, Shipment, ShipmentAnomaly
from intercepts.services.shipment_checks import shipments_scan_overdue
from intercepts.services.shipping import ship_order
from intercepts.tracking.scans import parcels_apply_scans
from shops import webhooks
from shops.models import WebhookDelivery
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Shipped at half past nine in the morning, Shanghai time.
T = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)
Kind = ShipmentAnomaly.Kind
Status = ShipmentAnomaly.Status


@pytest.fixture
def shipped(world) -> Shipment:
    """Shop A's order, paid two hours before it shipped at T."""
    order = paid_order(world.shop_a, paid_at=T - timedelta(hours=2))
    return ship_order(
        actor=world.owner,
        order=order,
        courier=Courier.objects.get(code="ZTO"),
        waybill_no=new_waybill(),
        channel=Shipment.Channel.WORKBENCH,
        now=T,
    ).shipment


@pytest.fixture
def endpoint(world):
    created, _secret = webhooks.webhook_endpoint_create(
        actor=world.owner, shop=world.shop_a, url="https://erp.example.com/hooks"
    )
    return created


def anomalies(shipment, kind=None) -> list[tuple[str, str]]:
    rows = ShipmentAnomaly.objects.filter(order=shipment.order)
    if kind:
        rows = rows.filter(kind=kind)
    return sorted(rows.values_list("kind", "status"))


def notices() -> list[str]:
    return list(
        WebhookDelivery.objects.filter(event_type=webhooks.SHIPMENT_ANOMALY)
        .order_by("pk")
        .values_list("object_key", flat=True)
    )


def scan(parcel, at, stage) -> TrackingScan:
    return TrackingScan(
        waybill_no=parcel.waybill_no,
        occurred_at=at,
        raw_code=stage,
        stage=stage,
        description=f"{stage} scan",
    )


def apply_scans(parcel, *timed_stages, capture) -> None:
    """Apply the scans as a poll would, and run what waits for their commit."""
    with capture(execute=True):
        parcels_apply_scans(
            scans_by_parcel={parcel.pk: [scan(parcel, at, stage) for at, stage in timed_stages]},
            source="test",
        )


def order_of(shipment) -> Order:
    return Order.objects.get(pk=shipment.order_id)


# --- The 6-day notice -----------------------------------------------------------------------


def test_one_hour_short_of_six_days_is_no_stall(shipped):
    shipments_scan_overdue(now=T + timedelta(days=5, hours=23))
    assert anomalies(shipped) == []


def test_six_days_after_shipping_is_a_stall(shipped):
    shipments_scan_overdue(now=T + timedelta(days=6))
    assert anomalies(shipped) == [(Kind.STALLED_6D, Status.OPEN)]


@pytest.mark.parametrize(
    ("after", "stalled"),
    [(timedelta(days=5, hours=23), False), (timedelta(days=6), True)],
    ids=["5d23h", "6d"],
)
def test_the_boundary_holds_for_a_parcel_shipped_just_before_local_midnight(world, after, stalled):
    # 23:50 in Shanghai is 15:50 UTC the same day: a count of calendar dates in either zone,
    # rather than of time since shipping, would put the stall a day early or late.
    shipped_at = datetime(2026, 3, 2, 23, 50, tzinfo=SHANGHAI)
    shipment = ship_order(
        actor=world.owner,
        order=paid_order(world.shop_a, paid_at=shipped_at - timedelta(hours=1)),
        courier=Courier.objects.get(code="ZTO"),
        waybill_no=new_waybill(),
        channel=Shipment.Channel.WORKBENCH,
        now=shipped_at,
    ).shipment
    shipments_scan_overdue(now=shipped_at + after)
    assert anomalies(shipment) == ([(Kind.STALLED_6D, Status.OPEN)] if stalled else [])


def test_the_six_day_stall_has_its_history_row(shipped):
    shipments_scan_overdue(now=T + timedelta(days=6))
    anomaly = ShipmentAnomaly.objects.get(order=shipped.order)
    assert list(anomaly.events.values_list("to_status", "note", "created_at")) == [
        (
            Status.OPEN,
            "发货 6 天仍无签收、拒收或退回：请向快递公司核实包裹。",
            T + timedelta(days=6),
        )
    ]


def test_the_six_day_stall_is_a_notice_to_the_shops_endpoint(shipped, endpoint):
    shipments_scan_overdue(now=T + timedelta(days=6))
    anomaly = ShipmentAnomaly.objects.get(order=shipped.order)
    assert notices() == [f"shipment_anomaly:{anomaly.pk}"]


def test_a_scan_run_twice_opens_nothing_twice(shipped, endpoint):
    first = shipments_scan_overdue(now=T + timedelta(days=6))
    second = shipments_scan_overdue(now=T + timedelta(days=6, hours=1))
    assert (
        first[Kind.STALLED_6D],
        second[Kind.STALLED_6D],
        ShipmentAnomaly.objects.count(),
        sum(a.events.count() for a in ShipmentAnomaly.objects.all()),
        len(notices()),
    ) == (1, 0, 1, 1, 1)


# --- The 10-day hold ------------------------------------------------------------------------


def test_one_hour_short_of_ten_days_holds_nothing(shipped):
    shipments_scan_overdue(now=T + timedelta(days=6))
    shipments_scan_overdue(now=T + timedelta(days=9, hours=23))
    order = order_of(shipped)
    assert (anomalies(shipped), order.settlement_held_at) == (
        [(Kind.STALLED_6D, Status.OPEN)],
        None,
    )


def test_ten_days_after_shipping_holds_the_settlement(shipped):
    shipments_scan_overdue(now=T + timedelta(days=6))
    shipments_scan_overdue(now=T + timedelta(days=10))
    order = order_of(shipped)
    assert (anomalies(shipped, Kind.STALLED_10D), order.settlement_held_at) == (
        [(Kind.STALLED_10D, Status.OPEN)],
        T + timedelta(days=10),
    )


def test_the_hold_puts_the_receipt_confirmation_back_by_the_policys_days(shipped):
    policy = InterceptPolicy.current()
    before = order_of(shipped).receipt_confirm_at
    assert before == T + timedelta(days=policy.receipt_confirm_days)
    shipments_scan_overdue(now=T + timedelta(days=10))
    assert order_of(shipped).receipt_confirm_at == before + timedelta(
        days=policy.receipt_extend_days
    )


def test_an_order_with_two_stalled_parcels_is_held_and_put_back_once(world):
    from tests.factories import OrderLineFactory

    order = paid_order(world.shop_a, paid_at=T - timedelta(hours=2))
    OrderLineFactory(order=order)  # a second line, for a second parcel
    first_line, second_line = order.lines.order_by("pk")
    zto = Courier.objects.get(code="ZTO")
    ship_order(
        actor=world.owner,
        order=order,
        courier=zto,
        waybill_no=new_waybill(),
        channel=Shipment.Channel.WORKBENCH,
        now=T,
    )
    assert set(Parcel.objects.get(order=order).lines.all()) == {first_line, second_line}
    # The first parcel carried both lines; the second parcel joins it days later by hand.
    second = Parcel.objects.create(
        shop=order.shop,
        order=order,
        courier=zto,
        waybill_no=new_waybill(),
        receiver_name=order.receiver_name,
        receiver_phone=order.receiver_phone,
        receiver_address=order.receiver_address,
        shipped_at=T + timedelta(days=2),
    )
    Shipment.objects.create(
        shop=order.shop,
        order=order,
        parcel=second,
        receiver_key="x",
        receiver_address=order.receiver_address,
        channel=Shipment.Channel.WORKBENCH,
        shipped_at=T + timedelta(days=2),
    )
    before = order_of_id(order.pk).receipt_confirm_at

    shipments_scan_overdue(now=T + timedelta(days=10))  # the first parcel's hold
    shipments_scan_overdue(now=T + timedelta(days=12))  # the second's stall: already held

    held = order_of_id(order.pk)
    assert ShipmentAnomaly.objects.filter(order=order, kind=Kind.STALLED_10D).count() == 2
    assert (held.settlement_held_at, held.receipt_confirm_at) == (
        T + timedelta(days=10),
        before + timedelta(days=5),
    )


def order_of_id(pk) -> Order:
    return Order.objects.get(pk=pk)


def test_an_order_without_a_receipt_date_gets_one_five_days_after_the_hold(shipped):
    Order.objects.filter(pk=shipped.order.pk).update(receipt_confirm_at=None)
    held = T + timedelta(days=11, hours=3)
    shipments_scan_overdue(now=held)
    assert order_of(shipped).receipt_confirm_at == held + timedelta(days=5)


def test_the_ten_day_stall_is_a_second_notice(shipped, endpoint):
    shipments_scan_overdue(now=T + timedelta(days=6))
    shipments_scan_overdue(now=T + timedelta(days=10))
    stalls = dict(ShipmentAnomaly.objects.filter(order=shipped.order).values_list("kind", "pk"))
    assert notices() == [
        f"shipment_anomaly:{stalls[Kind.STALLED_6D]}",
        f"shipment_anomaly:{stalls[Kind.STALLED_10D]}",
    ]


# --- Final stages ---------------------------------------------------------------------------


def stalled_and_held(shipped):
    shipments_scan_overdue(now=T + timedelta(days=6))
    shipments_scan_overdue(now=T + timedelta(days=10))
    return shipped.parcel


def test_a_delivery_clears_both_stalls(shipped, django_capture_on_commit_callbacks):
    parcel = stalled_and_held(shipped)
    apply_scans(
        parcel,
        (T + timedelta(hours=3), S.PICKED_UP),
        (T + timedelta(days=10, hours=2), S.DELIVERED),
        capture=django_capture_on_commit_callbacks,
    )
    assert anomalies(shipped) == [
        (Kind.STALLED_10D, Status.CLEARED),
        (Kind.STALLED_6D, Status.CLEARED),
    ]


def test_a_delivery_lifts_the_hold_with_a_history_row_saying_when(
    shipped, django_capture_on_commit_callbacks
):
    parcel = stalled_and_held(shipped)
    started = timezone.now()
    apply_scans(
        parcel,
        (T + timedelta(hours=3), S.PICKED_UP),
        (T + timedelta(days=10, hours=2), S.DELIVERED),
        capture=django_capture_on_commit_callbacks,
    )
    hold = ShipmentAnomaly.objects.get(order=shipped.order, kind=Kind.STALLED_10D)
    lifted = hold.events.get(note="订单结算已恢复。")
    assert (order_of(shipped).settlement_held_at, lifted.created_at >= started) == (None, True)


def test_a_cleared_stall_says_which_final_stage_cleared_it(
    shipped, django_capture_on_commit_callbacks
):
    parcel = stalled_and_held(shipped)
    apply_scans(
        parcel,
        (T + timedelta(hours=3), S.PICKED_UP),
        (T + timedelta(days=10, hours=2), S.DELIVERED),
        capture=django_capture_on_commit_callbacks,
    )
    stall = ShipmentAnomaly.objects.get(order=shipped.order, kind=Kind.STALLED_6D)
    assert stall.events.get(to_status=Status.CLEARED).note == "已解除：包裹已到“已签收”。"


@pytest.mark.parametrize(
    "stages",
    [
        [S.IN_TRANSIT, S.REJECTED],
        [S.IN_TRANSIT, S.RETURNING, S.RETURNED],
    ],
    ids=["rejected", "returned"],
)
def test_a_refusal_or_a_return_is_final_too(shipped, django_capture_on_commit_callbacks, stages):
    parcel = stalled_and_held(shipped)
    timed = [(T + timedelta(hours=3), S.PICKED_UP)]
    timed += [(T + timedelta(days=7 + i), stage) for i, stage in enumerate(stages)]
    apply_scans(parcel, *timed, capture=django_capture_on_commit_callbacks)
    assert (
        Parcel.objects.get(pk=parcel.pk).stage,
        anomalies(shipped),
        order_of(shipped).settlement_held_at,
    ) == (stages[-1], [(Kind.STALLED_10D, Status.CLEARED), (Kind.STALLED_6D, Status.CLEARED)], None)


def test_the_scan_skips_parcels_already_delivered(shipped, django_capture_on_commit_callbacks):
    apply_scans(
        shipped.parcel,
        (T + timedelta(hours=3), S.PICKED_UP),
        (T + timedelta(days=3), S.DELIVERED),
        capture=django_capture_on_commit_callbacks,
    )
    opened = shipments_scan_overdue(now=T + timedelta(days=10))
    assert (opened[Kind.STALLED_6D], opened[Kind.STALLED_10D], anomalies(shipped)) == (0, 0, [])


def test_a_parcel_still_in_transit_is_not_cleared(shipped, django_capture_on_commit_callbacks):
    parcel = stalled_and_held(shipped)
    apply_scans(
        parcel,
        (T + timedelta(hours=3), S.PICKED_UP),
        (T + timedelta(days=9), S.OUT_FOR_DELIVERY),
        capture=django_capture_on_commit_callbacks,
    )
    assert anomalies(shipped) == [(Kind.STALLED_10D, Status.OPEN), (Kind.STALLED_6D, Status.OPEN)]


# --- A pickup before the payment ------------------------------------------------------------


@pytest.fixture
def paid_then_shipped(world):
    """Paid at 20:15 Shanghai time, shipped half an hour later."""
    paid_at = datetime(2026, 3, 5, 20, 15, tzinfo=SHANGHAI)
    order = paid_order(world.shop_a, paid_at=paid_at)
    return ship_order(
        actor=world.owner,
        order=order,
        courier=Courier.objects.get(code="ZTO"),
        waybill_no=new_waybill(),
        channel=Shipment.Channel.WORKBENCH,
        now=paid_at + timedelta(minutes=30),
    ).shipment


def test_a_pickup_a_minute_before_the_payment_is_an_anomaly(
    paid_then_shipped, django_capture_on_commit_callbacks
):
    paid_at = paid_then_shipped.order.paid_at
    apply_scans(
        paid_then_shipped.parcel,
        (paid_at - timedelta(minutes=1), S.PICKED_UP),
        capture=django_capture_on_commit_callbacks,
    )
    anomaly = ShipmentAnomaly.objects.get(order=paid_then_shipped.order)
    assert (anomaly.kind, anomaly.status, anomaly.reason) == (
        Kind.PICKUP_BEFORE_PAYMENT,
        Status.OPEN,
        "揽收时间（2026-03-05 20:14）早于支付时间（2026-03-05 20:15）。",
    )


def test_a_pickup_a_minute_after_the_payment_is_no_anomaly(
    paid_then_shipped, django_capture_on_commit_callbacks
):
    paid_at = paid_then_shipped.order.paid_at
    apply_scans(
        paid_then_shipped.parcel,
        (paid_at + timedelta(minutes=1), S.PICKED_UP),
        capture=django_capture_on_commit_callbacks,
    )
    assert anomalies(paid_then_shipped) == []


def test_the_same_early_pickup_pushed_again_opens_nothing_twice(
    paid_then_shipped, django_capture_on_commit_callbacks
):
    paid_at = paid_then_shipped.order.paid_at
    # The second scan is earlier still: the pickup time moves and the parcel is checked again.
    for minutes in (1, 5):
        apply_scans(
            paid_then_shipped.parcel,
            (paid_at - timedelta(minutes=minutes), S.PICKED_UP),
            capture=django_capture_on_commit_callbacks,
        )
    assert anomalies(paid_then_shipped) == [(Kind.PICKUP_BEFORE_PAYMENT, Status.OPEN)]


# --- Batches --------------------------------------------------------------------------------


def test_an_order_on_two_parcels_scanned_in_batches_of_one_gets_one_history_row_per_stall(world):
    zto = Courier.objects.get(code="ZTO")
    first = paid_order(world.shop_a, paid_at=T - timedelta(hours=2))
    second = paid_order(
        world.shop_a, phone="13900000002", address="北京市朝阳区建国路2号", paid_at=T
    )
    own, shared = new_waybill(), new_waybill()
    for order, waybill in ((first, shared), (second, own), (second, shared)):
        ship_order(
            actor=world.owner,
            order=order,
            courier=zto,
            waybill_no=waybill,
            channel=Shipment.Channel.WORKBENCH,
            now=T,
        )
    shipments_scan_overdue(now=T + timedelta(days=6), batch=1)
    stalls = ShipmentAnomaly.objects.filter(kind=Kind.STALLED_6D).order_by("pk")
    assert [stall.events.count() for stall in stalls] == [1, 1, 1]


# --- End to end: the sandbox courier over HTTP ----------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_stalled_parcel_polled_from_the_sandbox_as_delivered_is_cleared(world, sandbox):
    from intercepts.demo import demo_waybill, waybill_serial
    from intercepts.tasks import parcels_poll
    from intercepts.tracking import polling
    from tests.factories import sandbox_served

    sandbox_served(sandbox, "kuaidi100", ["ZTO"], requests_per_second=200, batch_size=10)
    zto = Courier.objects.get(code="ZTO")
    now = timezone.now()
    order = paid_order(world.shop_a, paid_at=now - timedelta(days=12))
    # The number's last digit makes the sandbox tell the parcel delivered.
    waybill = demo_waybill(zto, waybill_serial(920_001, S.DELIVERED))
    shipment = ship_order(
        actor=world.owner,
        order=order,
        courier=zto,
        waybill_no=waybill,
        channel=Shipment.Channel.WORKBENCH,
        now=now - timedelta(days=11),
    ).shipment
    shipments_scan_overdue(now=now)
    held = order_of(shipment).settlement_held_at
    claimed = polling.parcels_claim_due()
    parcels_poll(zto.pk, claimed[zto.pk])
    assert (
        held is not None,
        Parcel.objects.get(pk=shipment.parcel_id).stage,
        anomalies(shipment),
        order_of(shipment).settlement_held_at,
    ) == (
        True,
        S.DELIVERED,
        [(Kind.STALLED_10D, Status.CLEARED), (Kind.STALLED_6D, Status.CLEARED)],
        None,
    )


def test_an_order_paid_after_its_waybills_pickup_is_an_anomaly_when_it_joins(
    world, django_capture_on_commit_callbacks
):
    # The buyer's first order is picked up; a second order, paid later, is then shipped on the
    # same (merged) waybill: its goods cannot have been in a parcel picked up before the payment.
    zto = Courier.objects.get(code="ZTO")
    first = paid_order(world.shop_a, paid_at=T - timedelta(hours=2))
    waybill = new_waybill()
    shipped = ship_order(
        actor=world.owner,
        order=first,
        courier=zto,
        waybill_no=waybill,
        channel=Shipment.Channel.WORKBENCH,
        now=T,
    ).shipment
    apply_scans(
        shipped.parcel,
        (T + timedelta(hours=1), S.PICKED_UP),
        capture=django_capture_on_commit_callbacks,
    )
    later = paid_order(world.shop_a, paid_at=T + timedelta(days=1))
    ship_order(
        actor=world.owner,
        order=later,
        courier=zto,
        waybill_no=waybill,
        channel=Shipment.Channel.WORKBENCH,
        now=T + timedelta(days=1, minutes=5),
    )
    assert list(ShipmentAnomaly.objects.values_list("order__order_no", "kind")) == [
        (later.order_no, Kind.PICKUP_BEFORE_PAYMENT)
    ]


def test_without_a_webhook_endpoint_a_stall_queues_no_notice(shipped):
    shipments_scan_overdue(now=T + timedelta(days=10))
    assert (len(anomalies(shipped)), notices()) == (2, [])


# --- The platform's ruling ------------------------------------------------------------------


def ten_day_stall(shipped) -> ShipmentAnomaly:
    shipments_scan_overdue(now=T + timedelta(days=10))
    return ShipmentAnomaly.objects.get(order=shipped.order, kind=Kind.STALLED_10D)


def test_customer_service_dismissing_the_ten_day_stall_lifts_the_hold(world, shipped):
    from intercepts.services.shipment_checks import anomaly_rule

    anomaly_rule(actor=world.cs, anomaly=ten_day_stall(shipped), uphold=False, note="快递延误")
    assert order_of(shipped).settlement_held_at is None


def test_customer_service_upholding_the_ten_day_stall_keeps_the_hold(world, shipped):
    from intercepts.services.shipment_checks import anomaly_rule

    anomaly_rule(actor=world.cs, anomaly=ten_day_stall(shipped), uphold=True, note="虚假发货")
    assert order_of(shipped).settlement_held_at == T + timedelta(days=10)


@pytest.mark.parametrize("who", ["owner", "agent", "viewer", "other", "finance"])
def test_only_platform_customer_service_may_rule(world, shipped, who):
    from django.core.exceptions import PermissionDenied

    from intercepts.services.shipment_checks import anomaly_rule

    anomaly = ten_day_stall(shipped)
    with pytest.raises(PermissionDenied):
        anomaly_rule(actor=world.user(who), anomaly=anomaly, uphold=False, note="不是我的事")


def test_a_parcel_the_merchant_had_intercepted_is_no_stall(world, shipped, sandbox):
    # On its way back by the platform's own record: the claim watch follows it, not this check.
    from intercepts.services.orders import after_sale_receive
    from tests.factories import make_intercept, sandbox_served
    from tests.intercepts.readiness import make_ready

    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    after_sale = after_sale_receive(order=shipped.order, kind="refund_only")
    make_intercept(world.owner, shipped.parcel, after_sale, "submitted", "accepted", "succeeded")

    opened = shipments_scan_overdue(now=T + timedelta(days=11))

    assert (opened["stalled_6d"], opened["stalled_10d"], anomalies(shipped)) == (0, 0, [])


def test_a_batch_meeting_a_stall_another_run_opened_writes_only_its_own(world, shipped):
    # Two scans at once: the other run opened this shipment's stall between this run's read
    # and its insert. This run writes the other order's stall, one history row, no second.
    from intercepts.models import ShipmentAnomalyEvent
    from intercepts.services.shipment_checks import _open_stalls, _stall_reason

    other = ship_order(
        actor=world.owner,
        order=paid_order(world.shop_a, phone="13900000009", address="北京市朝阳区建国路9号"),
        courier=Courier.objects.get(code="ZTO"),
        waybill_no=new_waybill(),
        channel=Shipment.Channel.WORKBENCH,
        now=T,
    ).shipment
    shipments_scan_overdue(now=T + timedelta(days=6))  # the other run: both stalls opened
    ShipmentAnomaly.objects.filter(order=other.order).delete()
    chunk = [
        (s.shop_id, s.order_id, s.parcel_id) for s in (shipped, other)
    ]  # read before the other run's insert

    written = _open_stalls(
        chunk,
        kind=Kind.STALLED_6D,
        reason=_stall_reason(Kind.STALLED_6D, 6),
        now=T + timedelta(days=6, minutes=1),
        extend=timedelta(days=5),
        with_endpoints=set(),
    )

    assert written == 1
    assert anomalies(shipped) == anomalies(other) == [(Kind.STALLED_6D, Status.OPEN)]
    assert ShipmentAnomalyEvent.objects.filter(anomaly__order=shipped.order).count() == 1
    assert ShipmentAnomalyEvent.objects.filter(anomaly__order=other.order).count() == 1
