"""The courier adapters against the sandbox courier over real HTTP: tracking, signatures, faults,
intercepts and their pushed results, subscriptions, and push verification.

Waybill numbers pick the sandbox stage by their last digit (``couriers.sandbox.start_stage``):
0 label created, 1 picked up, 2 in transit, 3 at destination city, 4 at delivery station,
5 out for delivery, 6 in a locker, 7 delivered, 8 delivery failed, 9 returning; "00" never has
tracking.
"""

import json
import time
from dataclasses import replace
from zoneinfo import ZoneInfo

import httpx
import pytest

from couriers.adapters import get_adapter
from couriers.adapters.base import (
    AccountConfig,
    AuthenticationError,
    PushRejected,
    RateLimitedError,
    RefusedError,
    TransientError,
    Waybill,
)
from couriers.adapters.common import InterceptAction
from couriers.adapters.kdniao import KdniaoAdapter
from couriers.adapters.kuaidi100 import Kuaidi100Adapter
from couriers.adapters.sf import SfAdapter
from couriers.sandbox import FaultOptions, SandboxServer
from couriers.stages import ParcelStage as S
from tests.couriers.conftest import SEED, new_waybill, waybill_with_outcome

RETURN = InterceptAction.RETURN_TO_SENDER_ADDRESS
REDIRECT = InterceptAction.REDIRECT_NEW_ADDRESS
# The courier each protocol is asked about: kuaidi100 and Kdniao name it in their own codes.
COURIER = {"kuaidi100": ("YUNDA", "yunda"), "sf": ("SF", ""), "kdniao": ("YUNDA", "YD")}
PROTOCOLS = ("kuaidi100", "sf", "kdniao")
NEW_ADDRESS = {
    "name": "张三",
    "phone": "13800138000",
    "province": "广东省",
    "city": "深圳",
    "district": "南山区",
    "address": "科技园一路1号",
}


def waybill(protocol: str, number: str) -> Waybill:
    courier_code, protocol_code = COURIER[protocol]
    return Waybill(waybill_no=number, courier_code=courier_code, protocol_code=protocol_code)


def truth_stage_events(sandbox, number: str) -> list[tuple[str, str]]:
    truth = sandbox.truth(number)
    return [(event["stage"], event["time"]) for event in truth["events"]]


def tracking_for(number: str, stage: str | None = None):
    """A push predicate: a verified push with tracking of ``number`` (at ``stage``, if given).

    The session's sandbox pushes every moving parcel of earlier tests too, so each test waits
    for its own waybill.
    """

    def matches(item) -> bool:
        if item.result is None:
            return False
        for tracking in item.result.tracking:
            if tracking.waybill_no == number and tracking.scans:
                return stage is None or tracking.scans[-1].stage == stage
        return False

    return matches


def intercept_update_for(number: str):
    """A push predicate: a verified push with an intercept update of ``number``."""

    def matches(item) -> bool:
        return item.result is not None and any(
            update["waybill_no"] == number for update in item.result.intercept_updates
        )

    return matches


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# The registry.


def test_get_adapter_picks_the_adapter_of_the_protocol():
    classes = {"kuaidi100": Kuaidi100Adapter, "sf": SfAdapter, "kdniao": KdniaoAdapter}
    for protocol, adapter_class in classes.items():
        adapter = get_adapter(AccountConfig(protocol=protocol, base_url="http://127.0.0.1:9"))
        assert type(adapter) is adapter_class
        adapter.close()


def test_get_adapter_refuses_an_unknown_protocol():
    with pytest.raises(ValueError, match="zto"):
        get_adapter(AccountConfig(protocol="zto", base_url="http://127.0.0.1:9"))


