"""SF Express open platform (顺丰 丰桥): route query in batches, route push, wanted-intercept.

Reference sheet §3.1. Every call is a form POST to ``{base_url}/std/service`` with fields
``partnerID, requestID, serviceCode, timestamp (ms), msgDigest, msgData``; the answer is
``{apiResultCode, apiErrorMsg, apiResponseID, apiResultData}`` where ``apiResultData`` is a JSON
string ``{success, errorCode, errorMsg, msgData}``. ``msgDigest`` follows SF's documented Java
rule (``signing.sf_msg_digest``), which differs from SF's Python demo on ``*`` and ``~``; a push
signed by either rule is taken, the demo's noted in the log (``common.notice_variant``).

Assumptions where the sheet is silent or says [UNK] (README, "What the sandbox assumes"; the
sandbox courier implements the same):

- apiResultCode values besides A1000 (from SF's gateway page as we know it): A1001 missing
  parameter, A1002 request expired, A1003 IP not allowed, A1004 no permission for the service,
  A1005 flow control, A1006 bad signature, A1007 duplicate request, A1009 / A1099 SF-side errors.
- Route query answer ``msgData``: ``{"routeResps": [{"mailNo", "routes": [{"acceptTime",
  "acceptAddress", "remark", "opCode"}]}]}``; a number without routes is reported not found.
- An opCode missing from ``couriers.codes.SF_STAGES`` keeps the scan with the stage of the scan
  before it for the same parcel (in time order), NO_INFO if it is the first: SF sends many
  operational scans that say nothing new about progress.
- Subscription: EXP_RECE_REGISTER_ROUTE with msgData ``{"type": "2", "attributeNo": waybill,
  "checkPhoneNo"}``; SF pushes to the URL registered in its portal, not one named per request.
- Route push (SF → us), **invented** envelope (SF publishes none we could read): form fields
  ``content``, ``timestamp``, ``msgDigest`` and ``partnerID``,
  ``content`` = ``{"Body": {"WaybillRoute": [{"mailno", "opCode", "acceptTime", "remark",
  "acceptAddress", ...}]}}``, ``msgDigest = sf_msg_digest(content, timestamp, check_word)``;
  ack ``{"return_code": "0000", "return_msg": "成功"}``. A route with opCode 631 (returning) or
  648 (redirecting) is also reported as a successful intercept. Read tolerantly: ``mailno`` or
  ``mailNo``, opCodes as strings or numbers.
- The intercept result notice (妥投前拦截通知), **invented** like the route push, is the
  same envelope with ``content`` =
  ``{"Body": {"InterceptResult": [{"waybillNo", "serviceCode", "status": "SUCCESS"|"FAILED",
  "reason", "time"}]}}``; it is how a failure is told, since a route cannot say "missed".
- The wanted-intercept answers no task number; the reference we keep is the serviceCode we sent
  ("1" redirect, "2" return), because withdrawing with ``cancel: true`` must repeat it. ``cusId``
  in the withdrawal is the account's partner id.
"""

import time
import uuid
from datetime import UTC, datetime
from itertools import groupby

from couriers import signing
from couriers.adapters.base import (
    AuthenticationError,
    Capabilities,
    CourierError,
    InterceptAnswer,
    PushRejected,
    PushResult,
    RateLimitedError,
    RefusedError,
    TrackingResult,
    TransientError,
    Waybill,
)
from couriers.adapters.common import (
    FailureReason,
    HttpAdapter,
    InterceptAction,
    InterceptUpdate,
    compact_json,
    load_json,
    new_address_fields,
    notice_variant,
    parse_local_time,
    pick,
    reason_from_message,
    unsupported_action,
)
from couriers.codes import SF_STAGES
from couriers.stages import ParcelStage
from couriers.types import TrackingScan

SEARCH_ROUTES = "EXP_RECE_SEARCH_ROUTES"
REGISTER_ROUTE = "EXP_RECE_REGISTER_ROUTE"
WANTED_INTERCEPT = "EXP_RECE_WANTED_INTERCEPT"

QUERY_BATCH_SIZE = 10

