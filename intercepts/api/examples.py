"""Examples the OpenAPI schema shows beside each after-sale, parcel, intercept and shipment
endpoint."""

from drf_spectacular.utils import OpenApiExample

AFTER_SALE = {
    "id": 7,
    "order_no": "DY20261207000123",
    "kind": "refund_only",
    "status": "pending",
    "arbitration": "none",
    "refund_amount_fen": 12900,
    "reason": "不想要了",
    "parcel_ids": [42],
    "created_at": "2026-12-07T10:15:00+08:00",
    "updated_at": "2026-12-07T10:15:00+08:00",
}
PARCEL = {
    "id": 42,
    "order_no": "DY20261207000123",
    "courier": "ZTO",
    "waybill_no": "78123456789012",
    "stage": "in_transit",
    "declared_value_fen": 12900,
    "receiver_name": "张三",
    "receiver_phone": "138****1234",
    "shipped_at": "2026-12-06T18:00:00+08:00",
    "picked_up_at": "2026-12-06T19:02:00+08:00",
    "signed_at": None,
    "created_at": "2026-12-06T18:00:00+08:00",
    "updated_at": "2026-12-07T08:30:00+08:00",
}
TRACKING_EVENT = {
    "occurred_at": "2026-12-07T08:30:00+08:00",
    "stage": "in_transit",
    "raw_code": "1002",
    "description": "快件已从【杭州转运中心】发出，正发往【上海转运中心】",
    "location": "杭州",
    "source": "kuaidi100",
}
INTERCEPT = {
    "id": 301,
    "after_sale": 7,
    "parcel": 42,
    "waybill_no": "78123456789012",
    "courier": "ZTO",
    "action": "return",
    "status": "accepted",
    "channel": "api",
    "stage_at_request": "in_transit",
    "fee_fen": 300,
    "fee_state": "held",
    "courier_reference": "T3F2A9C1D0E4B5A6",
    "failure_code": "",
    "failure_reason": "",
    "reason": "买家仅退款",
    "new_address": {},
    "created_at": "2026-12-07T10:20:00+08:00",
    "updated_at": "2026-12-07T10:20:03+08:00",
}
SHIPMENT = {
    "id": 5120,
    "order_no": "DY20261207000123",
    "courier": "ZTO",
    "waybill_no": "78123456789012",
    "parcel": 42,
    "flagged": False,
    "channel": "api",
    "shipped_at": "2026-12-06T18:00:00+08:00",
}
SHIPMENT_ANOMALY = {
    "id": 88,
    "order_no": "DY20261207000123",
    "courier": "ZTO",
    "waybill_no": "78123456789012",
    "parcel": 42,
    "kind": "stalled_10d",
    "status": "open",
    "reason": "发货 10 天仍无签收、拒收或退回：订单结算暂停，买家自动确认收货时间延后。",
    "detected_at": "2026-12-16T18:00:00+08:00",
    "explanation": "",
    "closed_at": None,
    "settlement_held": True,
}


def page(item: dict) -> dict:
    return {"next": None, "previous": None, "results": [item]}


def listed(name: str, item: dict) -> list[OpenApiExample]:
    return [OpenApiExample(name, value=page(item), response_only=True)]


def one(name: str, item: dict) -> list[OpenApiExample]:
    return [OpenApiExample(name, value=item, response_only=True)]