# Tracking.


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("digit", "stage"),
    [
        ("1", S.PICKED_UP),
        ("2", S.IN_TRANSIT),
        ("5", S.OUT_FOR_DELIVERY),
        ("7", S.DELIVERED),
        ("9", S.RETURNING),
    ],
)
def test_query_reports_the_stage_the_waybill_number_picks(
    sandbox, make_adapter, protocol, digit, stage
):
    number = new_waybill(digit)
    [result] = make_adapter(sandbox, protocol).query([waybill(protocol, number)])
    assert result.found
    assert result.waybill_no == number
    assert result.scans[-1].stage == stage
    assert sandbox.truth(number)["start_stage"] == stage


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_scans_come_oldest_first_in_shanghai_time_with_chinese_descriptions(
    sandbox, make_adapter, protocol
):
    number = new_waybill("4")
    [result] = make_adapter(sandbox, protocol).query([waybill(protocol, number)])
    times = [scan.occurred_at for scan in result.scans]
    assert times == sorted(times)
    assert all(moment.tzinfo == ZoneInfo("Asia/Shanghai") for moment in times)
    truth = {event["time"]: event for event in sandbox.truth(number)["events"]}
    for scan in result.scans:
        event = truth[scan.occurred_at.strftime("%Y-%m-%d %H:%M:%S")]
        assert scan.description == event["description"]
        assert scan.waybill_no == number
        assert scan.raw_code


def test_kdniao_and_sf_report_the_delivery_station(sandbox, make_adapter):
    for protocol in ("sf", "kdniao"):
        number = new_waybill("4")
        [result] = make_adapter(sandbox, protocol).query([waybill(protocol, number)])
        assert result.scans[-1].stage == S.AT_DELIVERY_STATION


def test_sf_unknown_op_code_keeps_the_stage_of_the_scan_before(sandbox, make_adapter):
    # A parcel in a locker: SF reports it with opCode 607, which couriers.codes does not map.
    number = new_waybill("6")
    [result] = make_adapter(sandbox, "sf").query([waybill("sf", number)])
    assert [scan.raw_code for scan in result.scans[-2:]] == ["130", "607"]
    assert result.scans[-1].stage == S.AT_DELIVERY_STATION


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_number_without_tracking_is_not_found(sandbox, make_adapter, protocol):
    number = new_waybill("00")
    [result] = make_adapter(sandbox, protocol).query([waybill(protocol, number)])
    assert not result.found
    assert result.scans == []


def test_sf_queries_several_waybills_in_one_request(sandbox, make_adapter):
    numbers = [new_waybill(digit) for digit in "1257"]
    results = make_adapter(sandbox, "sf").query([waybill("sf", n) for n in numbers])
    assert [result.waybill_no for result in results] == numbers
    assert [result.scans[-1].stage for result in results] == [
        S.PICKED_UP,
        S.IN_TRANSIT,
        S.OUT_FOR_DELIVERY,
        S.DELIVERED,
    ]
    requests = [r for r in sandbox.requests if set(r["waybills"]) & set(numbers)]
    assert len(requests) == 1
    assert requests[0]["service"] == "EXP_RECE_SEARCH_ROUTES"
    assert requests[0]["waybills"] == numbers


def test_sf_splits_more_than_ten_waybills_into_batches_of_ten(sandbox, make_adapter):
    numbers = [new_waybill("2") for _ in range(12)]
    results = make_adapter(sandbox, "sf").query([waybill("sf", n) for n in numbers])
    assert all(result.found for result in results)
    requests = [r for r in sandbox.requests if set(r["waybills"]) & set(numbers)]
    assert [len(r["waybills"]) for r in requests] == [10, 2]


# Credentials and faults.


@pytest.mark.parametrize(
    ("protocol", "wrong"),
    [
        ("kuaidi100", {"key": "not-the-key"}),
        ("kuaidi100", {"customer": "SOMEONEELSE"}),
        ("sf", {"check_word": "not-the-check-word"}),
        ("sf", {"partner_id": "SOMEONEELSE"}),
        ("kdniao", {"app_key": "not-the-app-key"}),
        ("kdniao", {"ebusiness_id": "999"}),
    ],
)
def test_wrong_credentials_raise_authentication_error(sandbox, make_adapter, protocol, wrong):
    adapter = make_adapter(sandbox, protocol, **wrong)
    with pytest.raises(AuthenticationError):
        adapter.query([waybill(protocol, new_waybill("2"))])


