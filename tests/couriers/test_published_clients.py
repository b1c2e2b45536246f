"""The sandbox courier driven the way each courier's published examples drive the real gateway:
Kdniao's single-quoted RequestData and its ``/api/dist`` subscription endpoint, Kuaidi100's
``resultv2`` levels, SF's two signing rules. Requests are built here from the documents (the
reference sheet §1–§3), never from courier code; answers and pushes are checked against the
documented shapes, and every time the sandbox writes against the scans it carries.
"""

import json
import time
from datetime import datetime
from urllib.parse import quote_plus

import httpx
import pytest

from couriers import signing
from couriers.adapters.base import Waybill
from couriers.adapters.common import InterceptAction, compact_json, parse_local_time
from couriers.sandbox import KDNIAO_SUBSCRIBE_PATH, SANDBOX_ACCOUNTS
from tests.couriers.conftest import new_waybill

KDNIAO = SANDBOX_ACCOUNTS["kdniao"]
K100 = SANDBOX_ACCOUNTS["kuaidi100"]
SF = SANDBOX_ACCOUNTS["sf"]
BASIC_STATES = {str(code) for code in (*range(0, 9), 10, 11, 12, 13, 14)}
BASIC_NAMES = {"在途", "揽收", "疑难", "签收", "退签", "派件", "退回", "转投", "清关", "拒签"}


def _java_form(fields: dict[str, str]) -> bytes:
    """A form body as Kdniao's Java example builds it: each value through URLEncoder."""
    return "&".join(f"{k}={signing.java_url_encode(v)}" for k, v in fields.items()).encode()


