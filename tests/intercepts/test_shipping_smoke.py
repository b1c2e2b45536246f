from datetime import timedelta

import pytest
from django.utils import timezone

from couriers.models import Courier
from intercepts.models import Order, ShipmentAnomaly
from intercepts.services import shipment_checks
from intercepts.services.shipping import ShippingRefused, ship_order
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = pytest.mark.django_db


def test_smoke(world):
    zto = Courier.objects.get(code="ZTO")
    order = paid_order(world.shop_a)
    wb = new_waybill()
    done = ship_order(actor=world.owner, order=order, courier=zto, waybill_no=wb, channel="workbench")
    assert done.created and not done.flagged
    order.refresh_from_db()
    assert order.status == Order.Status.SHIPPED
    again = ship_order(actor=world.owner, order=order, courier=zto, waybill_no=wb, channel="workbench")
    assert not again.created
    second = paid_order(world.shop_a, phone="13900000000", address="北京市朝阳区1号")
    flagged = ship_order(actor=world.owner, order=second, courier=zto, waybill_no=wb, channel="workbench")
    assert flagged.flagged
    assert ShipmentAnomaly.objects.get(order=second).kind == "shared_waybill"
    third = paid_order(world.shop_a, phone="13700000000", address="广州市天河区2号")
    with pytest.raises(ShippingRefused) as exc:
        ship_order(actor=world.owner, order=third, courier=zto, waybill_no=wb, channel="workbench")
    assert str(exc.value) == "当前运单号对应3个收件地址，上传失败"
    now = timezone.now()
    got = shipment_checks.shipments_scan_overdue(now=now + timedelta(days=6))
    assert got["stalled_6d"] == 2, got
    got = shipment_checks.shipments_scan_overdue(now=now + timedelta(days=10))
    order.refresh_from_db()
    assert order.settlement_held_at is not None