def test_kuaidi100_intercept_with_a_wrong_secret_raises_authentication_error(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "kuaidi100", secret="not-the-secret")
    with pytest.raises(AuthenticationError):
        adapter.request_intercept(waybill("kuaidi100", new_waybill("2")), action=RETURN)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fault", ["error", "malformed", "reset", "timeout=3"])
def test_faults_raise_transient_error(sandbox, make_adapter, protocol, fault):
    adapter = make_adapter(sandbox, protocol, timeout_s=0.3)
    adapter.client.headers["X-Sandbox-Fault"] = fault
    with pytest.raises(TransientError) as caught:
        adapter.query([waybill(protocol, new_waybill("2"))])
    assert not isinstance(caught.value, RateLimitedError)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rate_limit_answers_raise_rate_limited_error(sandbox, make_adapter, protocol):
    adapter = make_adapter(sandbox, protocol)
    adapter.client.headers["X-Sandbox-Fault"] = "ratelimit"
    with pytest.raises(RateLimitedError):
        adapter.query([waybill(protocol, new_waybill("2"))])


def test_kuaidi100_intercept_rate_limit_raises_rate_limited_error(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "kuaidi100")
    adapter.client.headers["X-Sandbox-Fault"] = "ratelimit"
    with pytest.raises(RateLimitedError):
        adapter.request_intercept(waybill("kuaidi100", new_waybill("2")), action=RETURN)


def test_latency_fault_delays_the_answer(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "kdniao")
    adapter.client.headers["X-Sandbox-Fault"] = "latency=300"
    started = time.monotonic()
    [result] = adapter.query([waybill("kdniao", new_waybill("2"))])
    assert result.found
    assert time.monotonic() - started >= 0.3


def test_run_wide_error_rate_fails_every_request(make_adapter):
    with SandboxServer(speed=3600, seed=SEED, faults=FaultOptions(error_rate=1.0)) as server:
        adapter = make_adapter(server, "sf")
        with pytest.raises(TransientError):
            adapter.query([waybill("sf", new_waybill("2"))])


def test_an_unknown_fault_token_is_refused_loudly(sandbox):
    response = httpx.post(
        sandbox.gateway_url("sf") + "/std/service",
        data={},
        headers={"X-Sandbox-Fault": "explode"},
    )
    assert response.status_code == 400
    assert "explode" in response.text


def test_a_stopped_sandbox_refuses_connections_as_a_transient_error(make_adapter):
    server = SandboxServer(speed=3600, seed=SEED)
    server.start()
    adapter = make_adapter(server, "kdniao")
    server.stop()
    with pytest.raises(TransientError):
        adapter.query([waybill("kdniao", new_waybill("2"))])


# Intercepts.


def test_kuaidi100_intercept_is_accepted_and_its_success_is_pushed(sandbox, make_adapter, receiver):
    callback = receiver.url + "/kuaidi100"
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=callback)
    receiver.adapters["/kuaidi100"] = make_adapter(sandbox, "kuaidi100")
    number = waybill_with_outcome("2", protocol="kuaidi100", action=RETURN, succeed=True)

    answer = adapter.request_intercept(waybill("kuaidi100", number), action=RETURN, reason="退款")

    assert answer.accepted
    assert answer.reference
    push = receiver.wait_for(intercept_update_for(number))
    [update] = push.result.intercept_updates
    assert update["waybill_no"] == number
    assert update["reference"] == answer.reference
    assert update["status"] == "SUCCEEDED"
    assert update["action"] == RETURN
    assert update["occurred_at"].tzinfo is not None
    assert json.loads(push.result.ack_body) == {
        "result": True,
        "returnCode": "200",
        "message": "成功",
    }
    # The parcel then turns back to the sender.
    wait_until(lambda: sandbox.truth(number)["stage"] == S.RETURNING)
    [result] = adapter.query([waybill("kuaidi100", number)])
    assert result.scans[-1].stage == S.RETURNING