# EXP_RECE_WANTED_INTERCEPT serviceCode per action (§3.1, §7.2).
SERVICE_CODES = {
    InterceptAction.RETURN_TO_SENDER_ADDRESS: "2",
    InterceptAction.REDIRECT_NEW_ADDRESS: "1",
}
_ACTIONS_BY_SERVICE_CODE = {value: key for key, value in SERVICE_CODES.items()}

# Route opCodes that only appear once an intercept has taken effect (§7.1 [INF]).
INTERCEPT_OP_CODES = {"631": "2", "648": "1"}

# Intercept result notice status → our update status (the notice shape is our assumption).
NOTICE_STATUSES = {
    "ACCEPTED": InterceptUpdate.IN_PROGRESS,
    "SUCCESS": InterceptUpdate.SUCCEEDED,
    "FAILED": InterceptUpdate.FAILED,
}

ACK_BODY = compact_json({"return_code": "0000", "return_msg": "成功"})

_AUTH_CODES = frozenset({"A1002", "A1003", "A1004", "A1006"})
_TRANSIENT_CODES = frozenset({"A1007", "A1009", "A1099"})


def scans_from_routes(waybill_no: str, routes: list[dict]) -> list[TrackingScan]:
    """Scans, oldest first; an opCode without a stage takes the previous scan's stage."""
    scans: list[TrackingScan] = []
    for route in sorted(routes, key=lambda item: item.get("acceptTime") or ""):
        if isinstance(route.get("opCode"), int):
            notice_variant("sf", "route opCode as a number, not a string")
        code = str(route.get("opCode", "")).strip()
        stage = SF_STAGES.get(code)  # sf_stage without normalising the code a second time
        if stage is None:
            stage = scans[-1].stage if scans else ParcelStage.NO_INFO
        scans.append(
            TrackingScan(
                waybill_no=waybill_no,
                occurred_at=parse_local_time(route["acceptTime"]),
                raw_code=code,
                stage=stage,
                description=route.get("remark", ""),
                location=route.get("acceptAddress", ""),
            )
        )
    return scans


