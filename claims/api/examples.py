"""Examples the OpenAPI schema shows beside each claim endpoint."""

from drf_spectacular.utils import OpenApiExample

CLAIM = {
    "id": 88,
    "intercept": 301,
    "parcel": 42,
    "waybill_no": "78123456789012",
    "courier": "ZTO",
    "reason": "lost",
    "description": "拦截成功后退回途中丢失，至今未退回仓库",
    "channel": "online",
    "status": "submitted",
    "goods_value_fen": 12900,
    "ceiling_fen": 12900,
    "amount_claimed_fen": 12900,
    "amount_approved_fen": None,
    "decision_note": "",
    "appeal_note": "",
    "appealed_at": None,
    "payout": None,
    "payment_reference": "",
    "paid_at": None,
    "created_at": "2026-12-15T09:30:00+08:00",
    "updated_at": "2026-12-15T09:30:00+08:00",
}
EVIDENCE = {
    "id": 131,
    "name": "外包装破损.jpg",
    "content_type": "image/jpeg",
    "size": 482113,
    "sha256": "9f2c4e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e",
    "uploaded_at": "2026-12-15T09:30:00+08:00",
}
EVENT = {
    "from_status": None,
    "to_status": "submitted",
    "note": "",
    "created_at": "2026-12-15T09:30:00+08:00",
}
CLAIM_DETAIL = {
    **CLAIM,
    "courier_name": "中通快递",
    "courier_phone": "95311",
    "evidence": [EVIDENCE],
    "events": [EVENT],
}
CEILING = {
    "intercept": 301,
    "parcel": 42,
    "waybill_no": "78123456789012",
    "courier": "ZTO",
    "goods_value_fen": 12900,
    "ceiling_fen": 12900,
    "claimable": True,
    "refusal_code": None,
    "refusal": "",
}
# What ``claim.status_changed`` carries in ``data`` (README, Webhooks).
WEBHOOK_DATA = {
    "id": 88,
    "status": "with_courier",
    "from": "submitted",
    "reason": "lost",
    "channel": "online",
    "intercept": 301,
    "waybill": "78123456789012",
    "courier": "ZTO",
    "amount_claimed_fen": 12900,
    "amount_approved_fen": None,
    "payout": None,
    "updated_at": "2026-12-15T11:02:00+08:00",
}


def listed(name: str, item: dict) -> list[OpenApiExample]:
    return [
        OpenApiExample(
            name, value={"next": None, "previous": None, "results": [item]}, response_only=True
        )
    ]


def one(name: str, item: dict) -> list[OpenApiExample]:
    return [OpenApiExample(name, value=item, response_only=True)]
