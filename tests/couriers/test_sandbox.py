"""The sandbox courier's own rules: stages picked by waybill numbers, seeded intercept outcomes,
fault options, push retries and the bounded push queue, clean shutdown, and the command."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from couriers import signing
from couriers.adapters.base import Waybill
from couriers.adapters.common import InterceptAction, compact_json
from couriers.adapters.kuaidi100 import Kuaidi100Adapter
from couriers.sandbox import (
    SANDBOX_ACCOUNTS,
    START_STAGES,
    FaultOptions,
    Push,
    PushDispatcher,
    SandboxServer,
    SimClock,
    intercept_succeeds,
    planned_path,
    sandbox_account,
    start_stage,
)
from couriers.stages import ParcelStage as S
from tests.couriers.conftest import SEED, new_waybill

RETURN = InterceptAction.RETURN_TO_SENDER_ADDRESS
PROJECT = Path(__file__).resolve().parents[2]


def test_the_last_digit_picks_the_start_stage():
    assert [start_stage(f"7300000001{digit}") for digit in "0123456789"] == list(START_STAGES)
    assert start_stage("SF1234567800") == S.NO_INFO


def test_a_number_ending_in_a_letter_picks_a_stage_by_hash_every_time():
    assert start_stage("JD0001234567A") == start_stage("JD0001234567A")
    assert start_stage("JD0001234567A") in START_STAGES


def test_every_start_stage_lies_on_its_path_and_the_path_ends_finally():
    for stage in START_STAGES:
        path = planned_path(stage)
        assert stage in path
        assert path[-1] in (S.DELIVERED, S.RETURNED)


def test_intercept_outcome_depends_on_seed_and_waybill_only():
    numbers = [f"7311{n:08d}2" for n in range(200)]
    first = [intercept_succeeds(SEED, n, S.IN_TRANSIT, "kuaidi100", RETURN) for n in numbers]
    again = [
        intercept_succeeds(SEED, n, S.IN_TRANSIT, "kuaidi100", RETURN) for n in reversed(numbers)
    ]
    assert first == list(reversed(again))
    # In transit through kuaidi100: 0.88 × 0.95 ≈ 0.84 of them succeed.
    assert 0.7 < sum(first) / len(first) < 0.95
    assert not any(intercept_succeeds(SEED, n, S.DELIVERED, "sf", RETURN) for n in numbers)


def test_fault_header_tokens_add_to_the_run_options():
    base = FaultOptions(error_rate=0.1)
    merged = base.merged_with("latency=2000, error=0.3, timeout=4, reset, malformed, ratelimit")
    assert merged == FaultOptions(
        latency_ms=2000,
        error_rate=0.3,
        timeout_rate=1.0,
        reset_rate=1.0,
        malformed_rate=1.0,
        ratelimit_rate=1.0,
        hang_s=4.0,
    )
    assert base.merged_with("") == base
    with pytest.raises(ValueError, match="explode"):
        base.merged_with("explode")


def test_the_push_queue_is_bounded():
    dispatcher = PushDispatcher(clock=SimClock(3600), max_pending=2)
    push = Push(protocol="sf", kind="tracking", url="http://127.0.0.1:9", form={}, waybill_no="1")
    assert dispatcher.submit(push)
    assert dispatcher.submit(push)
    assert not dispatcher.submit(push)
    assert dispatcher.dropped == 1
    dispatcher.stop()  # never started: stopping still releases the client


def test_an_unacknowledged_push_is_tried_three_times(sandbox, receiver):
    # The receiver knows no adapter for this path and answers 404, which is no ack.
    adapter = Kuaidi100Adapter(sandbox.account("kuaidi100", callback_url=receiver.url + "/nobody"))
    number = new_waybill("7")  # delivered: one push, then nothing new
    adapter.subscribe(Waybill(waybill_no=number, courier_code="YUNDA", protocol_code="yunda"))
    adapter.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        attempts = [e["attempt"] for e in sandbox.dispatcher.log if e["waybill_no"] == number]
        if len(attempts) == 3:
            break
        time.sleep(0.05)
    assert attempts == [1, 2, 3]
    entries = [e for e in sandbox.dispatcher.log if e["waybill_no"] == number]
    assert not any(entry["acked"] for entry in entries)
    assert entries[0]["error"].startswith("HTTP 404")


def test_sf_accepts_a_timestamp_in_seconds_as_its_own_demo_sends(sandbox):
    account = SANDBOX_ACCOUNTS["sf"]
    msg_data = compact_json({"trackingType": "1", "trackingNumber": [new_waybill("2")]})
    timestamp = str(int(time.time()))
    answer = httpx.post(
        sandbox.gateway_url("sf") + "/std/service",
        data={
            "partnerID": account["partner_id"],
            "requestID": uuid.uuid4().hex,
            "serviceCode": "EXP_RECE_SEARCH_ROUTES",
            "timestamp": timestamp,
            "msgDigest": signing.sf_msg_digest(msg_data, timestamp, account["check_word"]),
            "msgData": msg_data,
        },
    ).json()
    assert answer["apiResultCode"] == "A1000"


def test_sf_refuses_a_stale_timestamp(sandbox):
    account = SANDBOX_ACCOUNTS["sf"]
    msg_data = compact_json({"trackingType": "1", "trackingNumber": [new_waybill("2")]})
    timestamp = str(int((time.time() - 3600) * 1000))
    answer = httpx.post(
        sandbox.gateway_url("sf") + "/std/service",
        data={
            "partnerID": account["partner_id"],
            "requestID": uuid.uuid4().hex,
            "serviceCode": "EXP_RECE_SEARCH_ROUTES",
            "timestamp": timestamp,
            "msgDigest": signing.sf_msg_digest(msg_data, timestamp, account["check_word"]),
            "msgData": msg_data,
        },
    ).json()
    assert answer["apiResultCode"] == "A1002"


def test_kdniao_accepts_a_data_sign_encoded_twice(sandbox):
    # Some clients URL-encode DataSign themselves before the form encoding (§1.2).
    account = SANDBOX_ACCOUNTS["kdniao"]
    request_data = compact_json({"ShipperCode": "YD", "LogisticCode": new_waybill("2")})
    sign = signing.kdniao_data_sign(request_data, account["app_key"]).replace("=", "%3D")
    answer = httpx.post(
        sandbox.gateway_url("kdniao"),
        data={
            "EBusinessID": account["ebusiness_id"],
            "RequestType": "8001",
            "RequestData": request_data,
            "DataSign": sign,
            "DataType": "2",
        },
    ).json()
    assert answer["Success"] is True
    assert answer["StateEx"] == "2"


def test_stop_ends_every_thread_and_frees_the_port():
    server = SandboxServer(speed=3600, seed=SEED)
    server.start()
    port = server.port
    # A request that hangs must not keep stop() waiting.
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            server.gateway_url("sf") + "/std/service",
            headers={"X-Sandbox-Fault": "timeout=60"},
            timeout=0.2,
        )
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert not any(thread.is_alive() for thread in server._threads)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_serves_until_interrupted():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "courier_sandbox", "--port", str(port), "--seed", "7"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first_line = process.stdout.readline()
        assert re.match(rf"Sandbox courier at http://127\.0\.0\.1:{port} ", first_line), first_line
        number = new_waybill("5")
        answer = httpx.post(f"http://127.0.0.1:{port}/kdniao/Ebusiness/EbusinessOrderHandle.aspx")
        assert answer.json()["ResultCode"] == "101"
        assert httpx.get(f"http://127.0.0.1:{port}/sandbox/parcels/{number}").status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Sandbox courier stopped." in out


def test_a_paced_sandbox_never_dates_a_scan_in_the_future():
    """The demo's sandbox moves parcels fast but dates each scan when it happens: shown as real
    times, none lies ahead of the wall clock, while the parcel still moves on."""
    from datetime import datetime

    from couriers.adapters.common import SHANGHAI

    # A hundred simulated hours a second: a picked-up parcel passes several stages within a
    # second whatever its stages' random lengths (at ten it sometimes passed only one).
    with SandboxServer(speed=360_000, seed=SEED, paced=True) as server:
        number = new_waybill("1")
        server.world.parcel(number)
        time.sleep(1.5)
        truth = server.truth(number)
        now = datetime.now(SHANGHAI).replace(tzinfo=None)
    stages = [event["stage"] for event in truth["events"]]
    assert stages.index(S.PICKED_UP) < len(stages) - 2  # it moved on at least twice
    times = [datetime.strptime(event["time"], "%Y-%m-%d %H:%M:%S") for event in truth["events"]]
    assert max(times) <= now


def test_the_command_runs_paced_on_request():
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable, "manage.py", "courier_sandbox", "--port", str(port),
            "--paced", "--hours-per-second", "10",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout.readline().startswith("Sandbox courier at")
        waybill = Waybill(
            waybill_no=new_waybill("1"), courier_code="ZTO", protocol_code="zhongtong",
            phone_tail="1234",
        )  # fmt: skip
        adapter = Kuaidi100Adapter(sandbox_account("kuaidi100", f"http://127.0.0.1:{port}"))
        try:
            adapter.query([waybill])
            time.sleep(1.5)
            results = adapter.query([waybill])
        finally:
            adapter.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    from django.utils import timezone

    times = [scan.occurred_at for result in results for scan in result.scans]
    assert len(times) > 2
    assert max(times) <= timezone.now()
