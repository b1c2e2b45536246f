"""The sandbox courier: a local HTTP server that speaks Kuaidi100, SF and Kdniao like the real
gateways, over simulated parcels that move on an accelerated clock.

Used by the tests (over real HTTP, nothing mocked) and by the demo (``manage.py courier_sandbox``).
Gateway paths mirror the real ones under a protocol prefix, so an account's ``base_url`` is:

- kuaidi100: ``{root}/kuaidi100`` (``/poll/query.do``, ``/poll``, ``/label/order``)
- sf: ``{root}/sf`` (``/std/service``)
- kdniao: ``{root}/kdniao/Ebusiness/EbusinessOrderHandle.aspx`` (the whole gateway URL); the
  documented subscription endpoint ``{root}/kdniao/api/dist`` is served by the same gateway

``sandbox_account(protocol, root)`` builds a matching ``AccountConfig`` with the credentials of
``SANDBOX_ACCOUNTS``; requests are checked with ``couriers.signing`` against them, as the real
gateways are documented to check them (README, "What the sandbox assumes", lists what is
published and what is ours):

- SF: a digest by SF's documented Java rule or by its Python demo's (they differ on ``*`` and
  ``~``); the request log (``GET /sandbox/requests``) tells which one each request used
  (``sign_rule``).
- Kdniao: RequestData as JSON or single-quoted, as Kdniao's own examples write it (read as
  JSON5; the request log's ``request_data`` says which). 1002 answers basic tracks, 8001
  value-added ones; a 1008 subscription is pushed RequestType 101 with basic tracks, 8008 gets
  102 with value-added ones, ``Count`` a string.
- Kuaidi100: the query's and subscription's ``resultv2`` sets the detail of answers and pushes:
  none, basic states with names (1), advanced states with ``statusCode`` and cities (4 and up).

One clock: every time the sandbox writes (scans, answer and push times, the signed timestamp
of an SF push) comes from its simulated clock, so no scan is later than the message carrying
it. On an accelerated clock that runs ahead of the real one, so a receiver that checks signed
times against its own clock (our push endpoint does) refuses those pushes: the demo runs paced.

Simulated parcels (deterministic for a given seed):

- A parcel is created the first time any request names its waybill number, in the stage picked
  by the number's last character (``start_stage``): a digit d selects ``START_STAGES[d]``
  (0 label created, 1 picked up, 2 in transit, 3 at destination city, 4 at delivery station,
  5 out for delivery, 6 in a locker/station, 7 delivered, 8 delivery failed, 9 returning); a
  number ending in "00" never gets any tracking; any other last character picks by a hash.
  Its history up to that stage is backdated, and it then moves along its path on the clock
  (``speed`` simulated seconds per real second; 3600 = one simulated hour per second). The demo
  runs it paced (``PacedClock``): waits shortened instead, so scans carry real times.
- Each stage is reported with one canonical protocol code (``KUAIDI100_CODES``, ``SF_CODES``,
  ``KDNIAO_CODES``, the reverse of ``couriers.codes``). A stage a protocol has no code for is not
  reported by that protocol (kuaidi100 and SF never say "intercepted"), or reported as the
  nearest it has (kuaidi100's at-station scan is a plain 在途 "0"). SF gets opCodes outside
  ``couriers.codes.SF_STAGES`` for lockers, failed deliveries and returned parcels, as the real
  SF sends many codes that we do not map. A scan may carry codes of its own instead
  (``SimEvent.codes``, read through ``event_code``): the damage scan below.
- Intercepts follow §7.4: a synchronous eligibility check by stage (``REFUSALS``), then success
  with the stage's probability (``intercept_succeeds``: a ``random.Random`` seeded by the run's
  seed and the waybill, so a test can know the outcome ahead), decided once per parcel; a second
  request is refused as already intercepted. Only the shipper's e-waybill account a waybill was
  issued under may intercept it (Kuaidi100's ``partnerId``, SF's ``monthlyCardNo``): another
  account is refused (SF code 20012, "非本账号下单的运单，无权拦截"). ``POST /sandbox/waybills``
  (JSON ``{"account": ..., "waybills": [...]}``) records numbers as issued under an account; a
  number never issued that way is taken as issued to the first account that intercepts it.
  The outcome takes effect after a propagation delay
  (SF 0.5 h, kuaidi100 2 h, simulated); until then a parcel that will be caught does not move.
  Success diverts it to INTERCEPTED → RETURNING → RETURNED, or for a redirect INTERCEPTED →
  REDIRECTING → ... → DELIVERED. Kuaidi100 reports the result by a signed callback to the
  request's callbackUrl; SF by route pushes (631 returning / 648 redirecting) and, for a
  failure, an intercept result notice, both to the SF push URL.
- Subscriptions: kuaidi100 pushes to the callbackurl of the subscription, signed with its salt;
  SF and Kdniao push to the URL registered "in their portal", here ``set_push_url()`` or
  ``POST /sandbox/push-urls`` (JSON ``{"sf": url, "kdniao": url}``). The sandbox pushes every
  new scan at once, where the real kuaidi100 batches them every few hours.
- Mishaps, on request (``SandboxWorld.mishap`` or ``POST /sandbox/parcels/<waybill>/mishap``
  with JSON ``{"kind": "damaged"}`` or ``{"kind": "lost"}``; the endpoint is ours). "damaged"
  adds, at the clock's now, an EXCEPTION scan "快件破损，已登记" in each protocol's published
  damage code (``couriers.codes.DAMAGE_CODES``: kuaidi100 209 破损 under 2 疑难, Kdniao StateEx
  414 under State 4 问题件), pushed like any scan; SF publishes no such opCode and does not
  report it. The parcel then goes on along its path on its schedule: a damaged parcel still
  arrives or comes back. "lost" stops the parcel for good, as a lost parcel goes quiet: no
  scan, no push, no intercept result, and kuaidi100 never says ``ischeck`` 1. A parcel not yet
  picked up, at the end of its path or already lost is refused (HTTP 409); an unknown kind is
  400, a number never seen 404.

Faults, for the whole run (``FaultOptions``) or per request with the header
``X-Sandbox-Fault: latency=2000,error=0.3,timeout,reset,malformed,ratelimit``:
``latency=<ms>`` adds a delay; ``error``, ``reset``, ``malformed``, ``ratelimit`` take an optional
``=<probability>`` (default 1) and answer HTTP 500, reset the connection, cut the JSON body in
half, or give the protocol's own rate-limit answer; ``timeout`` (or ``timeout=<seconds>``) hangs
without an answer for ``hang_s`` seconds (default 30), past any sane client timeout; ``lose``
(optional probability) carries the request out and then hangs the same way, so the courier has
acted on a request whose answer never arrives.

For tests and tools: ``GET /sandbox/parcels/<waybill>`` gives the sandbox's truth about a parcel
(404 if never seen; its events with any codes of their own, and its ``mishaps``),
``GET /sandbox/requests`` the recent gateway requests, and ``GET /sandbox/pushes`` the recent
pushes with their outcome.
"""

import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import random
import socket
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

import httpx

from couriers import signing
from couriers.adapters.base import AccountConfig
from couriers.adapters.common import (
    SHANGHAI,
    FailureReason,
    InterceptAction,
    compact_json,
    format_local_time,
    parse_json_or_json5,
)
from couriers.stages import ParcelStage

logger = logging.getLogger(__name__)

S = ParcelStage

# Credentials the sandbox accepts, per protocol, in ``AccountConfig`` field names. The kuaidi100
# salt is chosen by the client in reality; it is here so that demo accounts have one.
SANDBOX_ACCOUNTS: dict[str, dict[str, str]] = {
    "kuaidi100": {
        "customer": "SANDBOXCUSTOMER",
        "key": "sandbox-key",
        "secret": "sandbox-secret",
        "salt": "sandbox-salt",
    },
    "sf": {"partner_id": "SANDBOXPARTNER", "check_word": "sandbox-check-word"},
    "kdniao": {"ebusiness_id": "1000001", "app_key": "sandbox-app-key"},
}

GATEWAY_PATHS = {
    "kuaidi100": "/kuaidi100",
    "sf": "/sf",
    "kdniao": "/kdniao/Ebusiness/EbusinessOrderHandle.aspx",
}


# The subscription endpoint several Kdniao clients use (§1.1: ``http://api.kdniao.com/api/dist``).
KDNIAO_SUBSCRIBE_PATH = "/kdniao/api/dist"


def sandbox_account(protocol: str, root_url: str, **overrides) -> AccountConfig:
    """An AccountConfig for the sandbox at ``root_url`` (e.g. ``http://127.0.0.1:8765``)."""
    fields = {**SANDBOX_ACCOUNTS[protocol], **overrides}
    return AccountConfig(
        protocol=protocol, base_url=root_url.rstrip("/") + GATEWAY_PATHS[protocol], **fields
    )


# Parcels: where they start, the way they go, how long they stay.

START_STAGES = (
    S.LABEL_CREATED,
    S.PICKED_UP,
    S.IN_TRANSIT,
    S.AT_DESTINATION_CITY,
    S.AT_DELIVERY_STATION,
    S.OUT_FOR_DELIVERY,
    S.AWAITING_COLLECTION,
    S.DELIVERED,
    S.DELIVERY_FAILED,
    S.RETURNING,
)

