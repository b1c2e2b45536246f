"""A new parcel asks its gateway to push tracking, once, after the save commits."""

import pytest

from couriers.models import Courier, CourierAccount
from intercepts.models import Order, Shipment
from intercepts.services.shipping import ship_order
from intercepts.tracking.polling import parcel_subscribe
from tests.factories import OrderLineFactory, make_after_sale, sandbox_served


@pytest.fixture
def zto_served(db, sandbox):
    sandbox_served(
        sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/couriers/push/1/"
    )
    return Courier.objects.get(code="ZTO")


def _subscriptions(sandbox, waybill_no):
    return [
        r
        for r in sandbox.requests
        if r["operation"].endswith("subscribe") and waybill_no in r["waybills"]
    ]


def test_a_new_parcel_subscribes_once(
    world, zto_served, sandbox, django_capture_on_commit_callbacks
):
    after_sale, _ = make_after_sale(world.shop_a)
    OrderLineFactory(order=after_sale.order)  # goods not yet in a parcel
    Order.objects.filter(pk=after_sale.order_id).update(
        receiver_name="张三", receiver_phone="13812341234", receiver_address="上海市"
    )
    after_sale.order.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        parcel = ship_order(
            actor=world.owner,
            order=after_sale.order,
            courier=zto_served,
            waybill_no="73555555555552",
            channel=Shipment.Channel.WORKBENCH,
        ).shipment.parcel
    parcel.refresh_from_db()
    assert parcel.subscribed_at is not None
    assert len(_subscriptions(sandbox, parcel.waybill_no)) == 1
    assert parcel_subscribe(parcel_id=parcel.pk) is False  # the task run again: no second one
    assert len(_subscriptions(sandbox, parcel.waybill_no)) == 1


def test_a_failed_subscription_can_be_tried_again(world, zto_served, sandbox):
    CourierAccount.objects.filter(pk=zto_served.account_id).update(key="wrong-key")
    parcel = world.parcel_a
    Courier.objects.filter(pk=parcel.courier_id).update(account=zto_served.account)
    assert parcel_subscribe(parcel_id=parcel.pk) is False
    parcel.refresh_from_db()
    assert parcel.subscribed_at is None