class SfAdapter(HttpAdapter):
    protocol = "sf"
    capabilities = Capabilities(
        query_batch_size=QUERY_BATCH_SIZE,
        can_subscribe=True,
        can_intercept=True,
        intercept_actions=tuple(SERVICE_CODES),
    )

    def _call(self, service_code: str, msg_data: str) -> dict:
        """One gateway call; returns the decoded ``apiResultData`` or raises."""
        timestamp = str(int(time.time() * 1000))
        digest = signing.sf_msg_digest(msg_data, timestamp, self.account.check_word)
        text = self.post_form(
            self.account.base_url.rstrip("/") + "/std/service",
            {
                "partnerID": self.account.partner_id,
                "requestID": uuid.uuid4().hex,
                "serviceCode": service_code,
                "timestamp": timestamp,
                "msgDigest": digest,
                "msgData": msg_data,
            },
        )
        answer = load_json(text, f"sf {service_code}")
        code = str(answer.get("apiResultCode", ""))
        message = str(answer.get("apiErrorMsg") or "")
        if code == "A1000":
            data = answer.get("apiResultData")
            if not isinstance(data, str):
                raise TransientError(f"sf {service_code}: apiResultData is not a JSON string")
            result = load_json(data, f"sf {service_code} apiResultData")
            if not isinstance(result, dict):
                raise TransientError(f"sf {service_code}: apiResultData is not an object")
            return result
        if code == "A1005":
            raise RateLimitedError(f"sf {service_code} {code}: {message}")
        if code in _AUTH_CODES:
            raise AuthenticationError(f"sf {service_code} {code}: {message}")
        if code in _TRANSIENT_CODES:
            raise TransientError(f"sf {service_code} {code}: {message}")
        if code == "A1001":
            raise RefusedError(FailureReason.INVALID_REQUEST, f"{code}: {message}")
        raise CourierError(f"sf {service_code} {code}: {message}")

    # Tracking.

    def query(self, waybills: list[Waybill]) -> list[TrackingResult]:
        results: dict[str, TrackingResult] = {}
        # One checkPhoneNo per request, so waybills are batched by their phone tail.
        by_phone = sorted(waybills, key=lambda waybill: waybill.phone_tail)
        for phone_tail, group in groupby(by_phone, key=lambda waybill: waybill.phone_tail):
            numbers = [waybill.waybill_no for waybill in group]
            for start in range(0, len(numbers), QUERY_BATCH_SIZE):
                batch = numbers[start : start + QUERY_BATCH_SIZE]
                results.update(self._query_batch(batch, phone_tail))
        return [results[waybill.waybill_no] for waybill in waybills]

    def _query_batch(self, numbers: list[str], phone_tail: str) -> dict[str, TrackingResult]:
        fields = {
            "language": "zh-CN",
            "trackingType": "1",
            "trackingNumber": numbers,
            "methodType": "1",
        }
        if phone_tail:
            fields["checkPhoneNo"] = phone_tail
        result = self._call(SEARCH_ROUTES, compact_json(fields))
        if not result.get("success"):
            raise RefusedError(
                FailureReason.INVALID_REQUEST,
                f"{result.get('errorCode')}: {result.get('errorMsg')}",
            )
        found: dict[str, TrackingResult] = {
            number: TrackingResult(waybill_no=number, found=False) for number in numbers
        }
        try:
            for response in (result.get("msgData") or {}).get("routeResps") or []:
                number = str(
                    pick(response, "mailNo", "mailno", protocol="sf", what="route answer") or ""
                )
                if number not in found:
                    continue
                scans = scans_from_routes(number, response.get("routes") or [])
                found[number] = TrackingResult(waybill_no=number, scans=scans, found=bool(scans))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise TransientError(f"sf routes: unreadable answer: {exc}") from exc
        return found

    def subscribe(self, waybill: Waybill) -> None:
        fields = {"type": "2", "attributeNo": waybill.waybill_no}
        if waybill.phone_tail:
            fields["checkPhoneNo"] = waybill.phone_tail
        result = self._call(REGISTER_ROUTE, compact_json(fields))
        if not result.get("success"):
            raise RefusedError(
                FailureReason.INVALID_REQUEST,
                f"{result.get('errorCode')}: {result.get('errorMsg')}",
            )

    # Intercepts.

    def request_intercept(
        self, waybill: Waybill, *, action: str, reason: str = "", new_address: dict | None = None
    ) -> InterceptAnswer:
        service_code = SERVICE_CODES.get(action)
        if service_code is None:
            raise unsupported_action(self.protocol, action)
        fields: dict = {
            "waybillNo": waybill.waybill_no,
            "serviceCode": service_code,
            "role": "1",  # 寄方: the merchant sent the parcel
            "payMode": "1",  # 寄方现结, unless the shop's monthly card is known (below)
            "cancel": False,
        }
        if waybill.ewaybill_account:
            # 寄方月结 on the card the waybill was issued under: SF checks the two agree.
            fields["payMode"], fields["monthlyCardNo"] = "4", waybill.ewaybill_account
        if new_address:
            address = new_address_fields(new_address)
            fields["newDestAddress"] = {
                "province": address["province"],
                "city": address["city"],
                "county": address["district"],
                "address": address["address"],
                "contact": address["name"],
                "phone": address["phone"],
                "country": "中国",
            }
        result = self._call(WANTED_INTERCEPT, compact_json(fields))
        raw = compact_json(result)
        if result.get("success"):
            return InterceptAnswer(accepted=True, reference=service_code, raw=raw)
        message = str(result.get("errorMsg") or "")
        raise RefusedError(reason_from_message(message), f"{result.get('errorCode')}: {message}")

    def cancel_intercept(self, waybill: Waybill, *, reference: str) -> InterceptAnswer:
        fields = {
            "waybillNo": waybill.waybill_no,
            "serviceCode": reference or SERVICE_CODES[InterceptAction.RETURN_TO_SENDER_ADDRESS],
            "cancel": True,
            "cusId": self.account.partner_id,
        }
        result = self._call(WANTED_INTERCEPT, compact_json(fields))
        raw = compact_json(result)
        if result.get("success"):
            return InterceptAnswer(accepted=True, reference=reference, raw=raw)
        raise RefusedError(
            FailureReason.CANNOT_CANCEL, f"{result.get('errorCode')}: {result.get('errorMsg')}"
        )

    # Pushes.

    def parse_push(self, form: dict[str, str]) -> PushResult:
        """Verify and read a route push or an intercept result notice (both our assumed shape)."""
        content = form.get("content")
        timestamp = form.get("timestamp")
        digest = form.get("msgDigest")
        if not content or not timestamp or not digest:
            raise PushRejected("sf push without content, timestamp or msgDigest")
        rule = signing.sf_digest_rule(content, timestamp, self.account.check_word, digest)
        if rule is None:
            raise PushRejected("sf push: bad msgDigest")
        if rule != signing.SF_JAVA_RULE:
            notice_variant("sf", f"push signed by the {rule} rule, not the documented Java one")
        signed_at = _signed_time(timestamp)
        try:
            body = load_json(content, "sf push")
        except TransientError as exc:
            raise PushRejected(str(exc)) from exc
        if not isinstance(body, dict):
            raise PushRejected("sf push: content is not an object")
        # The envelope below is our assumption (module docstring), read as tolerantly as we can.
        body = body.get("Body", body)
        if not isinstance(body, dict):
            raise PushRejected("sf push: Body is not an object")
        try:
            tracking, updates = _routes_pushed(body.get("WaybillRoute") or [])
            updates += [_notice_update(item) for item in body.get("InterceptResult") or []]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PushRejected(f"sf push: unreadable content: {exc}") from exc
        if not tracking and not updates:
            raise PushRejected("sf push: neither routes nor intercept results")
        return PushResult(
            tracking=tracking, intercept_updates=updates, ack_body=ACK_BODY, signed_at=signed_at
        )


