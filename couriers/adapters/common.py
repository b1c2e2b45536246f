"""What the protocol adapters share: the HTTP client and its failure mapping, local times,
the unified intercept vocabulary (reference sheet §7.2) and compact JSON.

The adapters sign the exact text they send, so every JSON payload is serialised once, here, in
one compact form, and that string is both signed and put on the wire.
"""

import functools
import json
import logging
import ssl
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import certifi
import httpx
import json5

from couriers.adapters.base import (
    Adapter,
    AuthenticationError,
    CourierError,
    RateLimitedError,
    RefusedError,
    TransientError,
)

logger = logging.getLogger("couriers.variants")

# Every protocol here writes times as "yyyy-MM-dd HH:mm:ss" in China's local time, without a zone.
SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class InterceptAction(StrEnum):
    """What an intercept asks for (§7.2 ``InterceptAction``)."""

    RETURN_TO_SENDER_ADDRESS = "RETURN_TO_SENDER_ADDRESS"
    RETURN_TO_ORIGIN_STATION = "RETURN_TO_ORIGIN_STATION"
    REDIRECT_NEW_ADDRESS = "REDIRECT_NEW_ADDRESS"


class InterceptUpdate(StrEnum):
    """The statuses a pushed intercept result can report (a subset of §7.2 ``InterceptStatus``)."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class FailureReason(StrEnum):
    """§7.2 ``InterceptFailureReason``, plus two codes of ours for requests that are not intercepts
    of a parcel at all (a malformed request, a withdrawal the gateway will not take)."""

    ALREADY_DELIVERED = "ALREADY_DELIVERED"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    IN_LOCKER_OR_STATION = "IN_LOCKER_OR_STATION"
    NOT_PICKED_UP = "NOT_PICKED_UP"
    ALREADY_INTERCEPTED = "ALREADY_INTERCEPTED"
    ALREADY_RETURNING = "ALREADY_RETURNING"
    NOT_ORDER_OWNER = "NOT_ORDER_OWNER"
    ACCOUNT_OR_AUTH_ERROR = "ACCOUNT_OR_AUTH_ERROR"
    CARRIER_NOT_SUPPORTED = "CARRIER_NOT_SUPPORTED"
    SERVICE_NOT_ELIGIBLE = "SERVICE_NOT_ELIGIBLE"
    ADDRESS_INVALID_OR_OUT_OF_AREA = "ADDRESS_INVALID_OR_OUT_OF_AREA"
    MISSED_AT_NODE = "MISSED_AT_NODE"
    PARCEL_EXCEPTION = "PARCEL_EXCEPTION"
    CARRIER_SYSTEM_ERROR = "CARRIER_SYSTEM_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    INVALID_REQUEST = "INVALID_REQUEST"  # ours: the gateway says the request itself is malformed
    CANNOT_CANCEL = "CANNOT_CANCEL"  # ours: a withdrawal refused (already done, nothing to undo)


# The gateways refuse intercepts with Chinese messages and codes that are not published (§2.4,
# §3.1 mark them [UNK]), so the reason is read from the message. Order matters: a message that
# says "already intercepted" often also names the stage, and the duplicate is the real reason.
_REASON_KEYWORDS: tuple[tuple[tuple[str, ...], FailureReason], ...] = (
    (("重复", "已拦截", "已提交过拦截", "已申请拦截"), FailureReason.ALREADY_INTERCEPTED),
    (("已签收", "已妥投"), FailureReason.ALREADY_DELIVERED),
    (("派送中", "派件中"), FailureReason.OUT_FOR_DELIVERY),
    (("未揽收", "未收件", "未发出"), FailureReason.NOT_PICKED_UP),
    (("退回中", "已退回", "退件"), FailureReason.ALREADY_RETURNING),
    (("快递柜", "驿站"), FailureReason.IN_LOCKER_OR_STATION),
    (("超区", "地址"), FailureReason.ADDRESS_INVALID_OR_OUT_OF_AREA),
    (("非本账号", "无权"), FailureReason.NOT_ORDER_OWNER),
)


def reason_from_message(
    message: str, default: FailureReason = FailureReason.SERVICE_NOT_ELIGIBLE
) -> FailureReason:
    """The §7.2 failure reason a gateway's Chinese refusal message names, else ``default``: by
    default SERVICE_NOT_ELIGIBLE, since the refusal is real and only its reason is unclear."""
    for keywords, reason in _REASON_KEYWORDS:
        if any(keyword in message for keyword in keywords):
            return reason
    return default


def compact_json(value) -> str:
    """The one JSON form we sign and send: no spaces, Chinese kept as UTF-8 (not \\u escapes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_local_time(text: str) -> datetime:
    """An aware datetime from a protocol's "yyyy-MM-dd HH:mm:ss" China local time."""
    text = text.strip()
    # fromisoformat is many times faster than strptime (a poll parses thousands of these), but
    # takes more shapes than the protocols' one; anything else goes through strptime's check.
    if len(text) == 19 and text[4] == "-" and text[10] == " " and text.isascii():
        try:
            return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)
        except ValueError:
            pass
    return datetime.strptime(text, LOCAL_TIME_FORMAT).replace(tzinfo=SHANGHAI)


