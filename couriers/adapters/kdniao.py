"""Kdniao (快递鸟): tracking query, subscription and pushes; no intercepts.

Reference sheet §1. Every call is a form POST to the account's ``base_url``, which is the whole
gateway URL (``https://api.kdniao.com/Ebusiness/EbusinessOrderHandle.aspx``), with fields
``EBusinessID, RequestType, RequestData (JSON), DataSign, DataType=2``.

- Query: RequestType 8001 (在途监控 即时查询), one waybill per request, which answers ``StateEx``
  and a per-trace ``Action`` (a StateEx code) as well as the basic ``State``.
- Subscribe: RequestType 8008 (在途监控 订阅), the value-added level the query reads, so pushes
  come as RequestType 102 with ``StateEx``; a plain 1008 subscription would get 101 pushes with
  the basic ``State`` only. Kdniao pushes to the URL registered in its portal. (Several clients
  send subscriptions to ``/api/dist``; this one sends everything to the account's gateway URL.)
- Push: RequestType 101 / 102, form ``RequestData, DataSign, RequestType``, the same signature;
  ``RequestData`` is ``{EBusinessID, PushTime, Count, Data}``; ack
  ``{"EBusinessID", "UpdateTime", "Success": true, "Reason": ""}`` (§1.6).
- Intercepts: Kdniao has none (§1.3 [UNK]); the base class refuses with CARRIER_NOT_SUPPORTED.

Tolerance, where the documents and Kdniao's own examples differ (each variant is logged once,
``common.notice_variant``): RequestData as JSON or with single quotes (Kdniao's Java demo and
documentation example); ``Count``, ``State`` and ``StateEx`` as strings (documented) or numbers.

Assumption (README, "What the sandbox assumes"): failures carry the §1.7 code in ``ResultCode``
next to ``Success: false`` and a ``Reason``; ``Success: false`` without a code, or no traces,
means nothing is known yet.
"""

from datetime import datetime

from couriers import signing
from couriers.adapters.base import (
    AuthenticationError,
    Capabilities,
    PushRejected,
    PushResult,
    RateLimitedError,
    RefusedError,
    TrackingResult,
    TransientError,
    Waybill,
)
from couriers.adapters.common import (
    SHANGHAI,
    FailureReason,
    HttpAdapter,
    compact_json,
    format_local_time,
    load_json,
    load_lenient_json,
    notice_variant,
    parse_local_time,
)
from couriers.codes import kdniao_stage
from couriers.types import TrackingScan

QUERY = "8001"
SUBSCRIBE = "8008"
PUSH_TYPES = frozenset({"101", "102"})

_AUTH_CODES = frozenset({"102", "104"})
_INVALID_CODES = frozenset({"101", "103", "401", "402", "403", "404"})


def track_result(track: dict) -> TrackingResult:
    """A TrackingResult from one Kdniao track object (a query answer or an item of a push).

    Each trace's stage comes from its ``Action``; a trace without one takes the track's overall
    State/StateEx if it is the newest, else the stage of the trace before it.
    """
    waybill_no = str(track.get("LogisticCode", ""))
    traces = sorted(track.get("Traces") or [], key=lambda trace: trace.get("AcceptTime") or "")
    scans: list[TrackingScan] = []
    for index, trace in enumerate(traces):
        action = str(trace.get("Action") or "").strip()
        if action:
            stage = kdniao_stage(None, action)
        elif index == len(traces) - 1:
            action = str(track.get("StateEx") or track.get("State") or "")
            stage = kdniao_stage(track.get("State"), track.get("StateEx"))
        else:
            stage = scans[-1].stage if scans else kdniao_stage(None, None)
        scans.append(
            TrackingScan(
                waybill_no=waybill_no,
                occurred_at=parse_local_time(trace["AcceptTime"]),
                raw_code=action,
                stage=stage,
                description=trace.get("AcceptStation", ""),
                location=trace.get("Location") or "",
            )
        )
    return TrackingResult(
        waybill_no=waybill_no,
        scans=scans,
        found=bool(scans),
        courier_code=str(track.get("ShipperCode") or ""),
    )


def _notice_types(body: dict, request_type: str) -> None:
    """Note a push whose fields have types its documents do not give (§1.6: ``Count`` a string;
    State and StateEx strings), or a 101 push with value-added fields, or a 102 without."""
    count = body.get("Count")
    if count is not None and not isinstance(count, str):
        notice_variant("kdniao", f"push Count as {type(count).__name__}, not a string")
    for track in body.get("Data") or []:
        if not isinstance(track, dict):
            continue
        for name in ("State", "StateEx"):
            if name in track and not isinstance(track[name], str):
                notice_variant("kdniao", f"push {name} as {type(track[name]).__name__}")
        if ("StateEx" in track) != (request_type == "102"):
            notice_variant(
                "kdniao", f"push RequestType {request_type} with StateEx: {'StateEx' in track}"
            )


