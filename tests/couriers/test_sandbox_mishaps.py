"""Mishaps in the sandbox courier over real HTTP: a damaged parcel is reported in each protocol's
published damage code and goes on; a lost one goes quiet for good.

Waybill numbers pick the sandbox stage by their last digit (``couriers.sandbox.start_stage``).
"""

from datetime import datetime, timedelta

import httpx
import pytest

from couriers.codes import DAMAGE_CODES, DAMAGE_RAW_CODES, kdniao_stage, kuaidi100_stage
from couriers.sandbox import (
    DAMAGE_SCAN_CODES,
    SandboxServer,
    event_code,
    render_kdniao,
    render_kuaidi100,
)
from couriers.stages import ParcelStage as S
from tests.couriers.conftest import SEED, new_waybill, waybill_with_outcome
from tests.couriers.test_adapters_sandbox import RETURN, tracking_for, wait_until, waybill


def mishap(sandbox, number: str, body) -> httpx.Response:
    return httpx.post(f"{sandbox.url}/sandbox/parcels/{number}/mishap", json=body)


def returning_parcel(sandbox, make_adapter) -> str:
    """A parcel intercepted through kuaidi100 and now on its way back to the sender."""
    adapter = make_adapter(sandbox, "kuaidi100", callback_url="http://127.0.0.1:9/cb")
    number = waybill_with_outcome("2", protocol="kuaidi100", action=RETURN, succeed=True)
    assert adapter.request_intercept(waybill("kuaidi100", number), action=RETURN).accepted
    wait_until(lambda: sandbox.truth(number)["stage"] == S.RETURNING)
    return number


# The codes.


def test_the_codes_published_for_damage():
    # §1.5 Kdniao StateEx 414 破损, §2.3 kuaidi100 209 破损; SF's §3.1 list has none.
    assert {
        "kdniao": frozenset({"414"}),
        "kuaidi100": frozenset({"209"}),
        "sf": frozenset(),
    } == DAMAGE_CODES
    assert {"414", "209"} == DAMAGE_RAW_CODES
    assert kdniao_stage("4", "414") == kuaidi100_stage("209") == S.EXCEPTION


def test_the_sandbox_reports_damage_in_the_codes_the_product_recognises():
    assert {protocol: {code} for protocol, code in DAMAGE_SCAN_CODES.items()} == {
        protocol: set(codes) for protocol, codes in DAMAGE_CODES.items() if codes
    }


# Damaged.


def test_a_damaged_returning_parcel_is_reported_as_damaged_by_kuaidi100_and_kdniao(
    sandbox, make_adapter
):
    number = returning_parcel(sandbox, make_adapter)

    answer = mishap(sandbox, number, {"kind": "damaged"})

    assert answer.status_code == 200
    [event] = [e for e in answer.json()["events"] if e["stage"] == S.EXCEPTION]
    assert event["codes"] == {"kuaidi100": "209", "kdniao": "414"}
    for protocol, code in (("kuaidi100", "209"), ("kdniao", "414")):
        [result] = make_adapter(sandbox, protocol).query([waybill(protocol, number)])
        [scan] = [scan for scan in result.scans if scan.raw_code == code]
        assert scan.stage == S.EXCEPTION, protocol
        assert scan.description == "快件破损，已登记"
        assert scan.occurred_at.strftime("%Y-%m-%d %H:%M:%S") == event["time"]


def test_sf_does_not_report_the_damage(sandbox, make_adapter):
    number = returning_parcel(sandbox, make_adapter)
    assert mishap(sandbox, number, {"kind": "damaged"}).status_code == 200

    [result] = make_adapter(sandbox, "sf").query([waybill("sf", number)])

    assert result.scans[-1].raw_code == "631"  # still the return scan, nothing after it
    assert all(scan.stage != S.EXCEPTION for scan in result.scans)


def test_a_damaged_parcel_still_comes_back(sandbox, make_adapter):
    number = returning_parcel(sandbox, make_adapter)
    assert mishap(sandbox, number, {"kind": "damaged"}).status_code == 200

    wait_until(lambda: sandbox.truth(number)["stage"] == S.RETURNED)

    truth = httpx.get(f"{sandbox.url}/sandbox/parcels/{number}").json()
    assert [event["stage"] for event in truth["events"][-3:]] == [
        S.RETURNING,
        S.EXCEPTION,
        S.RETURNED,
    ]
    assert [item["kind"] for item in truth["mishaps"]] == ["damaged"]


def test_the_damage_scan_in_each_protocols_words(sandbox):
    number = new_waybill("2")
    parcel = sandbox.world.parcel(number)
    sandbox.world.mishap(number, "damaged")

    with sandbox.world.lock:
        kdniao = render_kdniao(parcel, "YD")
        advanced = render_kuaidi100(parcel, "yunda", level=4)
        basic = render_kuaidi100(parcel, "yunda", level=1)
        sf_code = event_code(parcel.events[-1], "sf")

    assert (kdniao["StateEx"], kdniao["State"], kdniao["Traces"][-1]["Action"]) == (
        "414",
        "4",
        "414",
    )
    assert (advanced["state"], advanced["data"][0]["statusCode"]) == ("209", "209")
    assert advanced["data"][0]["status"] == "破损"
    assert (basic["state"], basic["data"][0]["status"]) == ("2", "疑难")
    assert sf_code is None  # SF has no code for it: its routes leave the scan out