def _post(url: str, body: bytes) -> dict:
    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
    response = httpx.post(url, content=body, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _kdniao(sandbox, request_type: str, request_data: str, path: str = "") -> dict:
    fields = {
        "EBusinessID": KDNIAO["ebusiness_id"],
        "RequestType": request_type,
        "RequestData": request_data,
        "DataSign": signing.kdniao_data_sign(request_data, KDNIAO["app_key"]),
        "DataType": "2",
    }
    url = sandbox.url + path if path else sandbox.gateway_url("kdniao")
    return _post(url, _java_form(fields))


def _last_request(sandbox, protocol: str) -> dict:
    return [entry for entry in sandbox.requests if entry["protocol"] == protocol][-1]


# Kdniao


def test_kdniao_takes_the_single_quoted_request_data_of_its_own_examples(sandbox):
    number = new_waybill("2", prefix="SF")
    # The documentation's example, with only the number changed (§1.2).
    request_data = f"{{'OrderCode':'','ShipperCode':'SF','LogisticCode':'{number}'}}"

    answer = _kdniao(sandbox, "1002", request_data)

    assert answer["Success"] is True, answer
    assert _last_request(sandbox, "kdniao")["request_data"] == "json5"
    # 1002 answers the basic track (§1.4): State as a string, traces without Action.
    assert {"EBusinessID", "OrderCode", "ShipperCode", "LogisticCode", "State", "Traces"} <= set(
        answer
    )
    assert "StateEx" not in answer
    assert answer["LogisticCode"] == number and answer["ShipperCode"] == "SF"
    assert answer["State"] == "2"
    assert answer["Traces"]
    assert all(
        set(trace) == {"AcceptTime", "AcceptStation", "Remark"} for trace in answer["Traces"]
    )


def test_kdniao_value_added_query_answers_state_ex_and_actions(sandbox):
    number = new_waybill("4")
    request_data = compact_json(
        {"OrderCode": "订单 *~+😀", "ShipperCode": "YD", "LogisticCode": number}
    )

    answer = _kdniao(sandbox, "8001", request_data)

    assert _last_request(sandbox, "kdniao")["request_data"] == "json"
    assert answer["OrderCode"] == "订单 *~+😀"  # signed and parsed intact
    assert answer["StateEx"] == "205" and answer["State"] == "2"
    assert answer["Station"].endswith("中心营业部")
    assert [trace["Action"] for trace in answer["Traces"]] == ["10", "1", "2", "201", "205"]


def test_kdniao_refuses_request_data_that_is_not_even_json5(sandbox):
    answer = _kdniao(sandbox, "1002", "{'LogisticCode': ")

    assert answer["Success"] is False
    assert (answer["ResultCode"], answer["Reason"]) == ("401", "RequestData格式有误")


@pytest.mark.parametrize(
    ("request_type", "push_type", "value_added"),
    [("1008", "101", False), ("8008", "102", True)],
)
def test_kdniao_subscription_at_api_dist_pushes_the_documented_type(
    sandbox, make_adapter, receiver, request_type, push_type, value_added
):
    sandbox.set_push_url("kdniao", receiver.url + "/kdniao")
    receiver.adapters["/kdniao"] = make_adapter(sandbox, "kdniao")
    number = new_waybill("3")
    request_data = f"{{'OrderCode':'ORD-{number}','ShipperCode':'YTO','LogisticCode':'{number}'}}"

    answer = _kdniao(sandbox, request_type, request_data, path=KDNIAO_SUBSCRIBE_PATH)

    assert answer["Success"] is True, answer
    assert _last_request(sandbox, "kdniao")["path"] == KDNIAO_SUBSCRIBE_PATH
    # The first push carries the scans known when the subscription was taken.
    push = receiver.wait_for(lambda item: number in item.form.get("RequestData", ""))
    assert push.error == "" and push.result.tracking[0].waybill_no == number
    assert push.form["RequestType"] == push_type
    body = json.loads(push.form["RequestData"])
    assert body["Count"] == "1"  # a string, as Kdniao documents it
    [track] = body["Data"]
    assert track["OrderCode"] == f"ORD-{number}"
    assert ("StateEx" in track) is value_added
    assert all(("Action" in trace) is value_added for trace in track["Traces"])
    pushed_at = parse_local_time(body["PushTime"])
    assert all(pushed_at >= parse_local_time(t["AcceptTime"]) for t in track["Traces"])
    # One clock: the subscription's answer is not dated before the scans it knew of.
    answered_at = parse_local_time(answer["UpdateTime"])
    assert all(answered_at >= parse_local_time(t["AcceptTime"]) for t in track["Traces"])


def test_our_kdniao_adapter_subscribes_at_the_value_added_level_it_reads(
    sandbox, make_adapter, receiver
):
    sandbox.set_push_url("kdniao", receiver.url + "/kdniao")
    adapter = make_adapter(sandbox, "kdniao")
    receiver.adapters["/kdniao"] = adapter
    number = new_waybill("4")

    adapter.subscribe(Waybill(waybill_no=number, courier_code="YUNDA", protocol_code="YD"))

    push = receiver.wait_for(lambda item: number in item.form.get("RequestData", ""))
    assert _last_request(sandbox, "kdniao")["service"] == "8008"
    assert push.form["RequestType"] == "102"
    assert push.result.tracking[0].scans[-1].stage == "at_delivery_station"


# Kuaidi100


def _k100_query(sandbox, **param) -> dict:
    # Kuaidi100's Python demo serialises with json.dumps' default separators, spaces and all.
    text = json.dumps(param)
    sign = signing.kuaidi100_query_sign(text, K100["key"], K100["customer"])
    body = f"customer={K100['customer']}&param={quote_plus(text)}&sign={sign}".encode()
    return _post(sandbox.url + "/kuaidi100/poll/query.do", body)


def test_kuaidi100_resultv2_1_answers_basic_states_with_their_names(sandbox):
    number = new_waybill("3")

    answer = _k100_query(sandbox, com="yuantong", num=number, resultv2="1", show="0")

    # At the destination city: advanced 1001, whose basic parent is 0 在途 (§2.3).
    assert answer["state"] == "0"
    assert all(item["status"] in BASIC_NAMES for item in answer["data"])
    assert answer["data"][0]["status"] == "在途"
    assert not any("statusCode" in item for item in answer["data"])
    assert "routeInfo" not in answer


def test_kuaidi100_resultv2_4_answers_advanced_states_and_cities(sandbox):
    number = new_waybill("3")

    answer = _k100_query(sandbox, com="yuantong", num=number, resultv2="4", show="0")

    assert answer["state"] == "1001" == answer["data"][0]["statusCode"]
    assert answer["data"][0]["status"] == "到达派件城市"
    assert [item["statusCode"] for item in answer["data"]] == ["1001", "1002", "103", "101"]
    truth = sandbox.truth(number)
    assert answer["routeInfo"]["to"]["name"] == truth["events"][-1]["location"]


def test_kuaidi100_without_resultv2_answers_the_plain_track(sandbox):
    answer = _k100_query(sandbox, com="yuantong", num=new_waybill("2"))

    assert answer["state"] == "0"
    assert all(set(item) == {"time", "ftime", "context"} for item in answer["data"])


def test_kuaidi100_push_carries_the_level_its_subscription_asked_for(
    sandbox, make_adapter, receiver
):
    adapter = make_adapter(sandbox, "kuaidi100")
    receiver.adapters["/k100"] = adapter
    number = new_waybill("5")
    param = json.dumps(
        {
            "company": "zhongtong",
            "number": number,
            "key": K100["key"],
            "parameters": {
                "callbackurl": receiver.url + "/k100",
                "salt": K100["salt"],
                "resultv2": "1",
            },
        }
    )

    answer = _post(
        sandbox.url + "/kuaidi100/poll", f"schema=json&param={quote_plus(param)}".encode()
    )

    assert answer == {"result": True, "returnCode": "200", "message": "提交成功"}
    push = receiver.wait_for(lambda item: number in item.form.get("param", ""))
    last = json.loads(push.form["param"])["lastResult"]
    assert last["state"] == "5" and last["data"][0]["status"] == "派件"
    assert not any("statusCode" in item for item in last["data"])
    # Our adapter, which asks for level 4, still reads a basic push by its state names.
    assert push.error == ""
    assert push.result.tracking[0].scans[-1].stage == "out_for_delivery"


def test_kuaidi100_intercept_echoes_the_order_id_in_either_casing(sandbox):
    number = new_waybill("2")
    param = compact_json(
        {
            "kuaidicom": "yuantong",
            "kuaidinum": number,
            "interceptType": "RETURN_SEND_ADDR",
            "orderid": "SHOP-20261207-1",
            "callbackUrl": "http://127.0.0.1:9/unheard",
        }
    )
    t = str(int(time.time() * 1000))
    sign = signing.kuaidi100_label_sign(param, t, K100["key"], K100["secret"])
    form = {"method": "interceptOrder", "key": K100["key"], "t": t, "param": param, "sign": sign}
    body = "&".join(f"{k}={quote_plus(v)}" for k, v in form.items()).encode()

    answer = _post(sandbox.url + "/kuaidi100/label/order", body)

    assert answer["code"] == 200, answer
    assert answer["data"]["orderId"] == "SHOP-20261207-1"
    assert sandbox.truth(number)["intercept"]["order_id"] == "SHOP-20261207-1"
    # One clock: the answer is dated on the sandbox's clock, not before the request it answers.
    answered_at = datetime.fromtimestamp(answer["time"] / 1000).astimezone()
    requested_at = datetime.fromisoformat(sandbox.truth(number)["intercept"]["requested_at"])
    assert answered_at >= requested_at


# SF


def _sf(sandbox, service_code: str, msg_data: str, *, rule: str, timestamp: str) -> dict:
    digest = signing.sf_msg_digest(msg_data, timestamp, SF["check_word"], rule=rule)
    form = {
        "partnerID": SF["partner_id"],
        "requestID": "req-" + timestamp,
        "serviceCode": service_code,
        "timestamp": timestamp,
        "msgDigest": digest,
        "msgData": msg_data,
    }
    body = "&".join(f"{k}={quote_plus(v)}" for k, v in form.items()).encode()
    return _post(sandbox.url + "/sf/std/service", body)


def test_sf_takes_a_masked_phone_signed_the_documented_way_from_our_adapter(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "sf")
    number = new_waybill("2", prefix="SF")
    new_address = {
        "name": "张*",
        "phone": "138****0000",
        "province": "上海市",
        "city": "上海",
        "district": "徐汇区",
        "address": "漕溪北路~88号 A+B座 📦",
    }

    answer = adapter.request_intercept(
        Waybill(waybill_no=number, courier_code="SF", protocol_code="SF"),
        action=InterceptAction.REDIRECT_NEW_ADDRESS,
        new_address=new_address,
    )

    assert answer.accepted
    entry = _last_request(sandbox, "sf")
    assert entry["waybills"] == [number] and entry["sign_rule"] == "java"


@pytest.mark.parametrize(
    ("rule", "seconds"),
    [("java", False), ("python-demo", True)],
    ids=["documented-java-rule", "python-demo-in-seconds"],
)
def test_sf_accepts_both_published_rules_and_notes_which(sandbox, rule, seconds):
    number = new_waybill("2", prefix="SF")
    msg_data = compact_json(
        {"trackingType": "1", "trackingNumber": [number], "methodType": "1", "checkPhoneNo": "*~0"}
    )
    stamp = str(int(time.time())) if seconds else str(int(time.time() * 1000))

    answer = _sf(sandbox, "EXP_RECE_SEARCH_ROUTES", msg_data, rule=rule, timestamp=stamp)

    assert answer["apiResultCode"] == "A1000", answer
    assert _last_request(sandbox, "sf")["sign_rule"] == rule
    routes = json.loads(answer["apiResultData"])["msgData"]["routeResps"][0]["routes"]
    assert routes


def test_sf_request_log_says_either_where_the_two_rules_agree(sandbox):
    number = new_waybill("2", prefix="SF")
    msg_data = compact_json({"trackingType": "1", "trackingNumber": [number], "methodType": "1"})
    stamp = str(int(time.time()))

    answer = _sf(sandbox, "EXP_RECE_SEARCH_ROUTES", msg_data, rule="python-demo", timestamp=stamp)

    assert answer["apiResultCode"] == "A1000"
    assert _last_request(sandbox, "sf")["sign_rule"] == "either"


def test_sf_refuses_a_digest_made_by_neither_rule(sandbox):
    msg_data = compact_json({"trackingType": "1", "trackingNumber": ["SF1"], "methodType": "1"})
    stamp = str(int(time.time() * 1000))
    digest = signing.sf_msg_digest(msg_data, stamp, "another-check-word")
    form = {
        "partnerID": SF["partner_id"],
        "requestID": "r",
        "serviceCode": "EXP_RECE_SEARCH_ROUTES",
        "timestamp": stamp,
        "msgDigest": digest,
        "msgData": msg_data,
    }
    body = "&".join(f"{k}={quote_plus(v)}" for k, v in form.items()).encode()

    answer = _post(sandbox.url + "/sf/std/service", body)

    assert (answer["apiResultCode"], answer["apiErrorMsg"]) == ("A1006", "数字签名无效")
    assert _last_request(sandbox, "sf")["sign_rule"] == ""


def test_sf_route_push_is_signed_no_earlier_than_its_scans(sandbox, make_adapter, receiver):
    sandbox.set_push_url("sf", receiver.url + "/sf")
    adapter = make_adapter(sandbox, "sf")
    receiver.adapters["/sf"] = adapter
    number = new_waybill("3", prefix="SF")

    adapter.subscribe(Waybill(waybill_no=number, courier_code="SF", protocol_code="SF"))

    push = receiver.wait_for(lambda item: number in item.form.get("content", ""))
    assert push.error == ""
    signed_at = datetime.fromtimestamp(int(push.form["timestamp"]) / 1000).astimezone()
    routes = json.loads(push.form["content"])["Body"]["WaybillRoute"]
    assert all(signed_at >= parse_local_time(route["acceptTime"]) for route in routes)