class KdniaoAdapter(HttpAdapter):
    protocol = "kdniao"
    capabilities = Capabilities(query_batch_size=1, can_subscribe=True, can_intercept=False)

    def _call(self, request_type: str, fields: dict) -> dict:
        request_data = compact_json(fields)
        text = self.post_form(
            self.account.base_url,
            {
                "EBusinessID": self.account.ebusiness_id,
                "RequestType": request_type,
                "RequestData": request_data,
                # Sent plain: the form encoding is the one URL-encoding the sign needs (§1.2).
                "DataSign": signing.kdniao_data_sign(request_data, self.account.app_key),
                "DataType": "2",
            },
        )
        answer = load_json(text, f"kdniao {request_type}")
        if not isinstance(answer, dict):
            raise TransientError(f"kdniao {request_type}: the answer is not an object")
        if isinstance(answer.get("Success"), str):
            notice_variant("kdniao", f"{request_type} answer with Success as a string")
            answer["Success"] = answer["Success"].strip().lower() == "true"
        code = str(answer.get("ResultCode") or "")
        reason = str(answer.get("Reason") or "")
        if answer.get("Success") is False and code:
            if code == "405":
                raise RateLimitedError(f"kdniao {request_type} {code}: {reason}")
            if code in _AUTH_CODES:
                raise AuthenticationError(f"kdniao {request_type} {code}: {reason}")
            if code in _INVALID_CODES:
                raise RefusedError(FailureReason.INVALID_REQUEST, f"{code}: {reason}")
            raise TransientError(f"kdniao {request_type} {code}: {reason}")
        return answer

    def _fields(self, waybill: Waybill) -> dict:
        fields = {
            "OrderCode": "",
            "ShipperCode": waybill.protocol_code,
            "LogisticCode": waybill.waybill_no,
        }
        if waybill.phone_tail:
            # SF (and some others) check the last four digits of a phone (§1.4).
            fields["CustomerName"] = waybill.phone_tail
        return fields

    def query(self, waybills: list[Waybill]) -> list[TrackingResult]:
        results = []
        for waybill in waybills:
            answer = self._call(QUERY, self._fields(waybill))
            if answer.get("Success") is False:
                results.append(TrackingResult(waybill_no=waybill.waybill_no, found=False))
                continue
            try:
                result = track_result({**answer, "LogisticCode": waybill.waybill_no})
            except (KeyError, TypeError, ValueError) as exc:
                raise TransientError(f"kdniao query: unreadable trace: {exc}") from exc
            results.append(result)
        return results

    def subscribe(self, waybill: Waybill) -> None:
        answer = self._call(SUBSCRIBE, self._fields(waybill))
        if answer.get("Success") is False:
            raise RefusedError(FailureReason.INVALID_REQUEST, str(answer.get("Reason") or ""))

    def parse_push(self, form: dict[str, str]) -> PushResult:
        request_data = form.get("RequestData")
        data_sign = form.get("DataSign")
        request_type = str(form.get("RequestType", ""))
        if not request_data or not data_sign:
            raise PushRejected("kdniao push without RequestData or DataSign")
        if not signing.kdniao_verify(request_data, self.account.app_key, data_sign):
            raise PushRejected("kdniao push: bad DataSign")
        if request_type not in PUSH_TYPES:
            raise PushRejected(f"kdniao push: RequestType {request_type!r} is not a track push")
        try:
            body = load_lenient_json(request_data, "kdniao push RequestData", protocol="kdniao")
        except TransientError as exc:
            raise PushRejected(str(exc)) from exc
        if not isinstance(body, dict):
            raise PushRejected("kdniao push: RequestData is not an object")
        _notice_types(body, request_type)
        try:
            tracking = [track_result(track) for track in body.get("Data") or []]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PushRejected(f"kdniao push: unreadable track: {exc}") from exc
        # PushTime is inside RequestData, so the signature covers it.
        push_time = body.get("PushTime")
        try:
            signed_at = parse_local_time(push_time) if push_time else None
        except (TypeError, ValueError, AttributeError) as exc:
            raise PushRejected(f"kdniao push: PushTime {push_time!r:.40} is not a time") from exc
        ack = {
            "EBusinessID": self.account.ebusiness_id,
            "UpdateTime": format_local_time(datetime.now(SHANGHAI)),
            "Success": True,
            "Reason": "",
        }
        return PushResult(tracking=tracking, ack_body=compact_json(ack), signed_at=signed_at)
