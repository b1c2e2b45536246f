"""Orders as the platform sends them, ready to ship, for the shipment tests."""

import itertools

from couriers.models import Courier
from intercepts.demo import demo_waybill
from intercepts.services.orders import order_receive

_orders = itertools.count(1)
_waybills = itertools.count(700_000_001)

ADDRESS = "上海市浦东新区幸福路1号"


def paid_order(shop, *, phone="13812341234", address=ADDRESS, name="张三", paid_at=None, no=None):
    return order_receive(
        shop=shop,
        order_no=no or f"77{next(_orders):010d}",
        buyer_name=name,
        buyer_phone=phone,
        receiver_name=name,
        receiver_phone=phone,
        receiver_address=address,
        paid_at=paid_at,
        lines=[{"goods_name": "纯棉T恤", "unit_price_fen": 12900, "quantity": 1}],
    )


def new_waybill(code: str = "ZTO") -> str:
    return demo_waybill(Courier.objects.get(code=code), next(_waybills))