def test_kuaidi100_intercept_failure_is_pushed_with_a_reason(sandbox, make_adapter, receiver):
    callback = receiver.url + "/kuaidi100"
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=callback)
    receiver.adapters["/kuaidi100"] = make_adapter(sandbox, "kuaidi100")
    number = waybill_with_outcome("4", protocol="kuaidi100", action=RETURN, succeed=False)

    answer = adapter.request_intercept(waybill("kuaidi100", number), action=RETURN)

    assert answer.accepted
    push = receiver.wait_for(intercept_update_for(number))
    [update] = push.result.intercept_updates
    assert update["status"] == "FAILED"
    assert update["reason_code"] in ("MISSED_AT_NODE", "OUT_FOR_DELIVERY")
    assert update["reason"]
    assert sandbox.truth(number)["intercept"]["status"] == "failed"


def test_kuaidi100_redirect_sends_the_new_address(sandbox, make_adapter, receiver):
    callback = receiver.url + "/kuaidi100"
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=callback)
    receiver.adapters["/kuaidi100"] = make_adapter(sandbox, "kuaidi100")
    number = waybill_with_outcome("1", protocol="kuaidi100", action=REDIRECT, succeed=True)

    answer = adapter.request_intercept(
        waybill("kuaidi100", number), action=REDIRECT, new_address=NEW_ADDRESS
    )

    assert answer.accepted
    push = receiver.wait_for(intercept_update_for(number))
    assert push.result.intercept_updates[0]["action"] == REDIRECT
    wait_until(lambda: sandbox.truth(number)["stage"] == S.REDIRECTING)
    assert "深圳" in sandbox.truth(number)["events"][-1]["description"]


def test_kuaidi100_redirect_without_an_address_is_an_invalid_request(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "kuaidi100", callback_url="http://127.0.0.1:9/cb")
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(waybill("kuaidi100", new_waybill("2")), action=REDIRECT)
    assert caught.value.reason_code == "INVALID_REQUEST"


def test_sf_intercept_success_arrives_as_a_returning_route(sandbox, make_adapter, receiver):
    sandbox.set_push_url("sf", receiver.url + "/sf")
    receiver.adapters["/sf"] = make_adapter(sandbox, "sf")
    adapter = make_adapter(sandbox, "sf")
    number = waybill_with_outcome("3", protocol="sf", action=RETURN, succeed=True)

    answer = adapter.request_intercept(waybill("sf", number), action=RETURN)

    assert answer.accepted
    assert answer.reference == "2"
    push = receiver.wait_for(intercept_update_for(number))
    [update] = push.result.intercept_updates
    assert update["status"] == "SUCCEEDED"
    assert update["reference"] == "2"
    [tracking] = push.result.tracking
    assert tracking.scans[-1].raw_code == "631"
    assert tracking.scans[-1].stage == S.RETURNING
    assert json.loads(push.result.ack_body) == {"return_code": "0000", "return_msg": "成功"}


def test_sf_redirect_success_arrives_as_a_redirecting_route(sandbox, make_adapter, receiver):
    sandbox.set_push_url("sf", receiver.url + "/sf")
    receiver.adapters["/sf"] = make_adapter(sandbox, "sf")
    adapter = make_adapter(sandbox, "sf")
    number = waybill_with_outcome("2", protocol="sf", action=REDIRECT, succeed=True)

    answer = adapter.request_intercept(
        waybill("sf", number), action=REDIRECT, new_address=NEW_ADDRESS
    )

    assert answer.reference == "1"
    push = receiver.wait_for(intercept_update_for(number))
    assert push.result.intercept_updates[0]["action"] == REDIRECT
    assert push.result.tracking[0].scans[-1].stage == S.REDIRECTING


