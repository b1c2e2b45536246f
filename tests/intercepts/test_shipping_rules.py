"""The platform's rules against fake shipping, through ``ship_order`` (the one place they are
applied to one order): the waybill's pattern, another shop's waybill, a second receiver
flagged, a third refused, merged shipping, a repeat, who may ship, and what shipping writes.
The last test races two shipments onto one waybill on their own PostgreSQL connections."""

import threading
from datetime import timedelta

import psycopg
import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from couriers.models import Courier
from intercepts.models import InterceptPolicy, Order, Parcel, Shipment, ShipmentAnomaly
from intercepts.services.orders import order_set_status
from intercepts.services.shipping import (
    NOT_SHIPPABLE,
    THREE_ADDRESSES,
    WAYBILL_MISMATCH,
    WAYBILL_TAKEN,
    ShippingRefused,
    receiver_key,
    ship_order,
)
from tests.factories import ParcelFactory
from tests.intercepts import anomaly_helpers
from tests.intercepts.shipping_helpers import new_waybill, paid_order

uploads_dir = anomaly_helpers.uploads_dir  # uploaded files under the test's own folder

WORKBENCH = Shipment.Channel.WORKBENCH


@pytest.fixture
def zto(db):
    return Courier.objects.get(code="ZTO")


def ship(actor, order, courier, waybill_no, **kwargs):
    return ship_order(
        actor=actor,
        order=order,
        courier=courier,
        waybill_no=waybill_no,
        channel=WORKBENCH,
        **kwargs,
    )


def refusal(actor, order, courier, waybill_no) -> tuple[str, str]:
    with pytest.raises(ShippingRefused) as caught:
        ship(actor, order, courier, waybill_no)
    return caught.value.code, caught.value.message


def three_receivers(shop):
    return [
        paid_order(shop, phone="13800000001", address="上海市浦东新区幸福路1号"),
        paid_order(shop, phone="13900000002", address="北京市朝阳区建国路2号"),
        paid_order(shop, phone="13700000003", address="广州市天河区体育西路3号"),
    ]


@pytest.mark.django_db
def test_a_waybill_not_fitting_its_courier_is_refused_with_code_4009(world, zto):
    order = paid_order(world.shop_a)
    yto_number = new_waybill("YTO")
    assert refusal(world.owner, order, zto, yto_number) == (
        WAYBILL_MISMATCH,
        "运单号和物流公司不匹配",
    )


@pytest.mark.django_db
def test_another_shops_waybill_is_refused_without_saying_whose(world, zto):
    waybill = new_waybill()
    ship(world.other, paid_order(world.shop_b), zto, waybill)
    code, message = refusal(world.owner, paid_order(world.shop_a), zto, waybill)
    assert (code, message) == (WAYBILL_TAKEN, "该运单号已登记在一个包裹上，不能重复登记。")