_TO_STATION = [
    S.LABEL_CREATED,
    S.PICKED_UP,
    S.IN_TRANSIT,
    S.AT_DESTINATION_CITY,
    S.AT_DELIVERY_STATION,
]
DOOR_PATH = [*_TO_STATION, S.OUT_FOR_DELIVERY, S.DELIVERED]
LOCKER_PATH = [*_TO_STATION, S.AWAITING_COLLECTION, S.DELIVERED]
RETRY_PATH = [*_TO_STATION, S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED, S.OUT_FOR_DELIVERY, S.DELIVERED]
RETURNING_PATH = [
    S.LABEL_CREATED,
    S.PICKED_UP,
    S.IN_TRANSIT,
    S.INTERCEPTED,
    S.RETURNING,
    S.RETURNED,
]
RETURN_DIVERSION = [S.INTERCEPTED, S.RETURNING, S.RETURNED]
REDIRECT_DIVERSION = [
    S.INTERCEPTED,
    S.REDIRECTING,
    S.AT_DESTINATION_CITY,
    S.AT_DELIVERY_STATION,
    S.OUT_FOR_DELIVERY,
    S.DELIVERED,
]

# Simulated hours a parcel stays in a stage (±20 % per parcel and step).
DWELL_HOURS = {
    S.LABEL_CREATED: 6,
    S.PICKED_UP: 3,
    S.IN_TRANSIT: 12,
    S.AT_DESTINATION_CITY: 4,
    S.AT_DELIVERY_STATION: 2,
    S.OUT_FOR_DELIVERY: 3,
    S.AWAITING_COLLECTION: 10,
    S.DELIVERY_FAILED: 6,
    S.INTERCEPTED: 1,
    S.REDIRECTING: 12,
    S.RETURNING: 24,
}

# Simulated hours before an intercept instruction takes effect (§7.4: about 30 min on a direct
# network like SF, about 2 h on the franchise networks kuaidi100 mostly serves).
PROPAGATION_HOURS = {"sf": 0.5, "kuaidi100": 2.0}

# §7.4's default success probability by stage at request time (design assumptions).
SUCCESS_PROBABILITY = {
    S.PICKED_UP: 0.92,
    S.IN_TRANSIT: 0.88,
    S.AT_DESTINATION_CITY: 0.75,
    S.AT_DELIVERY_STATION: 0.55,
    S.AWAITING_COLLECTION: 0.40,
    S.DELIVERY_FAILED: 0.65,
}
PROTOCOL_FACTOR = {"sf": 1.05, "kuaidi100": 0.95}  # direct network vs franchise (§7.4 knobs)
REDIRECT_FACTOR = 0.95  # a new address must be validated too (§7.4)

# Synchronous refusals by stage (§7.4), with the gateways' kind of Chinese message.
REFUSALS: dict[str, tuple[str, str]] = {
    S.NO_INFO: (FailureReason.NOT_PICKED_UP, "快件尚未揽收，无法拦截，请取消订单"),
    S.LABEL_CREATED: (FailureReason.NOT_PICKED_UP, "快件尚未揽收，无法拦截，请取消订单"),
    S.OUT_FOR_DELIVERY: (FailureReason.OUT_FOR_DELIVERY, "快件派送中，无法拦截"),
    S.DELIVERED: (FailureReason.ALREADY_DELIVERED, "快件已签收，无法拦截"),
    S.INTERCEPTED: (FailureReason.ALREADY_INTERCEPTED, "快件已拦截，请勿重复提交"),
    S.REDIRECTING: (FailureReason.ALREADY_INTERCEPTED, "快件已拦截，请勿重复提交"),
    S.RETURNING: (FailureReason.ALREADY_RETURNING, "快件退回中，无需拦截"),
    S.RETURNED: (FailureReason.ALREADY_RETURNING, "快件已退回寄件人，无需拦截"),
}
DUPLICATE_MESSAGE = "该快件已提交过拦截，请勿重复提交"
# Refusing an intercept asked under another shipper's account (ZTO says 仅支持商家自己下的单).
NOT_OWNER_MESSAGE = "非本账号下单的运单，无权拦截"
# SF's refusal code for it; SF does not publish its intercept codes, so this one is the sandbox's.
SF_NOT_OWNER_CODE = "20012"

# Protocol codes per stage: the reverse of couriers.codes, one canonical code each.
KUAIDI100_CODES = {
    S.LABEL_CREATED: "101",
    S.PICKED_UP: "103",
    S.IN_TRANSIT: "1002",
    S.AT_DESTINATION_CITY: "1001",
    S.AT_DELIVERY_STATION: "0",  # kuaidi100 has no at-station state; a plain 在途
    S.OUT_FOR_DELIVERY: "5",
    S.AWAITING_COLLECTION: "501",
    S.DELIVERY_FAILED: "204",
    S.DELIVERED: "301",
    S.REDIRECTING: "1003",
    S.RETURNING: "6",
    S.RETURNED: "4",
}
# resultv2=4 names each advanced code and its basic parent (§2.3); resultv2=1 and below answer the
# parent's code and name instead.
KUAIDI100_ADVANCED = {
    "101": ("已下单", "1"),
    "103": ("已揽收", "1"),
    "1002": ("干线", "0"),
    "1001": ("到达派件城市", "0"),
    "0": ("在途", "0"),
    "1003": ("转递", "0"),
    "5": ("派件", "5"),
    "501": ("投柜或驿站", "5"),
    "204": ("派件异常", "2"),
    "301": ("本人签收", "3"),
    "6": ("退回", "6"),
    "4": ("退签", "4"),
    "209": ("破损", "2"),
}
KUAIDI100_BASIC_NAMES = {
    "0": "在途",
    "1": "揽收",
    "2": "疑难",
    "3": "签收",
    "4": "退签",
    "5": "派件",
    "6": "退回",
    "7": "转投",
    "8": "清关",
    "14": "拒签",
}
SF_CODES = {
    S.PICKED_UP: "54",
    S.IN_TRANSIT: "36",
    S.AT_DESTINATION_CITY: "31",
    S.AT_DELIVERY_STATION: "130",
    S.OUT_FOR_DELIVERY: "44",
    S.AWAITING_COLLECTION: "607",  # not in SF_STAGES: the adapter keeps the previous stage
    S.DELIVERY_FAILED: "70",  # not in SF_STAGES
    S.DELIVERED: "80",
    S.REDIRECTING: "648",
    S.RETURNING: "631",
    S.RETURNED: "99",  # not in SF_STAGES
}
KDNIAO_CODES = {
    S.LABEL_CREATED: "10",
    S.PICKED_UP: "1",
    S.IN_TRANSIT: "2",
    S.AT_DESTINATION_CITY: "201",
    S.AT_DELIVERY_STATION: "205",
    S.OUT_FOR_DELIVERY: "202",
    S.AWAITING_COLLECTION: "211",
    S.DELIVERY_FAILED: "405",
    S.DELIVERED: "301",
    S.INTERCEPTED: "413",
    S.REDIRECTING: "5",
    S.RETURNING: "407",
    S.RETURNED: "406",
}
# By protocol; a scan's own ``codes`` take precedence (``event_code``).
STAGE_CODES = {"kuaidi100": KUAIDI100_CODES, "sf": SF_CODES, "kdniao": KDNIAO_CODES}
# Kdniao's basic State next to each StateEx above (§1.5).
KDNIAO_BASIC_STATES = {
    "10": "0",
    "1": "1",
    "2": "2",
    "201": "2",
    "205": "2",
    "202": "2",
    "211": "2",
    "405": "4",
    "301": "3",
    "413": "4",
    "5": "5",
    "407": "4",
    "406": "3",
    "414": "4",
}

# Mishaps (``SandboxWorld.mishap``): "damaged" adds a scan in each protocol's published damage
# code (couriers.codes.DAMAGE_CODES) and the parcel goes on; "lost" stops it for good.
MISHAP_DAMAGED = "damaged"
MISHAP_LOST = "lost"
MISHAP_KINDS = (MISHAP_DAMAGED, MISHAP_LOST)
# SF publishes no damage opCode, so SF does not report the damage scan, as with any stage it
# has no code for.
DAMAGE_SCAN_CODES = {"kuaidi100": "209", "kdniao": "414"}
DAMAGE_DESCRIPTION = "快件破损，已登记"

CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆")

DESCRIPTIONS = {
    S.LABEL_CREATED: "商家已下单，等待快递员揽收",
    S.PICKED_UP: "【{origin}】快递员已揽收",
    S.IN_TRANSIT: "快件已从【{origin}转运中心】发出，正发往【{destination}转运中心】",
    S.AT_DESTINATION_CITY: "快件已到达【{destination}转运中心】",
    S.AT_DELIVERY_STATION: "快件已到达【{destination}中心营业部】",
    S.OUT_FOR_DELIVERY: "【{destination}中心营业部】快递员正在为您派件",
    S.AWAITING_COLLECTION: "快件已放入【{destination}驿站】，请凭取件码取件",
    S.DELIVERY_FAILED: "派件未成功：收件人电话无人接听，将再次派送",
    S.DELIVERED: "快件已签收，签收人：本人",
    S.INTERCEPTED: "快件已按寄件人要求拦截",
    S.REDIRECTING: "快件已按寄件人要求改址，正转寄至【{destination}】",
    S.RETURNING: "快件已按寄件人要求退回，正发往【{origin}】",
    S.RETURNED: "退回件已由寄件人签收",
}
# Where each stage's scan happens: at the sender's end or the receiver's.
_AT_ORIGIN = frozenset({S.LABEL_CREATED, S.PICKED_UP, S.IN_TRANSIT, S.RETURNED})