@pytest.mark.parametrize(("protocol", "code"), [("kuaidi100", "209"), ("kdniao", "414")])
def test_the_damage_scan_is_pushed(sandbox, make_adapter, receiver, protocol, code):
    adapter = make_adapter(sandbox, protocol, callback_url=f"{receiver.url}/{protocol}")
    receiver.adapters[f"/{protocol}"] = adapter
    if protocol == "kdniao":
        sandbox.set_push_url("kdniao", f"{receiver.url}/kdniao")
    number = new_waybill("1")  # picked up: hours from delivery on the session's clock
    adapter.subscribe(waybill(protocol, number))
    receiver.wait_for(tracking_for(number))

    assert mishap(sandbox, number, {"kind": "damaged"}).status_code == 200

    push = receiver.wait_for(tracking_for(number, stage=S.EXCEPTION))
    assert push.result.tracking[0].scans[-1].raw_code == code


# Lost.


def test_a_lost_parcel_gets_no_further_scans_or_pushes(sandbox, make_adapter, receiver):
    adapter = make_adapter(sandbox, "kuaidi100", callback_url=f"{receiver.url}/kuaidi100")
    receiver.adapters["/kuaidi100"] = adapter
    number = new_waybill("1")
    adapter.subscribe(waybill("kuaidi100", number))
    receiver.wait_for(tracking_for(number))

    answer = mishap(sandbox, number, {"kind": "lost"})

    assert answer.status_code == 200
    lost = answer.json()
    assert lost["next_move_at"] is None
    assert [item["kind"] for item in lost["mishaps"]] == ["lost"]
    # Past any stage's dwell (in transit: 12 h ± 20 %) on the session's clock.
    later = sandbox.clock.now() + timedelta(hours=15)
    wait_until(lambda: sandbox.clock.now() > later, timeout=10)
    assert sandbox.truth(number)["events"] == lost["events"]
    [result] = adapter.query([waybill("kuaidi100", number)])
    assert len(result.scans) == len(lost["events"])
    assert max(pushed_scan_counts(receiver, number)) == len(lost["events"])
    # Not a finished parcel either: kuaidi100 keeps it open (ischeck 0).
    assert render_kuaidi100(sandbox.world.known(number), "yunda")["ischeck"] == "0"


def test_a_lost_parcel_never_gets_its_intercept_result(make_adapter):
    # One simulated hour per second: the intercept takes effect about two seconds on.
    with SandboxServer(speed=3600, seed=SEED) as server:
        adapter = make_adapter(server, "kuaidi100", callback_url="http://127.0.0.1:9/cb")
        number = waybill_with_outcome("2", protocol="kuaidi100", action=RETURN, succeed=True)
        assert adapter.request_intercept(waybill("kuaidi100", number), action=RETURN).accepted
        assert mishap(server, number, {"kind": "lost"}).status_code == 200

        due = datetime.fromisoformat(server.truth(number)["intercept"]["due_at"])
        wait_until(lambda: server.clock.now() > due)

        assert server.truth(number)["intercept"]["status"] == "pending"


def pushed_scan_counts(receiver, number: str) -> list[int]:
    """How many scans each push of ``number`` received so far carried."""
    while not receiver.received.empty():
        receiver.seen.append(receiver.received.get_nowait())
    return [
        len(tracking.scans)
        for item in receiver.seen
        if item.result is not None
        for tracking in item.result.tracking
        if tracking.waybill_no == number
    ]


def test_a_lost_parcel_cannot_be_damaged_or_lost_again(sandbox, make_adapter):
    number = new_waybill("2")
    make_adapter(sandbox, "kdniao").query([waybill("kdniao", number)])
    assert mishap(sandbox, number, {"kind": "lost"}).status_code == 200
    assert mishap(sandbox, number, {"kind": "damaged"}).status_code == 409
    assert mishap(sandbox, number, {"kind": "lost"}).status_code == 409


# Refusals.


@pytest.mark.parametrize("body", [{"kind": "stolen"}, {"kind": ["lost"]}, {}, ["lost"]])
def test_a_mishap_of_another_kind_is_a_bad_request(sandbox, make_adapter, body):
    number = new_waybill("2")
    make_adapter(sandbox, "kdniao").query([waybill("kdniao", number)])
    answer = mishap(sandbox, number, body)
    assert answer.status_code == 400
    assert "damaged" in answer.json()["error"]


def test_a_mishap_of_an_unknown_waybill_is_not_found(sandbox):
    answer = mishap(sandbox, "never-seen-mishap", {"kind": "damaged"})
    assert answer.status_code == 404


@pytest.mark.parametrize("digit", ["0", "7"])  # label created, delivered
def test_a_parcel_the_courier_does_not_hold_is_refused(sandbox, make_adapter, digit):
    number = new_waybill(digit)
    make_adapter(sandbox, "kdniao").query([waybill("kdniao", number)])
    answer = mishap(sandbox, number, {"kind": "damaged"})
    assert answer.status_code == 409
    assert sandbox.truth(number)["mishaps"] == []


def test_the_world_method_checks_what_the_endpoint_checks(sandbox):
    number = new_waybill("2")
    sandbox.world.parcel(number)
    with pytest.raises(ValueError, match="stolen"):
        sandbox.world.mishap(number, "stolen")
    with pytest.raises(KeyError):
        sandbox.world.mishap("never-seen-method", "damaged")
    parcel = sandbox.world.mishap(number, "damaged")
    assert parcel.events[-1].codes == {"kuaidi100": "209", "kdniao": "414"}
    assert httpx.get(f"{sandbox.url}/sandbox/parcels/{number}").json()["mishaps"][0]["kind"] == (
        "damaged"
    )
