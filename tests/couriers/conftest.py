"""Fixtures for talking to the sandbox courier over real HTTP: the server, a push receiver that
runs our adapters' ``parse_push`` like the future push view will, and waybill numbers that pick
their sandbox stage (couriers/sandbox.py, ``start_stage``) and, if asked, their intercept outcome.
"""

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from couriers.adapters import get_adapter
from couriers.adapters.base import PushRejected, PushResult
from couriers.sandbox import SandboxServer, intercept_succeeds, start_stage

SEED = 42
# Ten simulated hours per real second: an intercept's outcome arrives in a fraction of a second,
# while a parcel still takes seconds to leave the stage it was created in.
SPEED = 36_000

_counter = itertools.count(1)


def new_waybill(digit: str, prefix: str = "73") -> str:
    """A number never used before in this run, ending in ``digit`` (its sandbox stage)."""
    # The "1" before the digit keeps a "0" from making "00", which means "no tracking ever".
    return f"{prefix}{time.monotonic_ns() % 10**6:06d}{next(_counter):05d}1{digit}"


def waybill_with_outcome(
    digit: str, *, protocol: str, action: str, succeed: bool, prefix: str = "73"
) -> str:
    """A fresh number in the stage of ``digit`` whose intercept will (not) succeed."""
    for _ in range(1000):
        number = new_waybill(digit, prefix)
        outcome = intercept_succeeds(SEED, number, start_stage(number), protocol, action)
        if outcome is succeed:
            return number
    raise AssertionError("no waybill with the wanted outcome in 1000 tries")


@pytest.fixture(scope="session")
def sandbox():
    server = SandboxServer(speed=SPEED, seed=SEED)
    server.start()
    yield server
    server.stop()


@dataclass
class Received:
    path: str
    form: dict[str, str]
    result: PushResult | None = None
    error: str = ""


@dataclass
class PushReceiver:
    """A tiny HTTP server that takes pushes, parses them with ``adapters[path]`` and answers
    with the adapter's ack (HTTP 400 for a PushRejected)."""

    url: str = ""
    adapters: dict = field(default_factory=dict)
    received: "queue.Queue[Received]" = field(default_factory=queue.Queue)
    seen: list[Received] = field(default_factory=list)

    def wait_for(self, predicate, timeout: float = 5.0) -> Received:
        """The first push (already seen or still to come) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        for item in self.seen:
            if predicate(item):
                return item
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [(item.path, item.error or "ok") for item in self.seen]
                raise AssertionError(f"no matching push within {timeout}s; got {got}")
            try:
                item = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(item)
            if predicate(item):
                return item


def _receiver_handler(receiver: PushReceiver):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {key: values[0] for key, values in parse_qs(body).items()}
            item = Received(path=self.path, form=form)
            adapter = receiver.adapters.get(self.path)
            status, answer = 404, b"no adapter"
            if adapter is not None:
                try:
                    item.result = adapter.parse_push(form)
                    status, answer = 200, item.result.ack_body.encode()
                except PushRejected as exc:
                    item.error = str(exc)
                    status, answer = 400, str(exc).encode()
            receiver.received.put(item)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@pytest.fixture
def receiver():
    receiver = PushReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()
    for adapter in receiver.adapters.values():
        adapter.close()


@pytest.fixture
def make_adapter():
    """Build adapters against a sandbox, closing them at the end of the test."""
    made = []

    def _make(server: SandboxServer, protocol: str, **overrides):
        overrides.setdefault("timeout_s", 2.0)
        adapter = get_adapter(server.account(protocol, **overrides))
        made.append(adapter)
        return adapter

    yield _make
    for adapter in made:
        adapter.close()