def _signed_time(timestamp: str) -> datetime:
    """The signed push timestamp: milliseconds (most senders) or seconds (SF's own demo)."""
    try:
        stamp = int(timestamp)
        if stamp <= 10**11:
            notice_variant("sf", "push timestamp in seconds, not milliseconds")
        return datetime.fromtimestamp(stamp / 1000 if stamp > 10**11 else stamp, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise PushRejected(f"sf push: timestamp {timestamp[:40]!r} is not a time") from exc


def _routes_pushed(routes: list[dict]) -> tuple[list[TrackingResult], list[dict]]:
    tracking: list[TrackingResult] = []
    updates: list[dict] = []
    by_number: dict[str, list[dict]] = {}
    for route in routes:
        number = pick(route, "mailno", "mailNo", protocol="sf", what="route push")
        if number is None:
            raise KeyError("mailno")
        by_number.setdefault(str(number), []).append(route)
    for number, items in by_number.items():
        scans = scans_from_routes(number, items)
        tracking.append(TrackingResult(waybill_no=number, scans=scans, found=bool(scans)))
        for scan in scans:
            service_code = INTERCEPT_OP_CODES.get(scan.raw_code)
            if service_code is not None:
                updates.append(
                    {
                        "waybill_no": number,
                        "reference": service_code,
                        "status": str(InterceptUpdate.SUCCEEDED),
                        "action": str(_ACTIONS_BY_SERVICE_CODE[service_code]),
                        "reason_code": "",
                        "reason": scan.description,
                        "occurred_at": scan.occurred_at,
                    }
                )
    return tracking, updates


def _notice_update(item: dict) -> dict:
    status = NOTICE_STATUSES[item["status"]]  # an unknown status is an unreadable notice
    reason = str(item.get("reason") or "")
    service_code = str(item.get("serviceCode", ""))
    action = _ACTIONS_BY_SERVICE_CODE.get(service_code)
    reason_code = ""
    if status == InterceptUpdate.FAILED:
        reason_code = str(reason_from_message(reason, default=FailureReason.MISSED_AT_NODE))
    number = pick(item, "waybillNo", "waybillno", "mailno", protocol="sf", what="intercept notice")
    if number is None:
        raise KeyError("waybillNo")
    return {
        "waybill_no": str(number),
        "reference": service_code,
        "status": str(status),
        "action": str(action) if action else "",
        "reason_code": reason_code,
        "reason": reason,
        "occurred_at": parse_local_time(item["time"]) if item.get("time") else None,
    }