def test_sf_intercept_failure_arrives_as_a_notice(sandbox, make_adapter, receiver):
    sandbox.set_push_url("sf", receiver.url + "/sf")
    receiver.adapters["/sf"] = make_adapter(sandbox, "sf")
    adapter = make_adapter(sandbox, "sf")
    number = waybill_with_outcome("4", protocol="sf", action=RETURN, succeed=False)

    assert adapter.request_intercept(waybill("sf", number), action=RETURN).accepted

    push = receiver.wait_for(intercept_update_for(number))
    [update] = push.result.intercept_updates
    assert update["status"] == "FAILED"
    assert update["reason_code"]


@pytest.mark.parametrize("protocol", ["kuaidi100", "sf"])
@pytest.mark.parametrize(
    ("digit", "reason_code"),
    [
        ("0", "NOT_PICKED_UP"),
        ("5", "OUT_FOR_DELIVERY"),
        ("7", "ALREADY_DELIVERED"),
        ("9", "ALREADY_RETURNING"),
    ],
)
def test_intercept_is_refused_by_stage_with_a_reason(
    sandbox, make_adapter, protocol, digit, reason_code
):
    adapter = make_adapter(sandbox, protocol, callback_url="http://127.0.0.1:9/cb")
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(waybill(protocol, new_waybill(digit)), action=RETURN)
    assert caught.value.reason_code == reason_code
    assert caught.value.reason  # the gateway's own words, for the agent to read


@pytest.mark.parametrize("protocol", ["kuaidi100", "sf"])
def test_a_second_intercept_is_refused_as_already_intercepted(sandbox, make_adapter, protocol):
    adapter = make_adapter(sandbox, protocol, callback_url="http://127.0.0.1:9/cb")
    parcel = waybill(protocol, new_waybill("2"))
    assert adapter.request_intercept(parcel, action=RETURN).accepted
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(parcel, action=RETURN)
    assert caught.value.reason_code == "ALREADY_INTERCEPTED"


def _issue(sandbox, account: str, number: str) -> None:
    """The courier issued ``number`` under a shipper's e-waybill account (over HTTP)."""
    answer = httpx.post(
        f"{sandbox.url}/sandbox/waybills", json={"account": account, "waybills": [number]}
    )
    assert answer.status_code == 200


@pytest.mark.parametrize("protocol", ["kuaidi100", "sf"])
def test_intercept_under_an_account_that_did_not_issue_the_waybill_is_refused(
    sandbox, make_adapter, protocol
):
    adapter = make_adapter(sandbox, protocol, callback_url="http://127.0.0.1:9/cb")
    number = new_waybill("2")
    _issue(sandbox, "SHOP-B-0001", number)
    theirs = replace(waybill(protocol, number), ewaybill_account="SHOP-A-0001")
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(theirs, action=RETURN)
    assert caught.value.reason_code == "NOT_ORDER_OWNER"
    assert "无权" in caught.value.reason
    assert sandbox.truth(number)["intercept"] is None
    # Asked without any account, it is refused too; the issuing account is served.
    with pytest.raises(RefusedError):
        adapter.request_intercept(waybill(protocol, number), action=RETURN)
    own = replace(theirs, ewaybill_account="SHOP-B-0001")
    assert adapter.request_intercept(own, action=RETURN).accepted


@pytest.mark.parametrize("protocol", ["kuaidi100", "sf"])
def test_a_waybill_never_issued_belongs_to_the_first_account_that_intercepts_it(
    sandbox, make_adapter, protocol
):
    adapter = make_adapter(sandbox, protocol, callback_url="http://127.0.0.1:9/cb")
    number = new_waybill("2")
    first = replace(waybill(protocol, number), ewaybill_account="SHOP-A-0002")
    assert adapter.request_intercept(first, action=RETURN).accepted
    assert sandbox.truth(number)["issued_to"] == "SHOP-A-0002"
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(replace(first, ewaybill_account="SHOP-B-0002"), action=RETURN)
    assert caught.value.reason_code == "NOT_ORDER_OWNER"


