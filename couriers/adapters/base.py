"""The adapter interface and the errors every protocol maps its failures onto."""

from dataclasses import dataclass, field
from datetime import datetime

from couriers.types import TrackingScan


@dataclass(frozen=True)
class AccountConfig:
    """What an adapter needs to talk to one gateway account (from ``CourierAccount``)."""

    protocol: str
    base_url: str
    # Kuaidi100: customer + key (+ secret for label/intercept, salt for pushes).
    # SF: partner_id + check_word. Kdniao: ebusiness_id + app_key.
    customer: str = ""
    key: str = ""
    secret: str = ""
    salt: str = ""
    partner_id: str = ""
    check_word: str = ""
    ebusiness_id: str = ""
    app_key: str = ""
    callback_url: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Waybill:
    waybill_no: str
    courier_code: str  # our registry code, e.g. "ZTO"
    protocol_code: str = ""  # the gateway's code for the courier, e.g. "zhongtong"
    phone_tail: str = ""  # last four digits of a phone, which SF and ZTO queries ask for
    # The shipper's e-waybill account the courier issued the number under (Kuaidi100's
    # partnerId, SF's monthly card): couriers take an intercept only from that account.
    ewaybill_account: str = ""


@dataclass(frozen=True)
class TrackingResult:
    waybill_no: str
    scans: list[TrackingScan] = field(default_factory=list)
    found: bool = True
    # The gateway's code for the courier, where a push names it (an aggregator's account serves
    # several couriers, and two couriers' numbers could coincide).
    courier_code: str = ""


@dataclass(frozen=True)
class InterceptAnswer:
    """The gateway's synchronous answer to an intercept or cancel request."""

    accepted: bool
    reference: str = ""  # the gateway's task number, if it gives one
    reason_code: str = ""
    reason: str = ""
    raw: str = ""


@dataclass(frozen=True)
class PushResult:
    """A verified push: what it says, and the body the gateway expects back."""

    tracking: list[TrackingResult] = field(default_factory=list)
    intercept_updates: list[dict] = field(default_factory=list)
    ack_body: str = ""
    ack_content_type: str = "application/json"
    # When the gateway says it sent the push, where the signature covers that time (SF's
    # timestamp, Kdniao's PushTime); None where the protocol signs no time (Kuaidi100).
    signed_at: datetime | None = None


@dataclass(frozen=True)
class Capabilities:
    query_batch_size: int = 1
    can_subscribe: bool = True
    can_intercept: bool = False
    intercept_actions: tuple[str, ...] = ()


class CourierError(Exception):
    """Base of every failure an adapter reports."""


class TransientError(CourierError):
    """Worth retrying later: timeouts, resets, 5xx, malformed answers."""


class RateLimitedError(TransientError):
    """The gateway asks us to slow down."""


class AuthenticationError(CourierError):
    """Credentials or signature refused: retrying will not help until the account is fixed."""


class RefusedError(CourierError):
    """The gateway refused the request for a business reason."""

    def __init__(self, reason_code: str, reason: str = ""):
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code = reason_code
        self.reason = reason


class PushRejected(CourierError):
    """A push whose signature or body does not check out."""


class Adapter:
    """One protocol. Subclasses implement what their gateway offers."""

    protocol: str = ""
    capabilities = Capabilities()

    def __init__(self, account: AccountConfig):
        self.account = account

    def query(self, waybills: list[Waybill]) -> list[TrackingResult]:
        raise NotImplementedError

    def subscribe(self, waybill: Waybill) -> None:
        raise NotImplementedError

    def request_intercept(
        self, waybill: Waybill, *, action: str, reason: str = "", new_address: dict | None = None
    ) -> InterceptAnswer:
        raise RefusedError("CARRIER_NOT_SUPPORTED", "This gateway cannot intercept parcels.")

    def cancel_intercept(self, waybill: Waybill, *, reference: str) -> InterceptAnswer:
        raise RefusedError("CARRIER_NOT_SUPPORTED", "This gateway cannot intercept parcels.")

    def parse_push(self, form: dict[str, str]) -> PushResult:
        raise NotImplementedError
