"""Where a gateway's real behaviour is unknown, the adapters read both forms (a number or a
string, either casing of a field, either SF signing rule, single-quoted JSON) and log once which
one they met, so a first real account tells us. Pushes are built here as a gateway would send
them, signed with the account's credentials."""

import logging

import pytest

from couriers import signing
from couriers.adapters import get_adapter
from couriers.adapters.base import PushRejected
from couriers.adapters.common import compact_json, notice_variant
from couriers.sandbox import SANDBOX_ACCOUNTS, sandbox_account

ROOT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def fresh_notices():
    notice_variant.cache_clear()
    yield
    notice_variant.cache_clear()


def _adapter(protocol: str):
    return get_adapter(sandbox_account(protocol, ROOT))


def _variants(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "couriers.variants"]


def _kdniao_push(request_data: str, request_type: str = "102") -> dict[str, str]:
    key = SANDBOX_ACCOUNTS["kdniao"]["app_key"]
    return {
        "RequestData": request_data,
        "DataSign": signing.kdniao_data_sign(request_data, key),
        "RequestType": request_type,
    }


KDNIAO_TRACK = (
    "{'EBusinessID':'1000001','PushTime':'2026-12-07 10:00:00','Count':1,'Data':[{"
    "'LogisticCode':'YD1234567890','ShipperCode':'YD','Success':true,'State':2,'StateEx':201,"
    "'Traces':[{'AcceptTime':'2026-12-07 09:00:00','AcceptStation':'到达【上海转运中心】'}]}]}"
)


def test_kdniao_push_in_single_quotes_with_numbers_is_read_and_noted(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")

    result = _adapter("kdniao").parse_push(_kdniao_push(KDNIAO_TRACK))

    [tracking] = result.tracking
    assert tracking.waybill_no == "YD1234567890"
    assert [scan.stage for scan in tracking.scans] == ["at_destination_city"]
    notes = _variants(caplog)
    assert any("JSON5" in note for note in notes)
    assert any("Count as int" in note for note in notes)
    assert any("StateEx as int" in note for note in notes)


def test_a_variant_is_logged_once_per_process(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")
    adapter = _adapter("kdniao")

    adapter.parse_push(_kdniao_push(KDNIAO_TRACK))
    adapter.parse_push(_kdniao_push(KDNIAO_TRACK))

    assert sum("Count as int" in note for note in _variants(caplog)) == 1


def test_kdniao_push_with_the_documented_types_notes_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")
    request_data = compact_json(
        {
            "EBusinessID": "1000001",
            "PushTime": "2026-12-07 10:00:00",
            "Count": "1",
            "Data": [
                {
                    "LogisticCode": "YD1234567890",
                    "State": "2",
                    "StateEx": "201",
                    "Traces": [{"AcceptTime": "2026-12-07 09:00:00", "AcceptStation": "到达"}],
                }
            ],
        }
    )

    _adapter("kdniao").parse_push(_kdniao_push(request_data))

    assert _variants(caplog) == []


def test_kdniao_push_that_is_not_even_json5_is_refused():
    with pytest.raises(PushRejected):
        _adapter("kdniao").parse_push(_kdniao_push("{'Data': ["))


def _sf_push(content: str, rule: str, timestamp: str = "1765072800000") -> dict[str, str]:
    check_word = SANDBOX_ACCOUNTS["sf"]["check_word"]
    return {
        "content": content,
        "timestamp": timestamp,
        "msgDigest": signing.sf_msg_digest(content, timestamp, check_word, rule=rule),
        "partnerID": SANDBOX_ACCOUNTS["sf"]["partner_id"],
    }


SF_ROUTE = compact_json(
    {
        "Body": {
            "WaybillRoute": [
                {
                    "mailNo": "SF1234567890123",
                    "opCode": 44,
                    "acceptTime": "2026-12-07 09:00:00",
                    "acceptAddress": "上海",
                    "remark": "快件到达 收件人 张* 138****0000",
                }
            ]
        }
    }
)


def test_sf_push_signed_by_the_python_demo_rule_with_mail_no_casing_is_read_and_noted(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")

    result = _adapter("sf").parse_push(_sf_push(SF_ROUTE, signing.SF_PYTHON_DEMO_RULE))

    [tracking] = result.tracking
    assert tracking.waybill_no == "SF1234567890123"
    assert tracking.scans[0].stage == "out_for_delivery"
    notes = _variants(caplog)
    assert any("python-demo rule" in note for note in notes)
    assert any("'mailNo' instead of 'mailno'" in note for note in notes)
    assert any("opCode as a number" in note for note in notes)


def test_sf_push_timestamp_in_seconds_is_read_and_noted(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")
    form = _sf_push(SF_ROUTE, signing.SF_JAVA_RULE, timestamp="1765072800")

    result = _adapter("sf").parse_push(form)

    assert result.signed_at.timestamp() == 1765072800
    assert any("timestamp in seconds" in note for note in _variants(caplog))


def test_sf_push_signed_by_neither_rule_is_refused():
    form = _sf_push(SF_ROUTE, signing.SF_JAVA_RULE)
    form["content"] = SF_ROUTE.replace("138****0000", "138~~~~0000")

    with pytest.raises(PushRejected, match="bad msgDigest"):
        _adapter("sf").parse_push(form)


def test_kuaidi100_callback_with_other_casings_is_read_and_noted(caplog):
    caplog.set_level(logging.WARNING, logger="couriers.variants")
    param = compact_json(
        {
            "taskid": "T0001",
            "kuaidiNum": "YT1234567890",
            "interceptType": "RETURN_SEND_ADDR",
            "status": "success",
            "time": "2026-12-07 10:00:00",
        }
    )
    salt = SANDBOX_ACCOUNTS["kuaidi100"]["salt"]
    form = {"param": param, "sign": signing.kuaidi100_push_sign(param, salt)}

    result = _adapter("kuaidi100").parse_push(form)

    [update] = result.intercept_updates
    assert (update["reference"], update["waybill_no"], update["status"]) == (
        "T0001",
        "YT1234567890",
        "SUCCEEDED",
    )
    notes = _variants(caplog)
    assert any("'taskid' instead of 'taskId'" in note for note in notes)
    assert any("status 'success'" in note for note in notes)