def _digest_number(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def start_stage(waybill_no: str) -> ParcelStage:
    """The stage a parcel is in when the sandbox first sees its number (module docstring)."""
    if waybill_no.endswith("00"):
        return S.NO_INFO
    last = waybill_no[-1:] or "0"
    index = int(last) if last.isdigit() else _digest_number(waybill_no) % len(START_STAGES)
    return START_STAGES[index]


def planned_path(start: ParcelStage) -> list[ParcelStage]:
    """The whole way a parcel starting in ``start`` takes, from its first scan."""
    if start == S.NO_INFO:
        return []
    if start == S.AWAITING_COLLECTION:
        return list(LOCKER_PATH)
    if start == S.DELIVERY_FAILED:
        return list(RETRY_PATH)
    if start == S.RETURNING:
        return list(RETURNING_PATH)
    return list(DOOR_PATH)


def intercept_probability(stage: str, protocol: str, action: str) -> float:
    probability = SUCCESS_PROBABILITY.get(stage, 0.0) * PROTOCOL_FACTOR.get(protocol, 1.0)
    if action == InterceptAction.REDIRECT_NEW_ADDRESS:
        probability *= REDIRECT_FACTOR
    return min(probability, 1.0)


def intercept_succeeds(
    seed: int,
    waybill_no: str,
    stage: str,
    protocol: str,
    action: str,
    override: float | None = None,
) -> bool:
    """Whether an eligible intercept of this parcel will succeed, decided by a generator seeded
    with the run's seed and the waybill alone, so the order of requests does not matter."""
    probability = (
        override if override is not None else intercept_probability(stage, protocol, action)
    )
    return random.Random(f"{seed}:{waybill_no}:intercept").random() < probability


# The simulated world.


class SimClock:
    """Simulated time: starts at the wall clock and runs ``speed`` times faster."""

    def __init__(self, speed: float):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall_start = datetime.now(SHANGHAI).replace(microsecond=0)
        self._monotonic_start = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._monotonic_start) * self.speed
        return (self._wall_start + timedelta(seconds=elapsed)).replace(microsecond=0)

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed

    def span(self, simulated: timedelta) -> timedelta:
        """How far ahead on this clock a simulated wait ends."""
        return simulated


class PacedClock(SimClock):
    """The wall clock, with every wait shortened ``speed`` times instead: parcels move as fast
    as on a ``SimClock``, but each scan is dated when it really happens, so none lies in the
    future (the demo shows these times as real ones). A history backdated on first sight keeps
    its full-length waits: it is in the past either way."""

    def now(self) -> datetime:
        return datetime.now(SHANGHAI).replace(microsecond=0)

    def span(self, simulated: timedelta) -> timedelta:
        return simulated / self.speed


@dataclass
class SimEvent:
    stage: ParcelStage
    at: datetime
    description: str
    location: str
    # Per protocol, a code that replaces the stage's canonical one (a damage scan's 209 / 414).
    codes: dict[str, str] = field(default_factory=dict)


def event_code(event: SimEvent, protocol: str) -> str | None:
    """The code ``protocol`` reports ``event`` with, or None if it does not report it."""
    if protocol in event.codes:
        return event.codes[protocol]
    return STAGE_CODES[protocol].get(event.stage)


@dataclass
class Mishap:
    kind: str  # MISHAP_KINDS
    at: datetime


class MishapRefused(Exception):
    """A mishap asked for a parcel the courier does not hold: not picked up, finished or lost."""


@dataclass
class SimIntercept:
    protocol: str
    action: str
    success: bool
    requested_at: datetime
    due_at: datetime
    reference: str
    courier_code: str = ""
    callback_url: str = ""
    salt: str = ""
    new_city: str = ""
    order_id: str = ""
    status: str = "pending"  # pending, succeeded, failed, cancelled
    reason: str = ""


@dataclass
class Subscription:
    protocol: str
    callback_url: str = ""
    salt: str = ""
    courier_code: str = ""
    # Kuaidi100: the resultv2 detail its pushes carry (``kuaidi100_level``).
    level: int = 0
    # Kdniao: 1008 gets basic pushes (RequestType 101), 8008 value-added ones (102), each track
    # with the OrderCode the subscription named.
    request_type: str = ""
    order_code: str = ""


@dataclass
class SimParcel:
    waybill_no: str
    start: ParcelStage
    path: list[ParcelStage]
    rng: random.Random
    origin: str
    destination: str
    position: int = -1
    events: list[SimEvent] = field(default_factory=list)
    next_at: datetime | None = None
    intercept: SimIntercept | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    courier_codes: dict[str, str] = field(default_factory=dict)
    # The shipper's e-waybill account the number was issued under (see ``issue_waybills``).
    issued_to: str = ""
    mishaps: list[Mishap] = field(default_factory=list)

    @property
    def stage(self) -> ParcelStage:
        return self.events[-1].stage if self.events else S.NO_INFO

    @property
    def lost(self) -> bool:
        return any(mishap.kind == MISHAP_LOST for mishap in self.mishaps)

    @property
    def finished(self) -> bool:
        """At the end of its path: tracking stops (kuaidi100 ``ischeck``). A lost parcel is not
        finished, it only stops moving."""
        return self.next_at is None and bool(self.events) and not self.lost

    def dwell(self, stage: ParcelStage) -> timedelta:
        hours = DWELL_HOURS.get(stage, 6) * self.rng.uniform(0.8, 1.2)
        return timedelta(seconds=round(hours * 3600))

    def event_for(self, stage: ParcelStage, at: datetime) -> SimEvent:
        text = DESCRIPTIONS[stage].format(origin=self.origin, destination=self.destination)
        location = self.origin if stage in _AT_ORIGIN else self.destination
        return SimEvent(stage=stage, at=at, description=text, location=location)

    def truth(self) -> dict:
        intercept = None
        if self.intercept is not None:
            item = self.intercept
            intercept = {
                "protocol": item.protocol,
                "action": str(item.action),
                "status": item.status,
                "will_succeed": item.success,
                "reference": item.reference,
                "order_id": item.order_id,
                "requested_at": item.requested_at.isoformat(),
                "due_at": item.due_at.isoformat(),
                "reason": item.reason,
            }
        return {
            "waybill_no": self.waybill_no,
            "stage": str(self.stage.value),
            "start_stage": str(self.start.value),
            "path": [str(stage.value) for stage in self.path],
            "events": [
                {
                    "stage": str(event.stage.value),
                    "time": format_local_time(event.at),
                    "description": event.description,
                    "location": event.location,
                    "codes": dict(event.codes),
                }
                for event in self.events
            ],
            "next_move_at": self.next_at.isoformat() if self.next_at else None,
            "intercept": intercept,
            "subscriptions": sorted(self.subscriptions),
            "issued_to": self.issued_to,
            "mishaps": [
                {"kind": mishap.kind, "time": format_local_time(mishap.at)}
                for mishap in self.mishaps
            ],
        }


@dataclass(frozen=True)
class FaultOptions:
    """Faults for every gateway request; rates are probabilities from 0 to 1."""

    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    ratelimit_rate: float = 0.0
    lose_rate: float = 0.0
    hang_s: float = 30.0

    _RATES = {
        "error": "error_rate",
        "timeout": "timeout_rate",
        "reset": "reset_rate",
        "malformed": "malformed_rate",
        "ratelimit": "ratelimit_rate",
        "lose": "lose_rate",
    }

    def merged_with(self, header: str) -> "FaultOptions":
        """These options with an ``X-Sandbox-Fault`` header's tokens on top; ValueError for a
        token we do not know, so that a typo in a test fails loudly."""
        changes: dict = {}
        for token in filter(None, (part.strip() for part in header.split(","))):
            name, _, value = token.partition("=")
            name = name.strip().lower()
            value = value.strip()
            if name == "latency":
                changes["latency_ms"] = int(value or 0)
            elif name == "timeout":
                changes["timeout_rate"] = 1.0
                if value:
                    changes["hang_s"] = float(value)
            elif name in self._RATES:
                changes[self._RATES[name]] = float(value) if value else 1.0
            else:
                raise ValueError(f"unknown fault {name!r}")
        return replace(self, **changes)


@dataclass
class Push:
    protocol: str
    kind: str  # tracking, intercept
    url: str
    form: dict[str, str]
    waybill_no: str
    attempt: int = 1