def test_kdniao_cannot_intercept(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "kdniao")
    assert not adapter.capabilities.can_intercept
    before = len(sandbox.requests)
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(waybill("kdniao", new_waybill("2")), action=RETURN)
    assert caught.value.reason_code == "CARRIER_NOT_SUPPORTED"
    assert len(sandbox.requests) == before  # refused without asking the gateway


def test_sf_cannot_return_to_the_origin_station(sandbox, make_adapter):
    adapter = make_adapter(sandbox, "sf")
    with pytest.raises(RefusedError) as caught:
        adapter.request_intercept(
            waybill("sf", new_waybill("2")), action=InterceptAction.RETURN_TO_ORIGIN_STATION
        )
    assert caught.value.reason_code == "SERVICE_NOT_ELIGIBLE"


@pytest.mark.parametrize("protocol", ["kuaidi100", "sf"])
def test_a_pending_intercept_can_be_withdrawn_once(make_adapter, protocol):
    # A slow clock (one simulated hour per second) so the outcome is seconds away.
    with SandboxServer(speed=3600, seed=SEED) as server:
        adapter = make_adapter(server, protocol, callback_url="http://127.0.0.1:9/cb")
        number = waybill_with_outcome("2", protocol=protocol, action=RETURN, succeed=True)
        parcel = waybill(protocol, number)
        answer = adapter.request_intercept(parcel, action=RETURN)

        withdrawn = adapter.cancel_intercept(parcel, reference=answer.reference)

        assert withdrawn.accepted
        assert server.truth(number)["intercept"]["status"] == "cancelled"
        with pytest.raises(RefusedError) as caught:
            adapter.cancel_intercept(parcel, reference=answer.reference)
        assert caught.value.reason_code == "CANNOT_CANCEL"


# Subscriptions and pushes.


def test_kuaidi100_subscription_pushes_signed_tracking(sandbox, make_adapter, receiver):
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=receiver.url + "/kuaidi100")
    receiver.adapters["/kuaidi100"] = adapter
    number = new_waybill("3")

    adapter.subscribe(waybill("kuaidi100", number))
    adapter.subscribe(waybill("kuaidi100", number))  # 重复订阅 is fine

    push = receiver.wait_for(tracking_for(number))
    [tracking] = push.result.tracking
    assert tracking.waybill_no == number
    assert tracking.scans[-1].stage == S.AT_DESTINATION_CITY
    # The parcel moves on and its next scans are pushed too, up to the signature.
    final = receiver.wait_for(tracking_for(number, stage=S.DELIVERED))
    assert json.loads(final.form["param"])["status"] == "shutdown"


def test_kuaidi100_push_round_trips_the_sandbox_truth(sandbox, make_adapter, receiver):
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=receiver.url + "/kuaidi100")
    receiver.adapters["/kuaidi100"] = adapter
    number = new_waybill("5")
    adapter.subscribe(waybill("kuaidi100", number))
    push = receiver.wait_for(tracking_for(number))
    scans = push.result.tracking[0].scans
    expected = truth_stage_events(sandbox, number)[: len(scans)]
    # kuaidi100 has no at-station state: that scan reads as in transit.
    reported = [(scan.stage, scan.occurred_at.strftime("%Y-%m-%d %H:%M:%S")) for scan in scans]
    assert reported == [
        (S.IN_TRANSIT if stage == S.AT_DELIVERY_STATION else stage, at) for stage, at in expected
    ]