def format_local_time(moment: datetime) -> str:
    """The protocols' "yyyy-MM-dd HH:mm:ss" China local time of an aware datetime."""
    return moment.astimezone(SHANGHAI).strftime(LOCAL_TIME_FORMAT)


def load_json(text: str, what: str):
    """Parse a gateway's JSON answer; a body that is not JSON is a transient failure (a proxy's
    error page, a cut connection), worth a retry rather than a crash."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TransientError(f"{what}: the answer is not JSON: {text[:200]!r}") from exc


def parse_json_or_json5(text: str) -> tuple[object, bool]:
    """(value, lenient): JSON, or failing that JSON5, as Kdniao's .NET gateway reads its own
    examples' single-quoted RequestData (``{'ShipperCode':'SF'}``). ValueError for neither."""
    try:
        return json.loads(text), False
    except (TypeError, ValueError):
        pass
    return json5.loads(text), True


def load_lenient_json(text: str, what: str, *, protocol: str):
    """``parse_json_or_json5`` for what a gateway sends us: a body that is neither is a
    transient failure, as with ``load_json``; the lenient form is noted when it was needed."""
    try:
        value, lenient = parse_json_or_json5(text)
    except ValueError as exc:
        raise TransientError(f"{what}: the answer is not JSON: {text[:200]!r}") from exc
    if lenient:
        notice_variant(protocol, f"{what} written as JSON5 (single quotes), not JSON")
    return value


@functools.cache
def notice_variant(protocol: str, detail: str) -> None:
    """Log, once per process, a shape a gateway sent that its documents do not give (a number
    where they say a string, another casing of a field): so a first real account tells us which
    one the gateway really uses, without a log line per message."""
    logger.warning("%s sent a variant of its documented shape: %s", protocol, detail)


def pick(fields: dict, *names: str, protocol: str, what: str, default=None):
    """The value of the first of ``names`` present in ``fields``: the documented name first, then
    variants seen in other clients (another casing); a variant in use is noticed."""
    for index, name in enumerate(names):
        if name in fields:
            if index:
                notice_variant(protocol, f"{what}: field {name!r} instead of {names[0]!r}")
            return fields[name]
    return default


def new_address_fields(new_address: dict | None) -> dict:
    """The generic new-address dict the adapters take: keys ``name``, ``phone``, ``province``,
    ``city``, ``district``, ``address``; missing keys read as empty strings."""
    keys = ("name", "phone", "province", "city", "district", "address")
    return {key: str((new_address or {}).get(key, "")) for key in keys}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the certificate bundle costs tens of milliseconds,
    too much to pay for every task or push."""
    return ssl.create_default_context(cafile=certifi.where())


class HttpAdapter(Adapter):
    """An adapter that speaks form-encoded HTTP POST, with one client per adapter.

    ``client`` is public so that a caller can add headers for every request (the sandbox's
    ``X-Sandbox-Fault``, a tracing id). Close the adapter, or use it as a context manager, to
    release the connection pool.
    """

    @functools.cached_property
    def client(self) -> httpx.Client:
        # Made on first use: verifying a push needs no HTTP client at all.
        return httpx.Client(timeout=self.account.timeout_s, verify=_tls_context())

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def post_form(self, url: str, data: dict[str, str]) -> str:
        """POST a form and return the body text of a 2xx answer, mapping transport failures.

        The body is encoded here and the URL parsed once per adapter: httpx's own form encoder
        and URL parser cost more than the rest of building the request (a poll sends thousands).
        """
        try:
            response = self.client.post(
                _parsed_url(url), content=urlencode(data).encode(), headers=_FORM_HEADERS
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{self.protocol}: timed out after {self.account.timeout_s}s"
            ) from exc
        except httpx.TransportError as exc:
            # Refused or reset connections, a peer that hung up mid-answer: all worth a retry.
            raise TransientError(f"{self.protocol}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429:
            raise RateLimitedError(f"{self.protocol}: HTTP 429")
        if status >= 500:
            raise TransientError(f"{self.protocol}: HTTP {status}")
        if status in (401, 403):
            raise AuthenticationError(f"{self.protocol}: HTTP {status}")
        if status >= 400:
            # A wrong path or method is our configuration's fault; retrying will not help.
            raise CourierError(f"{self.protocol}: HTTP {status} from {url}")
        return response.text


_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@functools.lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx.URL:
    return httpx.URL(url)


def unsupported_action(protocol: str, action: str) -> RefusedError:
    return RefusedError(
        FailureReason.SERVICE_NOT_ELIGIBLE, f"{protocol} offers no intercept action {action!r}"
    )