class PushDispatcher:
    """Sends pushes from one background thread, in order, from a bounded queue.

    A push that is not acknowledged is tried again up to ``attempts`` times, 35 simulated
    minutes apart (kuaidi100's retry rhythm, §2.2), at most a few real seconds. When the queue
    is full new pushes are dropped and counted: the sandbox must never block a gateway answer.
    """

    def __init__(self, *, clock: SimClock, max_pending: int = 1000, attempts: int = 3):
        self._clock = clock
        self._max_pending = max_pending
        self._attempts = attempts
        self._heap: list[tuple[float, int, Push]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._client = httpx.Client(timeout=5.0)
        self._thread = threading.Thread(target=self._run, name="sandbox-pushes", daemon=True)
        self.dropped = 0
        self.log: deque[dict] = deque(maxlen=500)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def submit(self, push: Push, delay_s: float = 0.0) -> bool:
        with self._condition:
            if len(self._heap) >= self._max_pending:
                self.dropped += 1
                logger.warning("sandbox push queue full; dropped a %s push", push.protocol)
                return False
            due = time.monotonic() + delay_s
            heapq.heappush(self._heap, (due, next(self._sequence), push))
            self._condition.notify()
            return True

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout=wait)
                if self._stopping:
                    return
                _due, _sequence, push = heapq.heappop(self._heap)
            self._send(push)

    def _send(self, push: Push) -> None:
        entry = {
            "protocol": push.protocol,
            "kind": push.kind,
            "url": push.url,
            "waybill_no": push.waybill_no,
            "attempt": push.attempt,
            "acked": False,
            "error": "",
        }
        try:
            response = self._client.post(push.url, data=push.form)
            entry["acked"] = _acknowledged(push.protocol, response)
            if not entry["acked"]:
                entry["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        self.log.append(entry)
        if not entry["acked"] and push.attempt < self._attempts:
            delay = min(max(self._clock.real_seconds(35 * 60), 0.05), 5.0)
            self.submit(replace(push, attempt=push.attempt + 1), delay_s=delay)


def _acknowledged(protocol: str, response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if protocol == "kuaidi100":
        return body.get("result") is True or str(body.get("returnCode")) == "200"
    if protocol == "kdniao":
        return body.get("Success") is True
    return str(body.get("return_code")) == "0000"


class SandboxWorld:
    """The parcels, their clock and what they push. Every method takes the lock."""

    def __init__(
        self,
        *,
        clock: SimClock,
        seed: int,
        dispatcher: PushDispatcher,
        intercept_success: float | None = None,
        push_urls: dict[str, str] | None = None,
    ):
        self.clock = clock
        self.seed = seed
        self.dispatcher = dispatcher
        self.intercept_success = intercept_success
        self.push_urls: dict[str, str] = dict(push_urls or {})
        self.parcels: dict[str, SimParcel] = {}
        self.lock = threading.RLock()

    # Parcels.

    def parcel(self, waybill_no: str, *, protocol: str = "", courier_code: str = "") -> SimParcel:
        """The parcel, created on first sight and brought up to the current time."""
        with self.lock:
            now = self.clock.now()
            parcel = self.parcels.get(waybill_no)
            if parcel is None:
                parcel = self._create(waybill_no, now)
                self.parcels[waybill_no] = parcel
            else:
                self._advance(parcel, now)
            if protocol and courier_code:
                parcel.courier_codes[protocol] = courier_code
            return parcel

    def known(self, waybill_no: str) -> SimParcel | None:
        with self.lock:
            parcel = self.parcels.get(waybill_no)
            if parcel is not None:
                self._advance(parcel, self.clock.now())
            return parcel

    def _create(self, waybill_no: str, now: datetime) -> SimParcel:
        start = start_stage(waybill_no)
        number = _digest_number(waybill_no)
        origin = CITIES[number % len(CITIES)]
        destination = CITIES[(number // len(CITIES)) % len(CITIES)]
        if destination == origin:
            destination = CITIES[(CITIES.index(origin) + 1) % len(CITIES)]
        parcel = SimParcel(
            waybill_no=waybill_no,
            start=start,
            path=planned_path(start),
            rng=random.Random(f"{self.seed}:{waybill_no}"),
            origin=origin,
            destination=destination,
        )
        if not parcel.path:
            return parcel
        # The scan that put the parcel in its start stage happens now; the ones before are
        # backdated by how long each stage lasted.
        position = parcel.path.index(start)
        times = [now]
        for stage in reversed(parcel.path[:position]):
            times.insert(0, times[0] - parcel.dwell(stage))
        parcel.events = [
            parcel.event_for(stage, at) for stage, at in zip(parcel.path, times, strict=False)
        ]
        parcel.position = position
        parcel.next_at = (
            None if position == len(parcel.path) - 1 else now + self.clock.span(parcel.dwell(start))
        )
        return parcel

    def tick(self) -> None:
        """Move every parcel whose time has come (the clock thread calls this)."""
        with self.lock:
            now = self.clock.now()
            for parcel in self.parcels.values():
                self._advance(parcel, now)

    def _advance(self, parcel: SimParcel, now: datetime) -> None:
        if parcel.lost:
            return  # not even a pending intercept resolves: nobody finds the parcel
        while True:
            intercept = parcel.intercept
            pending = intercept is not None and intercept.status == "pending"
            intercept_due = intercept.due_at if pending else None
            # A parcel that will be caught waits for the instruction at its next node.
            move_due = None if pending and intercept.success else parcel.next_at
            intercept_first = move_due is None or (
                intercept_due is not None and intercept_due <= move_due
            )
            if intercept_due is not None and intercept_due <= now and intercept_first:
                self._resolve_intercept(parcel, intercept_due)
                continue
            if move_due is not None and move_due <= now:
                self._move(parcel, move_due)
                continue
            return

    def _move(self, parcel: SimParcel, at: datetime) -> None:
        parcel.position += 1
        stage = parcel.path[parcel.position]
        event = parcel.event_for(stage, at)
        parcel.events.append(event)
        last = parcel.position == len(parcel.path) - 1
        parcel.next_at = None if last else at + self.clock.span(parcel.dwell(stage))
        self._publish(parcel, event)

    def issue_waybills(self, account: str, waybill_nos: list[str]) -> None:
        """Record that these numbers were issued under a shipper's e-waybill account."""
        with self.lock:
            for waybill_no in waybill_nos:
                self.parcel(waybill_no).issued_to = account

    def mishap(self, waybill_no: str, kind: str) -> SimParcel:
        """Damage or lose a parcel on its way (``MISHAP_KINDS``), as of the clock's now.

        "damaged" adds an EXCEPTION scan reported in each protocol's damage code
        (``DAMAGE_SCAN_CODES``) and pushed like any scan; the parcel then goes on along its path
        on its schedule. "lost" stops the parcel: no scan, push or intercept result ever again.
        Raises ValueError for another kind, KeyError for a number the sandbox never saw, and
        MishapRefused for a parcel the courier does not hold (not picked up, finished, lost).
        """
        if kind not in MISHAP_KINDS:
            raise ValueError(f"unknown mishap {kind!r}; expected one of {MISHAP_KINDS}")
        with self.lock:
            parcel = self.known(waybill_no)
            if parcel is None:
                raise KeyError(waybill_no)
            if parcel.lost:
                raise MishapRefused("the parcel is lost already")
            if parcel.stage in (S.NO_INFO, S.LABEL_CREATED):
                raise MishapRefused("the courier has not picked the parcel up")
            if parcel.next_at is None:
                raise MishapRefused(f"the parcel's way has ended ({parcel.stage})")
            now = self.clock.now()
            parcel.mishaps.append(Mishap(kind=kind, at=now))
            if kind == MISHAP_LOST:
                parcel.next_at = None
                return parcel
            event = SimEvent(
                stage=S.EXCEPTION,
                at=now,
                description=DAMAGE_DESCRIPTION,
                location=parcel.events[-1].location,
                codes=dict(DAMAGE_SCAN_CODES),
            )
            # Into the path as the step just taken, so the next move is the one planned before.
            parcel.position += 1
            parcel.path.insert(parcel.position, S.EXCEPTION)
            parcel.events.append(event)
            self._publish(parcel, event)
            return parcel

    # Intercepts.

    def request_intercept(
        self,
        *,
        protocol: str,
        waybill_no: str,
        action: str,
        reference: str,
        courier_code: str = "",
        callback_url: str = "",
        salt: str = "",
        new_city: str = "",
        ewaybill_account: str = "",
        order_id: str = "",
    ) -> tuple[bool, str, str]:
        """(accepted, reason_code, message) for an intercept request, decided as §7.4 says.

        Like a real courier, only the shipper's e-waybill account that the waybill was issued
        under may intercept it. A number never issued through ``issue_waybills`` is taken as
        issued to the first account that asks for it.
        """
        with self.lock:
            parcel = self.parcel(waybill_no, protocol=protocol, courier_code=courier_code)
            if parcel.issued_to and parcel.issued_to != ewaybill_account:
                return False, FailureReason.NOT_ORDER_OWNER, NOT_OWNER_MESSAGE
            if not parcel.issued_to:
                parcel.issued_to = ewaybill_account
            if parcel.intercept is not None:
                return False, FailureReason.ALREADY_INTERCEPTED, DUPLICATE_MESSAGE
            refusal = REFUSALS.get(parcel.stage)
            if refusal is not None:
                return False, *refusal
            now = self.clock.now()
            hours = PROPAGATION_HOURS.get(protocol, 1.0) * parcel.rng.uniform(0.8, 1.2)
            parcel.intercept = SimIntercept(
                protocol=protocol,
                action=action,
                success=intercept_succeeds(
                    self.seed, waybill_no, parcel.stage, protocol, action, self.intercept_success
                ),
                requested_at=now,
                due_at=now + self.clock.span(timedelta(seconds=round(hours * 3600))),
                reference=reference,
                courier_code=courier_code,
                callback_url=callback_url,
                salt=salt,
                new_city=new_city,
                order_id=order_id,
            )
            return True, "", ""

    def cancel_intercept(self, *, waybill_no: str, reference: str = "") -> tuple[bool, str]:
        """(accepted, message): a pending intercept can be withdrawn (§7.4), nothing else."""
        with self.lock:
            parcel = self.known(waybill_no)
            intercept = parcel.intercept if parcel is not None else None
            if intercept is None or (reference and reference != intercept.reference):
                return False, "未找到对应的拦截记录"
            if intercept.status == "cancelled":
                return False, "拦截已撤销，请勿重复操作"
            if intercept.status == "succeeded":
                return False, "拦截已生效，无法撤销"
            if intercept.status == "failed":
                return False, "拦截已失败，无需撤销"
            intercept.status = "cancelled"
            now = self.clock.now()
            # A parcel held for the instruction moves on from now, not from the past.
            if parcel.next_at is not None and parcel.next_at < now:
                parcel.next_at = now
            return True, ""

    def _resolve_intercept(self, parcel: SimParcel, at: datetime) -> None:
        intercept = parcel.intercept
        if intercept.success:
            intercept.status = "succeeded"
            if intercept.action == InterceptAction.REDIRECT_NEW_ADDRESS:
                diversion = REDIRECT_DIVERSION
                parcel.destination = intercept.new_city or parcel.destination
            else:
                diversion = RETURN_DIVERSION
            parcel.path = parcel.path[: parcel.position + 1] + list(diversion)
            self._move(parcel, at)
        else:
            intercept.status = "failed"
            if parcel.stage == S.DELIVERED:
                intercept.reason = "快件已签收，拦截失败"
            elif parcel.stage == S.OUT_FOR_DELIVERY:
                intercept.reason = "快件已派送中，拦截失败"
            else:
                intercept.reason = "拦截指令未能在中转节点生效，拦截失败"
        self._publish_intercept(parcel, at)

    # Pushes.

    def subscribe(self, protocol: str, waybill_no: str, subscription: Subscription) -> bool:
        """Remember a subscription; False if this protocol already had one for the parcel."""
        with self.lock:
            parcel = self.parcel(
                waybill_no, protocol=protocol, courier_code=subscription.courier_code
            )
            if protocol in parcel.subscriptions:
                return False
            parcel.subscriptions[protocol] = subscription
            # Tell the subscriber what is known so far (the real kuaidi100 takes 15 min–4 h).
            if parcel.events:
                self._publish(parcel, parcel.events[-1], only=protocol)
            return True

    def _publish(self, parcel: SimParcel, event: SimEvent, only: str = "") -> None:
        subscription = parcel.subscriptions.get("kuaidi100")
        if (
            subscription
            and only in ("", "kuaidi100")
            and event_code(event, "kuaidi100") is not None
            and subscription.callback_url
        ):
            body = {
                "status": "shutdown" if parcel.finished else "polling",
                "billstatus": "check" if parcel.finished else "polling",
                "message": "",
                "autoCheck": "0",
                "comOld": "",
                "comNew": "",
                "lastResult": render_kuaidi100(
                    parcel, subscription.courier_code, subscription.level
                ),
            }
            param = compact_json(body)
            form = {"param": param, "sign": signing.kuaidi100_push_sign(param, subscription.salt)}
            self._submit("kuaidi100", "tracking", subscription.callback_url, form, parcel)
        url = self.push_urls.get("kdniao")
        subscription = parcel.subscriptions.get("kdniao")
        if url and subscription and only in ("", "kdniao"):
            form = kdniao_push_form(parcel, subscription, self.clock.now())
            self._submit("kdniao", "tracking", url, form, parcel)
        url = self.push_urls.get("sf")
        sf_interest = "sf" in parcel.subscriptions or (
            parcel.intercept is not None and parcel.intercept.protocol == "sf"
        )
        if url and sf_interest and only in ("", "sf") and event_code(event, "sf") is not None:
            route = sf_route(parcel, event, push=True)
            form = sf_push_form({"Body": {"WaybillRoute": [route]}}, self.clock.now())
            self._submit("sf", "tracking", url, form, parcel)

    def _publish_intercept(self, parcel: SimParcel, at: datetime) -> None:
        intercept = parcel.intercept
        if intercept.protocol == "kuaidi100" and intercept.callback_url:
            param = compact_json(
                {
                    "taskId": intercept.reference,
                    "orderId": intercept.order_id,
                    "kuaidicom": intercept.courier_code,
                    "kuaidinum": parcel.waybill_no,
                    "interceptType": KUAIDI100_TYPES_BY_ACTION.get(intercept.action, ""),
                    "status": "SUCCESS" if intercept.status == "succeeded" else "FAILED",
                    "reason": intercept.reason,
                    "time": format_local_time(at),
                }
            )
            form = {"param": param, "sign": signing.kuaidi100_push_sign(param, intercept.salt)}
            self._submit("kuaidi100", "intercept", intercept.callback_url, form, parcel)
        url = self.push_urls.get("sf")
        # SF tells a success by its 631/648 route; only a failure needs the notice.
        if intercept.protocol == "sf" and url and intercept.status == "failed":
            notice = {
                "waybillNo": parcel.waybill_no,
                "serviceCode": intercept.reference,
                "status": "FAILED",
                "reason": intercept.reason,
                "time": format_local_time(at),
            }
            form = sf_push_form({"Body": {"InterceptResult": [notice]}}, self.clock.now())
            self._submit("sf", "intercept", url, form, parcel)

    def _submit(
        self, protocol: str, kind: str, url: str, form: dict[str, str], parcel: SimParcel
    ) -> None:
        push = Push(protocol=protocol, kind=kind, url=url, form=form, waybill_no=parcel.waybill_no)
        self.dispatcher.submit(push)


KUAIDI100_TYPES_BY_ACTION = {
    InterceptAction.RETURN_TO_SENDER_ADDRESS: "RETURN_SEND_ADDR",
    InterceptAction.RETURN_TO_ORIGIN_STATION: "RETURN_SEND_STATION",
    InterceptAction.REDIRECT_NEW_ADDRESS: "MODIFY_ADDR",
}
KUAIDI100_ACTIONS_BY_TYPE = {value: key for key, value in KUAIDI100_TYPES_BY_ACTION.items()}
SF_ACTIONS_BY_SERVICE_CODE = {
    "2": InterceptAction.RETURN_TO_SENDER_ADDRESS,
    "1": InterceptAction.REDIRECT_NEW_ADDRESS,
}
# Kuaidi100 insists on a callback for these couriers' intercepts (§2.4).
KUAIDI100_CALLBACK_REQUIRED = frozenset({"zhongtong", "jtexpress", "yuantong"})


# Rendering the parcels in each protocol's words.


def kuaidi100_level(value) -> int:
    """The detail a ``resultv2`` asks for: 0 none, 1 basic state names (what Kuaidi100's own demos
    ask for), 4 advanced states and cities; 8 (with a predicted arrival) is answered as 4."""
    try:
        level = int(str(value or "0").strip())
    except ValueError:
        return 0
    return 4 if level >= 4 else max(level, 0)


def render_kuaidi100(parcel: SimParcel, courier_code: str, level: int = 4) -> dict:
    """The query answer / push ``lastResult`` of a parcel, data newest first, at the detail a
    ``resultv2`` level asks for (``kuaidi100_level``): ``state`` is the advanced code at 4 and
    the basic 0–14 one below; each item adds ``status`` (its state's name) from level 1 and
    ``statusCode`` with ``location`` at level 4."""
    data = []
    for event in reversed(parcel.events):
        code = event_code(event, "kuaidi100")
        if code is None:
            continue
        name, parent = KUAIDI100_ADVANCED[code]
        moment = format_local_time(event.at)
        item = {"time": moment, "ftime": moment, "context": event.description}
        if level >= 4:
            item.update(
                areaCode=None,
                areaName=event.location,
                status=name,
                statusCode=code,
                location=event.location,
            )
        elif level >= 1:
            item.update(
                areaCode=None, areaName=event.location, status=KUAIDI100_BASIC_NAMES[parent]
            )
        data.append((item, code, parent))
    terminal = parcel.finished
    state = "0"
    if data:
        state = data[0][1] if level >= 4 else data[0][2]
    answer = {
        "message": "ok",
        "nu": parcel.waybill_no,
        "ischeck": "1" if terminal else "0",
        "condition": "00",
        "com": courier_code,
        "status": "200",
        "state": state,
        "data": [item for item, _code, _parent in data],
    }
    if level >= 4:
        answer["routeInfo"] = {
            "from": {"number": "", "name": parcel.origin},
            "cur": {"number": "", "name": data[0][0]["location"] if data else ""},
            "to": {"number": "", "name": parcel.destination},
        }
        answer["isLoop"] = False
    return answer


def render_kdniao(
    parcel: SimParcel, courier_code: str, *, value_added: bool = True, order_code: str = ""
) -> dict:
    """A Kdniao track object (§1.4). Basic (1002 answers, 101 pushes): ``State`` and traces of
    ``AcceptTime, AcceptStation, Remark``. Value-added (8001 answers, 102 pushes): ``StateEx``,
    ``Location``, a per-trace ``Action`` and ``Location``, and the station and courier once the
    parcel has reached them."""
    traces = []
    for event in parcel.events:
        code = event_code(event, "kdniao")
        if code is None:
            continue
        trace = {
            "AcceptTime": format_local_time(event.at),
            "AcceptStation": event.description,
            "Remark": "",
        }
        if value_added:
            trace.update(Location=event.location, Action=code)
        traces.append(trace)
    state_ex = (event_code(parcel.events[-1], "kdniao") or "0") if traces else "0"
    track = {
        "EBusinessID": SANDBOX_ACCOUNTS["kdniao"]["ebusiness_id"],
        "OrderCode": order_code,
        "ShipperCode": courier_code,
        "LogisticCode": parcel.waybill_no,
        "Success": True,
        "Reason": "" if traces else "暂无轨迹信息",
        "State": KDNIAO_BASIC_STATES.get(state_ex, "0"),
        "Traces": traces,
    }
    if value_added:
        track.update(StateEx=state_ex, Location=traces[-1]["Location"] if traces else "")
        reached = {event.stage for event in parcel.events}
        if reached & _AT_STATION:
            station = f"{parcel.destination}中心营业部"
            track.update(Station=station, StationTel="95000", StationAdd=station)
        if S.OUT_FOR_DELIVERY in reached:
            track.update(DeliveryMan="王师傅", DeliveryManTel="13800000000")
    return track


# Stages at or past the delivery station, whose station a value-added track names.
_AT_STATION = frozenset(
    {
        S.AT_DELIVERY_STATION,
        S.OUT_FOR_DELIVERY,
        S.AWAITING_COLLECTION,
        S.DELIVERY_FAILED,
        S.DELIVERED,
    }
)
KDNIAO_PUSH_TYPES = {"1008": "101", "8008": "102"}


def kdniao_push_form(
    parcel: SimParcel, subscription: Subscription, now: datetime
) -> dict[str, str]:
    """A Kdniao push (§1.6): RequestType 101 with basic tracks for a 1008 subscription, 102 with
    value-added ones for 8008; ``Count`` a string, as Kdniao's documents write it."""
    value_added = subscription.request_type == "8008"
    request_data = compact_json(
        {
            "EBusinessID": SANDBOX_ACCOUNTS["kdniao"]["ebusiness_id"],
            "PushTime": format_local_time(now),
            "Count": "1",
            "Data": [
                render_kdniao(
                    parcel,
                    subscription.courier_code,
                    value_added=value_added,
                    order_code=subscription.order_code,
                )
            ],
        }
    )
    app_key = SANDBOX_ACCOUNTS["kdniao"]["app_key"]
    return {
        "RequestData": request_data,
        "DataSign": signing.kdniao_data_sign(request_data, app_key),
        "RequestType": KDNIAO_PUSH_TYPES.get(subscription.request_type, "101"),
    }


def sf_route(parcel: SimParcel, event: SimEvent, *, push: bool = False) -> dict:
    route = {
        "acceptTime": format_local_time(event.at),
        "acceptAddress": event.location,
        "remark": event.description,
        "opCode": event_code(event, "sf"),
    }
    if push:
        route = {
            "id": uuid.uuid4().hex,
            "mailno": parcel.waybill_no,
            "orderid": "",
            **route,
            "reasonCode": "",
            "reasonName": "",
        }
    return route


def sf_push_form(content: dict, now: datetime) -> dict[str, str]:
    """A push to the SF push URL, signed the documented way and dated by the sandbox's clock.
    The envelope is the sandbox's own (README, "What the sandbox assumes")."""
    text = compact_json(content)
    timestamp = str(int(now.timestamp() * 1000))
    check_word = SANDBOX_ACCOUNTS["sf"]["check_word"]
    return {
        "content": text,
        "timestamp": timestamp,
        "msgDigest": signing.sf_msg_digest(text, timestamp, check_word),
        "partnerID": SANDBOX_ACCOUNTS["sf"]["partner_id"],
    }


# The gateways. Each takes the decoded form and returns (HTTP status, JSON-able answer).


class Gateways:
    def __init__(self, world: SandboxWorld):
        self.world = world

    def _millis(self) -> int:
        return int(self.world.clock.now().timestamp() * 1000)

    def _label_answer(self, code: int, message: str, data=None) -> dict:
        """Kuaidi100's label/order envelope (§2.4), ``time`` in ms on the sandbox's clock."""
        return {"code": code, "message": message, "data": data, "time": self._millis()}

    # kuaidi100

    def kuaidi100_query(self, form: dict[str, str]) -> dict:
        account = SANDBOX_ACCOUNTS["kuaidi100"]
        customer, param, sign = form.get("customer"), form.get("param"), form.get("sign")
        if not customer or not param or not sign:
            return {"result": False, "returnCode": "400", "message": "提交的数据不完整"}
        valid = signing.kuaidi100_verify_query(param, account["key"], account["customer"], sign)
        if customer != account["customer"] or not valid:
            return {"result": False, "returnCode": "503", "message": "验证签名失败"}
        fields = _json_object(param)
        if fields is None or not fields.get("num") or not fields.get("com"):
            return {"result": False, "returnCode": "400", "message": "提交的数据不完整"}
        com = str(fields["com"])
        parcel = self.world.parcel(str(fields["num"]), protocol="kuaidi100", courier_code=com)
        with self.world.lock:
            answer = render_kuaidi100(parcel, com, kuaidi100_level(fields.get("resultv2")))
        if not answer["data"]:
            return {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
        return answer

    def kuaidi100_subscribe(self, form: dict[str, str]) -> dict:
        fields = _json_object(form.get("param", ""))
        if form.get("schema") != "json" or fields is None:
            return {"result": False, "returnCode": "700", "message": "提交的数据格式错误"}
        if fields.get("key") != SANDBOX_ACCOUNTS["kuaidi100"]["key"]:
            return {"result": False, "returnCode": "600", "message": "您不是合法的订阅者"}
        parameters = fields.get("parameters") or {}
        callback_url = str(parameters.get("callbackurl") or "")
        if not fields.get("company") or not fields.get("number") or not callback_url:
            return {"result": False, "returnCode": "700", "message": "缺少必要参数或回调地址"}
        subscription = Subscription(
            protocol="kuaidi100",
            callback_url=callback_url,
            salt=str(parameters.get("salt") or ""),
            courier_code=str(fields["company"]),
            level=kuaidi100_level(parameters.get("resultv2")),
        )
        if not self.world.subscribe("kuaidi100", str(fields["number"]), subscription):
            return {"result": False, "returnCode": "501", "message": "重复订阅"}
        return {"result": True, "returnCode": "200", "message": "提交成功"}

    def kuaidi100_label(self, form: dict[str, str]) -> dict:
        account = SANDBOX_ACCOUNTS["kuaidi100"]
        method, key, t = form.get("method"), form.get("key"), form.get("t")
        param, sign = form.get("param"), form.get("sign")
        if not method or not key or not t or not param or not sign:
            return self._label_answer(103, "缺少必填参数")
        if key != account["key"]:
            return self._label_answer(402, "用户不存在")
        if not signing.kuaidi100_verify_label(param, t, account["key"], account["secret"], sign):
            return self._label_answer(102, "签名验证失败")
        fields = _json_object(param)
        if fields is None:
            return self._label_answer(104, "param格式错误")
        if method == "interceptOrder":
            return self._kuaidi100_intercept(fields)
        if method == "cancelInterceptOrder":
            accepted, message = self.world.cancel_intercept(
                waybill_no=str(fields.get("kuaidinum") or ""),
                reference=str(fields.get("taskId") or ""),
            )
            return (
                self._label_answer(200, "success") if accepted else self._label_answer(400, message)
            )
        return self._label_answer(104, f"不支持的method: {method}")

    def _kuaidi100_intercept(self, fields: dict) -> dict:
        com, number = str(fields.get("kuaidicom") or ""), str(fields.get("kuaidinum") or "")
        action = KUAIDI100_ACTIONS_BY_TYPE.get(str(fields.get("interceptType") or ""))
        callback_url = str(fields.get("callbackUrl") or "")
        if not com or not number:
            return self._label_answer(103, "缺少必填参数kuaidicom或kuaidinum")
        if action is None:
            return self._label_answer(104, "interceptType参数错误")
        if com in KUAIDI100_CALLBACK_REQUIRED and not callback_url:
            return self._label_answer(103, "该快递公司拦截必须填写callbackUrl")
        new_city = ""
        if action == InterceptAction.REDIRECT_NEW_ADDRESS:
            receiver = fields.get("recManInfo") or {}
            if not isinstance(receiver, dict) or not all(
                receiver.get(key) for key in ("name", "mobile", "printAddr")
            ):
                return self._label_answer(103, "修改地址必须填写recManInfo")
            new_city = _city_in(str(receiver["printAddr"]))
        task_id = "T" + uuid.uuid4().hex[:16].upper()
        # The shipper's own order number, in either casing clients write it; told back in the
        # result callback.
        order_id = str(fields.get("orderId") or fields.get("orderid") or "")
        accepted, _reason_code, message = self.world.request_intercept(
            protocol="kuaidi100",
            waybill_no=number,
            action=action,
            reference=task_id,
            courier_code=com,
            callback_url=callback_url,
            salt=str(fields.get("salt") or ""),
            new_city=new_city,
            ewaybill_account=str(fields.get("partnerId") or ""),
            order_id=order_id,
        )
        if not accepted:
            return self._label_answer(400, message)
        data = {"taskId": task_id}
        if order_id:
            data["orderId"] = order_id
        return self._label_answer(200, "success", data)

    # SF

    def sf_service(self, form: dict[str, str]) -> dict:
        account = SANDBOX_ACCOUNTS["sf"]
        needed = ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")
        if not all(form.get(name) for name in needed):
            return _sf_answer("A1001", "必传参数不可为空")
        if form["partnerID"] != account["partner_id"]:
            return _sf_answer("A1006", "数字签名无效")
        try:
            stamp = int(form["timestamp"])
        except ValueError:
            return _sf_answer("A1001", "timestamp格式错误")
        # Both seconds (SF's own demo) and milliseconds (most clients) are in use (§3.1).
        seconds = stamp / 1000 if stamp > 10**11 else stamp
        # The caller's clock against the real time, not the simulated one: clients sign with
        # theirs, and the sandbox's runs fast.
        if abs(time.time() - seconds) > 600:
            return _sf_answer("A1002", "请求时效已过期")
        # SF's Java documentation and its Python demo encode "*" and "~" differently (§3.1): the
        # sandbox takes both, and its request log tells which one a request used.
        if sf_signing_rule(form) is None:
            return _sf_answer("A1006", "数字签名无效")
        msg_data = _json_object(form["msgData"])
        if msg_data is None:
            return _sf_answer("A1001", "msgData格式错误")
        service = {
            "EXP_RECE_SEARCH_ROUTES": self._sf_routes,
            "EXP_RECE_REGISTER_ROUTE": self._sf_register,
            "EXP_RECE_WANTED_INTERCEPT": self._sf_intercept,
        }.get(form["serviceCode"])
        if service is None:
            return _sf_answer("A1004", "无对应服务权限")
        return _sf_answer("A1000", "", service(msg_data))

    def _sf_routes(self, msg_data: dict) -> dict:
        numbers = msg_data.get("trackingNumber") or []
        if isinstance(numbers, str):
            numbers = [number for number in numbers.split(",") if number]
        if not numbers:
            return _sf_result(False, "8013", "运单号不能为空")
        if len(numbers) > 10:
            return _sf_result(False, "8014", "单次查询运单号不能超过10个")
        responses = []
        for number in numbers:
            parcel = self.world.parcel(str(number))
            with self.world.lock:
                routes = [sf_route(parcel, e) for e in parcel.events if event_code(e, "sf")]
            responses.append({"mailNo": str(number), "routes": routes})
        return _sf_result(True, "S0000", None, {"routeResps": responses})

    def _sf_register(self, msg_data: dict) -> dict:
        number = str(msg_data.get("attributeNo") or "")
        if not number:
            return _sf_result(False, "8013", "运单号不能为空")
        self.world.subscribe("sf", number, Subscription(protocol="sf"))
        return _sf_result(True, "S0000", None, None)

    def _sf_intercept(self, msg_data: dict) -> dict:
        number = str(msg_data.get("waybillNo") or "")
        service_code = str(msg_data.get("serviceCode") or "")
        if not number:
            return _sf_result(False, "8013", "运单号不能为空")
        if msg_data.get("cancel") is True:
            if service_code not in SF_ACTIONS_BY_SERVICE_CODE:
                return _sf_result(False, "20002", "仅转寄和退回可以撤销")
            accepted, message = self.world.cancel_intercept(waybill_no=number)
            if not accepted:
                return _sf_result(False, "20011", message)
            return _sf_result(True, "S0000", None, None)
        action = SF_ACTIONS_BY_SERVICE_CODE.get(service_code)
        if action is None:
            return _sf_result(False, "20002", "不支持的服务类型")
        address = msg_data.get("newDestAddress") or {}
        if action == InterceptAction.REDIRECT_NEW_ADDRESS and not (
            isinstance(address, dict) and address.get("city") and address.get("address")
        ):
            return _sf_result(False, "20003", "转寄地址不能为空")
        accepted, reason_code, message = self.world.request_intercept(
            protocol="sf",
            waybill_no=number,
            action=action,
            reference=service_code,
            new_city=str(address.get("city") or "") if isinstance(address, dict) else "",
            ewaybill_account=str(msg_data.get("monthlyCardNo") or ""),
        )
        if reason_code == FailureReason.NOT_ORDER_OWNER:
            return _sf_result(False, SF_NOT_OWNER_CODE, message)
        if not accepted:
            return _sf_result(False, "20010", message)
        return _sf_result(True, "S0000", None, None)

    # Kdniao

    def kdniao(self, form: dict[str, str]) -> dict:
        account = SANDBOX_ACCOUNTS["kdniao"]
        business_id = form.get("EBusinessID", "")
        request_type = form.get("RequestType", "")
        request_data, data_sign = form.get("RequestData"), form.get("DataSign")
        if not business_id or not request_type or not request_data or not data_sign:
            return _kdniao_failure(business_id, "101", "缺少必要参数")
        if business_id != account["ebusiness_id"]:
            return _kdniao_failure(business_id, "104", "用户问题：EBusinessID不存在")
        if not signing.kdniao_verify(request_data, account["app_key"], data_sign):
            return _kdniao_failure(business_id, "102", "校验问题：DataSign验证失败")
        fields = _kdniao_object(request_data)
        if fields is None:
            return _kdniao_failure(business_id, "401", "RequestData格式有误")
        number = str(fields.get("LogisticCode") or "")
        shipper = str(fields.get("ShipperCode") or "")
        order_code = str(fields.get("OrderCode") or "")
        if request_type in ("1002", "8001", "1008", "8008") and not number:
            return _kdniao_failure(business_id, "402", "缺少快递单号")
        if request_type in ("1002", "8001"):
            parcel = self.world.parcel(number, protocol="kdniao", courier_code=shipper)
            with self.world.lock:
                return render_kdniao(
                    parcel, shipper, value_added=request_type == "8001", order_code=order_code
                )
        if request_type in ("1008", "8008"):
            subscription = Subscription(
                protocol="kdniao",
                courier_code=shipper,
                request_type=request_type,
                order_code=order_code,
            )
            self.world.subscribe("kdniao", number, subscription)
            return {
                "EBusinessID": business_id,
                "UpdateTime": format_local_time(self.world.clock.now()),
                "Success": True,
                "Reason": "",
                "EstimatedDeliveryTime": "",
            }
        return _kdniao_failure(business_id, "103", f"不支持的RequestType: {request_type}")

    # Rate-limit answers, in each gateway's words.

    def rate_limited(self, path: str, form: dict[str, str]) -> dict:
        if path.startswith("/kuaidi100/label"):
            return self._label_answer(500, "请求太频繁，请稍后再试")
        if path.startswith("/kuaidi100"):
            return {"result": False, "returnCode": "502", "message": "查询太频繁，请稍后再试"}
        if path.startswith("/sf"):
            return _sf_answer("A1005", "流量受控")
        return _kdniao_failure(form.get("EBusinessID", ""), "405", "超出查询次数限制")


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _city_in(address: str) -> str:
    """The first known city named in an address, for the redirected parcel's new scans."""
    for city in CITIES:
        if city in address:
            return city
    return address[:6]


def _kdniao_object(text: str) -> dict | None:
    """RequestData as Kdniao's .NET gateway reads it: JSON, or the single-quoted form of
    Kdniao's own Java demo and documentation example (JSON5 takes both)."""
    try:
        value, _lenient = parse_json_or_json5(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _sf_rules_agree(form: dict[str, str]) -> bool:
    text = form.get("msgData", ""), form.get("timestamp", ""), SANDBOX_ACCOUNTS["sf"]["check_word"]
    return signing.sf_msg_digest(*text) == signing.sf_msg_digest(
        *text, rule=signing.SF_PYTHON_DEMO_RULE
    )


def sf_signing_rule(form: dict[str, str]) -> str | None:
    """Which of SF's two published rules signed a request to the sandbox, None if neither."""
    return signing.sf_digest_rule(
        form.get("msgData", ""),
        form.get("timestamp", ""),
        SANDBOX_ACCOUNTS["sf"]["check_word"],
        form.get("msgDigest", ""),
    )


def _sf_answer(code: str, message: str, result: dict | None = None) -> dict:
    return {
        "apiResultCode": code,
        "apiErrorMsg": message,
        "apiResponseID": uuid.uuid4().hex,
        "apiResultData": compact_json(result) if result is not None else None,
    }


def _sf_result(success: bool, error_code: str, error_msg, msg_data=None) -> dict:
    return {
        "success": success,
        "errorCode": error_code,
        "errorMsg": error_msg,
        "msgData": msg_data,
    }


def _kdniao_failure(business_id: str, code: str, reason: str) -> dict:
    return {"EBusinessID": business_id, "Success": False, "ResultCode": code, "Reason": reason}


# HTTP.


class _Handler(BaseHTTPRequestHandler):
    server_version = "SandboxCourier/1.0"
    # A client that connects and never sends must not hold a thread past shutdown for long.
    timeout = 5

    @property
    def sandbox(self) -> "SandboxServer":
        return self.server.sandbox

    def log_message(self, format, *args):
        logger.debug("%s %s", self.address_string(), format % args)

    def finish(self):
        # After a simulated reset the socket is gone; flushing it must not raise.
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/sandbox/parcels/"):
            number = unquote(path.removeprefix("/sandbox/parcels/"))
            parcel = self.sandbox.world.known(number)
            if parcel is None:
                self._send_json(404, {"error": "unknown waybill", "waybill_no": number})
                return
            with self.sandbox.world.lock:
                truth = parcel.truth()
            self._send_json(200, truth)
        elif path == "/sandbox/requests":
            self._send_json(200, list(self.sandbox.requests))
        elif path == "/sandbox/pushes":
            self._send_json(200, list(self.sandbox.dispatcher.log))
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        if path == "/sandbox/push-urls":
            urls = _json_object(body) or {}
            for protocol, url in urls.items():
                self.sandbox.set_push_url(protocol, str(url))
            self._send_json(200, dict(self.sandbox.world.push_urls))
            return
        if path == "/sandbox/waybills":
            fields = _json_object(body) or {}
            account, numbers = fields.get("account"), fields.get("waybills")
            if not isinstance(account, str) or not account or not isinstance(numbers, list):
                self._send_json(400, {"error": 'expected {"account": str, "waybills": [str]}'})
                return
            self.sandbox.world.issue_waybills(account, [str(number) for number in numbers])
            self._send_json(200, {"issued": len(numbers)})
            return
        if path.startswith("/sandbox/parcels/") and path.endswith("/mishap"):
            number = unquote(path.removeprefix("/sandbox/parcels/").removesuffix("/mishap"))
            self._mishap(number, _json_object(body) or {})
            return
        route = self._gateway(path)
        if route is None:
            self._send_json(404, {"error": "not found"})
            return
        protocol, operation = route
        form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
        self.sandbox.record_request(protocol, operation, form, path)
        try:
            faults = self.sandbox.faults.merged_with(self.headers.get("X-Sandbox-Fault", ""))
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        if faults.latency_ms and self.sandbox.stopping.wait(faults.latency_ms / 1000):
            return
        if self.sandbox.roll(faults.timeout_rate):
            # Hang past the client's patience, but let a shutdown end the wait.
            self.sandbox.stopping.wait(faults.hang_s)
            self.close_connection = True
            return
        if self.sandbox.roll(faults.reset_rate):
            self._reset()
            return
        if self.sandbox.roll(faults.error_rate):
            self._send(500, b"Internal Server Error", "text/plain")
            return
        if self.sandbox.roll(faults.ratelimit_rate):
            self._send_json(200, self.sandbox.gateways.rate_limited(path, form))
            return
        answer = getattr(self.sandbox.gateways, operation)(form)
        if self.sandbox.roll(faults.lose_rate):
            # Done, but the answer never leaves: the caller sees a timeout.
            self.sandbox.stopping.wait(faults.hang_s)
            self.close_connection = True
            return
        payload = compact_json(answer).encode()
        if self.sandbox.roll(faults.malformed_rate):
            payload = payload[: len(payload) // 2]
        self._send(200, payload, "application/json;charset=UTF-8")

    def _mishap(self, number: str, fields: dict) -> None:
        kind = fields.get("kind")
        if kind not in MISHAP_KINDS:
            expected = " or ".join(f'{{"kind": "{name}"}}' for name in MISHAP_KINDS)
            self._send_json(400, {"error": f"expected {expected}"})
            return
        world = self.sandbox.world
        try:
            parcel = world.mishap(number, kind)
        except KeyError:
            self._send_json(404, {"error": "unknown waybill", "waybill_no": number})
            return
        except MishapRefused as exc:
            self._send_json(409, {"error": str(exc), "waybill_no": number})
            return
        with world.lock:
            truth = parcel.truth()
        self._send_json(200, truth)

    @staticmethod
    def _gateway(path: str) -> tuple[str, str] | None:
        return {
            "/kuaidi100/poll/query.do": ("kuaidi100", "kuaidi100_query"),
            "/kuaidi100/poll": ("kuaidi100", "kuaidi100_subscribe"),
            "/kuaidi100/label/order": ("kuaidi100", "kuaidi100_label"),
            "/sf/std/service": ("sf", "sf_service"),
            GATEWAY_PATHS["kdniao"]: ("kdniao", "kdniao"),
            # Kdniao's documented subscription endpoint, served by the same gateway here.
            KDNIAO_SUBSCRIBE_PATH: ("kdniao", "kdniao"),
        }.get(path)

    def _reset(self) -> None:
        # Linger with a zero timeout makes the close send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _send_json(self, status: int, value) -> None:
        self._send(status, compact_json(value).encode(), "application/json;charset=UTF-8")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            # The client gave up (its timeout); nothing to answer to.
            self.close_connection = True


class _HttpServer(ThreadingHTTPServer):
    # Handler threads are joined on close, so stop() returns with nothing left running.
    daemon_threads = False
    block_on_close = True
    sandbox: "SandboxServer"


class SandboxServer:
    """The sandbox courier on 127.0.0.1: ``start()`` returns its root URL, ``stop()`` ends it.

    ``speed`` is simulated seconds per real second (3600: one simulated hour per second); with
    ``paced`` the clock is the wall clock and the waits are ``speed`` times shorter instead
    (``PacedClock``), so no scan is dated in the future. ``intercept_success`` overrides every
    eligible stage's success probability when set.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 3600.0,
        seed: int = 42,
        faults: FaultOptions | None = None,
        intercept_success: float | None = None,
        push_urls: dict[str, str] | None = None,
        tick_s: float = 0.02,
        max_pending_pushes: int = 1000,
        paced: bool = False,
    ):
        self.host = host
        self.port = port
        self.seed = seed
        self.faults = faults or FaultOptions()
        self.tick_s = tick_s
        self.clock = PacedClock(speed) if paced else SimClock(speed)
        self.dispatcher = PushDispatcher(clock=self.clock, max_pending=max_pending_pushes)
        self.world = SandboxWorld(
            clock=self.clock,
            seed=seed,
            dispatcher=self.dispatcher,
            intercept_success=intercept_success,
            push_urls=push_urls,
        )
        self.gateways = Gateways(self.world)
        self.requests: deque[dict] = deque(maxlen=1000)
        self.stopping = threading.Event()
        self._fault_rng = random.Random(seed)
        self._fault_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self.url = ""

    def start(self) -> str:
        if self._httpd is not None:
            raise RuntimeError("the sandbox is already running")
        self._httpd = _HttpServer((self.host, self.port), _Handler)
        self._httpd.sandbox = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self.dispatcher.start()
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="sandbox-http",
                daemon=True,
            ),
            threading.Thread(target=self._run_clock, name="sandbox-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.dispatcher.stop()
        self._httpd = None

    def __enter__(self) -> "SandboxServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run_clock(self) -> None:
        while not self.stopping.wait(self.tick_s):
            try:
                self.world.tick()
            except Exception:
                # A bug in one tick must not stop the clock for the rest of the run.
                logger.exception("sandbox clock tick failed")

    # What tests and the command use.

    def gateway_url(self, protocol: str) -> str:
        return self.url + GATEWAY_PATHS[protocol]

    def account(self, protocol: str, **overrides) -> AccountConfig:
        return sandbox_account(protocol, self.url, **overrides)

    def set_push_url(self, protocol: str, url: str) -> None:
        """Register the SF or Kdniao push URL, as one would in their portals."""
        if protocol not in ("sf", "kdniao"):
            raise ValueError(f"{protocol} push URLs are named per request, not registered")
        with self.world.lock:
            self.world.push_urls[protocol] = url

    def truth(self, waybill_no: str) -> dict | None:
        parcel = self.world.known(waybill_no)
        if parcel is None:
            return None
        with self.world.lock:
            return parcel.truth()

    def roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._fault_lock:
            return self._fault_rng.random() < probability

    def record_request(
        self, protocol: str, operation: str, form: dict[str, str], path: str = ""
    ) -> None:
        entry = {
            "protocol": protocol,
            "operation": operation,
            "path": path,
            "service": form.get("serviceCode") or form.get("RequestType") or "",
            "method": form.get("method", ""),
            "waybills": _waybills_named(form),
        }
        if protocol == "sf":
            # "java" (SF's documentation), "python-demo" (its Python demo), "either" when the
            # two agree on this text (no "*" or "~" in it), or "" if neither made the digest.
            entry["sign_rule"] = sf_signing_rule(form) or ""
            if entry["sign_rule"] and _sf_rules_agree(form):
                entry["sign_rule"] = "either"
        elif protocol == "kdniao":
            request_data = form.get("RequestData", "")
            strict = _json_object(request_data) is not None
            entry["request_data"] = (
                "json" if strict else ("json5" if _kdniao_object(request_data) else "")
            )
        self.requests.append(entry)


def _waybills_named(form: dict[str, str]) -> list[str]:
    """The waybill numbers a gateway request names, for the request log."""
    for field_name in ("param", "msgData", "RequestData"):
        fields = _kdniao_object(form.get(field_name, ""))
        if fields is None:
            continue
        for key in ("num", "number", "kuaidinum", "waybillNo", "attributeNo", "LogisticCode"):
            if fields.get(key):
                return [str(fields[key])]
        numbers = fields.get("trackingNumber")
        if isinstance(numbers, list):
            return [str(number) for number in numbers]
        if isinstance(numbers, str):
            return [number for number in numbers.split(",") if number]
    return []