@pytest.mark.django_db
def test_a_second_receiver_is_accepted_and_flagged_with_its_reason_and_history(world, zto):
    first, second, _third = three_receivers(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    done = ship(world.owner, second, zto, waybill)
    anomaly = ShipmentAnomaly.objects.get(order=second)
    event = anomaly.events.get()
    assert (
        done.created,
        done.flagged,
        done.shipment.flagged,
        anomaly.kind,
        anomaly.status,
        anomaly.reason,
        event.to_status,
        event.note,
    ) == (
        True,
        True,
        True,
        ShipmentAnomaly.Kind.SHARED_WAYBILL,
        ShipmentAnomaly.Status.OPEN,
        f"运单号 {waybill} 已用于另一个收件地址（订单 {first.order_no}），疑似虚假发货。",
        ShipmentAnomaly.Status.OPEN,
        anomaly.reason,
    )


@pytest.mark.django_db
def test_a_third_receiver_is_refused_in_the_platforms_words(world, zto):
    first, second, third = three_receivers(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    ship(world.owner, second, zto, waybill)
    assert refusal(world.owner, third, zto, waybill) == (
        THREE_ADDRESSES,
        "当前运单号对应3个收件地址，上传失败",
    )


@pytest.mark.django_db
def test_a_refused_third_receiver_writes_nothing(world, zto):
    first, second, third = three_receivers(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    ship(world.owner, second, zto, waybill)
    with pytest.raises(ShippingRefused):
        ship(world.owner, third, zto, waybill)
    third.refresh_from_db()
    assert (
        third.status,
        third.shipments.count(),
        third.events.filter(to_status=Order.Status.SHIPPED).count(),
        ShipmentAnomaly.objects.filter(order=third).count(),
    ) == (Order.Status.PAID, 0, 0, 0)


@pytest.mark.django_db
def test_two_orders_of_one_buyer_and_address_share_a_waybill_without_a_flag(world, zto):
    first = paid_order(world.shop_a)
    second = paid_order(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    done = ship(world.owner, second, zto, waybill)
    assert (done.created, done.flagged, ShipmentAnomaly.objects.count()) == (True, False, 0)


def test_addresses_differing_in_spaces_punctuation_and_case_are_one_receiver():
    assert receiver_key("138-1234-1234", "上海市浦东新区幸福路1号 Room 1, No.8") == receiver_key(
        "+86 13812341234", "上海市浦东新区幸福路1号room1（no8）。"
    )


@pytest.mark.django_db
def test_a_normalised_same_address_counts_as_merged_shipping(world, zto):
    first = paid_order(
        world.shop_a, phone="13812341234", address="上海市浦东新区幸福路1号 Room 1, No.8"
    )
    second = paid_order(
        world.shop_a, phone="138 1234 1234", address="上海市浦东新区幸福路1号room1 no8"
    )
    third = paid_order(
        world.shop_a, phone="13812341234", address="上海市，浦东新区 幸福路1号-ROOM1#NO.8"
    )
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    ship(world.owner, second, zto, waybill)
    done = ship(world.owner, third, zto, waybill)
    assert (done.created, done.flagged, ShipmentAnomaly.objects.count()) == (True, False, 0)


@pytest.mark.django_db
def test_shipping_the_same_order_with_the_same_waybill_again_writes_nothing(world, zto):
    first, second, _third = three_receivers(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    ship(world.owner, second, zto, waybill)  # flagged: its anomaly must not open twice

    def written():
        return (
            Parcel.objects.filter(waybill_no=waybill).count(),
            Shipment.objects.count(),
            ShipmentAnomaly.objects.count(),
            sum(anomaly.events.count() for anomaly in ShipmentAnomaly.objects.all()),
            first.events.count() + second.events.count(),
        )

    before = written()
    again = [ship(world.agent, first, zto, waybill), ship(world.owner, second, zto, waybill)]
    assert ([(a.created, a.flagged) for a in again], written()) == (
        [(False, False), (False, True)],
        before,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer", "other", "cs", "finance"])
def test_only_the_shops_owner_or_agent_may_ship(world, zto, who):
    order = paid_order(world.shop_a)
    with pytest.raises(PermissionDenied):
        ship(world.user(who), order, zto, new_waybill())


@pytest.mark.django_db
def test_the_agent_may_ship(world, zto):
    assert ship(world.agent, paid_order(world.shop_a), zto, new_waybill()).created is True


@pytest.mark.django_db
def test_a_cancelled_order_is_refused(world, zto):
    order = paid_order(world.shop_a)
    order_set_status(order=order, to_status=Order.Status.CANCELLED)
    assert refusal(world.owner, order, zto, new_waybill()) == (
        NOT_SHIPPABLE,
        "订单已取消或已完成，不能发货。",
    )


@pytest.mark.django_db
def test_the_order_becomes_shipped_with_its_history_row(world, zto):
    order = paid_order(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, order, zto, waybill)
    order.refresh_from_db()
    event = order.events.get(to_status=Order.Status.SHIPPED)
    assert (order.status, event.from_status, event.to_status, event.actor, event.note) == (
        Order.Status.SHIPPED,
        Order.Status.PAID,
        Order.Status.SHIPPED,
        world.owner,
        f"已发货：{zto.display_name} {waybill}。",
    )


@pytest.mark.django_db
def test_shipping_sets_the_automatic_receipt_confirmation_time(world, zto):
    order = paid_order(world.shop_a)
    moment = timezone.now() - timedelta(hours=2)
    ship(world.owner, order, zto, new_waybill(), now=moment)
    order.refresh_from_db()
    days = InterceptPolicy.current().receipt_confirm_days
    assert (order.shipped_at, order.receipt_confirm_at) == (
        moment,
        moment + timedelta(days=days),
    )


# --- Real parallel: two shipments onto one waybill, each on its own connection ---------------


def _dsn() -> dict:
    params = connection.settings_dict
    return {
        "host": params["HOST"],
        "port": params["PORT"] or 5432,
        "user": params["USER"],
        "dbname": params["NAME"],
    }


def _race(actor, courier, waybill, orders, *, release, waiting_on: str) -> tuple[int, list]:
    """Ship ``orders`` onto ``waybill`` at once, each on its own connection, while something
    holds them up; once both are waiting inside PostgreSQL on a statement starting with
    ``waiting_on``, ``release()``. Returns how many were seen waiting and the outcomes."""
    results, lock = [], threading.Lock()

    def ship_one(order):
        try:
            done = ship(actor, Order.objects.get(pk=order.pk), courier, waybill)
            outcome = "flagged" if done.flagged else "accepted"
        except ShippingRefused as exc:
            outcome = exc.code
        except Exception as exc:  # asserted on by the caller
            outcome = repr(exc)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=ship_one, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    waiting = 0
    with psycopg.connect(**_dsn(), autocommit=True) as watcher:
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [connection.settings_dict["NAME"], f"{waiting_on}%"],
            ).fetchone()[0]
            if waiting == len(orders):
                break
            threading.Event().wait(0.05)
    release()
    for thread in threads:
        thread.join(timeout=60)
    return waiting, sorted(results)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres
def test_two_receivers_racing_to_be_second_and_third_on_a_waybill_one_is_refused(world, zto):
    first, second, third = three_receivers(world.shop_a)
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    parcel = Parcel.objects.get(waybill_no=waybill)
    # A third connection holds the parcel's row, so both shipments are in flight inside
    # PostgreSQL, queued on the same row, before either can judge the waybill.
    blocker = psycopg.connect(**_dsn(), autocommit=False)
    blocker.execute("SELECT id FROM intercepts_parcel WHERE id = %s FOR UPDATE", [parcel.pk])

    def release():
        blocker.rollback()
        blocker.close()

    waiting, outcomes = _race(
        world.owner,
        zto,
        waybill,
        [second, third],
        release=release,
        waiting_on='SELECT "intercepts_parcel".',
    )
    assert (
        waiting,
        outcomes,
        Shipment.objects.filter(parcel=parcel).count(),
        ShipmentAnomaly.objects.count(),
    ) == (2, sorted(["flagged", THREE_ADDRESSES]), 2, 1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres
def test_two_receivers_racing_onto_a_new_waybill_make_one_parcel_and_one_flag(world, zto):
    first, second, _third = three_receivers(world.shop_a)
    waybill = new_waybill()
    # Another connection inserts the waybill's parcel and keeps its transaction open: both
    # shipments find no parcel, insert theirs and wait on the unique index. Once it rolls back
    # one insert wins; the other fails on the constraint and is judged again with that parcel.
    inserted, done = threading.Event(), threading.Event()

    def hold_the_waybill():
        try:
            with transaction.atomic():
                ParcelFactory(courier=zto, waybill_no=waybill)
                inserted.set()
                done.wait(timeout=30)
                transaction.set_rollback(True)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_waybill)
    holder.start()
    inserted.wait(timeout=30)

    def release():
        done.set()
        holder.join(timeout=30)

    waiting, outcomes = _race(
        world.owner,
        zto,
        waybill,
        [first, second],
        release=release,
        waiting_on='INSERT INTO "intercepts_parcel"',
    )
    assert (
        waiting,
        outcomes,
        Parcel.objects.filter(waybill_no=waybill).count(),
        Shipment.objects.filter(parcel__waybill_no=waybill).count(),
        ShipmentAnomaly.objects.count(),
    ) == (2, ["accepted", "flagged"], 1, 2, 1)


@pytest.mark.django_db
def test_another_order_of_the_flagged_second_receiver_is_flagged_too(world, zto):
    first, second, _third = three_receivers(world.shop_a)
    second_again = paid_order(
        world.shop_a, phone=second.receiver_phone, address=second.receiver_address
    )
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    ship(world.owner, second, zto, waybill)
    done = ship(world.owner, second_again, zto, waybill)
    assert (done.flagged, ShipmentAnomaly.objects.filter(order=second_again).count()) == (True, 1)


def test_another_order_of_the_first_receiver_is_merged_shipping_even_on_a_flagged_waybill(
    world, zto
):
    # The parcel was recorded for the first receiver: their next order in it is merged
    # shipping, whoever else was flagged on the waybill meanwhile.
    first, second, _third = three_receivers(world.shop_a)
    first_again = paid_order(
        world.shop_a, phone=first.receiver_phone, address=first.receiver_address
    )
    waybill = new_waybill()
    ship(world.owner, first, zto, waybill)
    assert ship(world.owner, second, zto, waybill).flagged
    done = ship(world.owner, first_again, zto, waybill)
    assert (done.flagged, ShipmentAnomaly.objects.filter(order=first_again).count()) == (False, 0)


def test_in_one_file_the_first_receivers_next_order_is_not_flagged(world, uploads_dir):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from intercepts.services.shipment_uploads import shipment_upload_create

    first, second, _third = three_receivers(world.shop_a)
    first_again = paid_order(
        world.shop_a, phone=first.receiver_phone, address=first.receiver_address
    )
    waybill = new_waybill()
    body = "订单号,快递公司,运单号\n" + "".join(
        f"{order.order_no},ZTO,{waybill}\n" for order in (first, second, first_again)
    )
    upload = shipment_upload_create(
        actor=world.owner,
        shop=world.shop_a,
        upload=SimpleUploadedFile("ship.csv", body.encode()),
    )
    from intercepts.services.shipment_uploads import shipment_upload_parse

    shipment_upload_parse(upload_id=upload.pk)
    rows = list(upload.rows.order_by("row_no").values_list("outcome", "flagged"))
    assert rows == [("valid", False), ("valid", True), ("valid", False)]


def test_merged_shipping_puts_the_second_orders_goods_in_the_parcel(world, zto):
    first, second = paid_order(world.shop_a), paid_order(world.shop_a)
    waybill = new_waybill()
    parcel = ship(world.owner, first, zto, waybill).shipment.parcel
    ship(world.owner, second, zto, waybill)
    parcel.refresh_from_db()
    assert parcel.declared_value_fen == 25800
    assert set(parcel.lines.values_list("order_id", flat=True)) == {first.pk, second.pk}
    # Its goods are in a parcel now: a new waybill for the same order has nothing to carry.
    assert refusal(world.owner, second, zto, new_waybill())[0] == "nothing_to_ship"


def test_a_flagged_second_receivers_goods_are_not_added_to_the_parcel(world, zto):
    first, second = three_receivers(world.shop_a)[:2]
    waybill = new_waybill()
    parcel = ship(world.owner, first, zto, waybill).shipment.parcel
    assert ship(world.owner, second, zto, waybill).flagged
    parcel.refresh_from_db()
    assert parcel.declared_value_fen == 12900
    assert set(parcel.lines.values_list("order_id", flat=True)) == {first.pk}
