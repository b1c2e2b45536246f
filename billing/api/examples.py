"""Examples the OpenAPI schema shows beside the wallet and invoice endpoints."""

WALLET = {"available_fen": 49700, "held_fen": 300}
WALLET_ENTRY = {
    "id": 1201,
    "kind": "hold",
    "reference": "intercept:301",
    "amount_fen": -300,
    "available_after_fen": 49700,
    "memo": "",
    "created_at": "2026-12-07T10:20:00+08:00",
}
INVOICE = {
    "id": 12,
    "invoice_type": "digital_normal",
    "title": "上海某某贸易有限公司",
    "taxpayer_id": "91330100716105852F",
    "address_phone": "",
    "bank_account": "",
    "status": "requested",
    "invoice_number": "",
    "amount_fen": 600,
    "lines": [
        {
            "reference": "intercept:301",
            "courier_name": "中通快递",
            "amount_fen": 300,
            "charged_at": "2026-12-07T11:02:00+08:00",
        }
    ],
    "created_at": "2026-12-07T12:00:00+08:00",
    "updated_at": "2026-12-07T12:00:00+08:00",
}