def test_kdniao_subscription_pushes_to_the_registered_url(sandbox, make_adapter, receiver):
    sandbox.set_push_url("kdniao", receiver.url + "/kdniao")
    adapter = make_adapter(sandbox, "kdniao")
    receiver.adapters["/kdniao"] = adapter
    number = new_waybill("8")

    adapter.subscribe(waybill("kdniao", number))

    push = receiver.wait_for(tracking_for(number))
    [tracking] = push.result.tracking
    assert tracking.waybill_no == number
    assert [(s.stage, s.occurred_at.strftime("%Y-%m-%d %H:%M:%S")) for s in tracking.scans] == (
        truth_stage_events(sandbox, number)[: len(tracking.scans)]
    )
    assert tracking.scans[-1].stage == S.DELIVERY_FAILED
    ack = json.loads(push.result.ack_body)
    assert ack["Success"] is True
    assert ack["EBusinessID"] == adapter.account.ebusiness_id
    assert ack["Reason"] == ""
    assert ack["UpdateTime"]


def test_sf_registered_route_pushes_each_new_scan(sandbox, make_adapter, receiver):
    sandbox.set_push_url("sf", receiver.url + "/sf")
    adapter = make_adapter(sandbox, "sf")
    receiver.adapters["/sf"] = adapter
    number = new_waybill("4")

    adapter.subscribe(waybill("sf", number))

    push = receiver.wait_for(tracking_for(number))
    [scan] = push.result.tracking[0].scans
    assert scan.raw_code == "130"
    assert scan.stage == S.AT_DELIVERY_STATION
    assert not push.result.intercept_updates


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_push_with_a_bad_signature_is_rejected(sandbox, make_adapter, receiver, protocol):
    """Capture a real push from the sandbox, then tamper with it."""
    adapter = make_adapter(sandbox, protocol, callback_url=f"{receiver.url}/{protocol}")
    receiver.adapters[f"/{protocol}"] = adapter
    if protocol != "kuaidi100":
        sandbox.set_push_url(protocol, f"{receiver.url}/{protocol}")
    number = new_waybill("2")
    adapter.subscribe(waybill(protocol, number))
    push = receiver.wait_for(tracking_for(number))
    form = dict(push.form)
    assert adapter.parse_push(form).tracking  # the genuine push verifies

    sign_field = {"kuaidi100": "sign", "sf": "msgDigest", "kdniao": "DataSign"}[protocol]
    body_field = {"kuaidi100": "param", "sf": "content", "kdniao": "RequestData"}[protocol]
    with pytest.raises(PushRejected):
        adapter.parse_push({**form, sign_field: "AAAA" + form[sign_field][4:]})
    with pytest.raises(PushRejected):
        adapter.parse_push({**form, body_field: form[body_field].replace(number, number + "1")})
    with pytest.raises(PushRejected):
        adapter.parse_push({key: value for key, value in form.items() if key != sign_field})

    wrong = {"kuaidi100": "salt", "sf": "check_word", "kdniao": "app_key"}[protocol]
    with pytest.raises(PushRejected):
        make_adapter(sandbox, protocol, **{wrong: "someone-else"}).parse_push(form)


def test_the_kuaidi100_receiver_answers_a_forged_push_with_an_error(
    sandbox, make_adapter, receiver
):
    receiver.adapters["/kuaidi100"] = make_adapter(sandbox, "kuaidi100")
    response = httpx.post(
        receiver.url + "/kuaidi100", data={"param": '{"lastResult":{}}', "sign": "00"}
    )
    assert response.status_code == 400


def test_sandbox_truth_is_served_over_http(sandbox, make_adapter):
    number = new_waybill("2")
    make_adapter(sandbox, "kdniao").query([waybill("kdniao", number)])
    truth = httpx.get(f"{sandbox.url}/sandbox/parcels/{number}").json()
    assert truth["start_stage"] == S.IN_TRANSIT
    assert truth["events"][-1]["stage"] in (S.IN_TRANSIT, S.AT_DESTINATION_CITY)
    assert httpx.get(f"{sandbox.url}/sandbox/parcels/never-seen").status_code == 404
