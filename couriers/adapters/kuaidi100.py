"""Kuaidi100 (快递100): tracking query, subscription with signed pushes, and intercepts.

Reference sheet §2. Endpoints, relative to the account's ``base_url`` (the real one is
``https://poll.kuaidi100.com`` for tracking and ``https://api.kuaidi100.com`` for label/order;
one account here has one base URL, so a real deployment points it at a proxy or uses two accounts):

- ``POST /poll/query.do`` form ``customer, param, sign``: one waybill per request (§2.1).
- ``POST /poll`` form ``schema=json, param``: subscription, the key inside param (§2.2).
- ``POST /label/order`` form ``method=interceptOrder, key, t, param, sign`` (§2.4).

Queries and subscriptions ask for ``resultv2=4``, the level whose advanced ``statusCode`` per
scan this adapter reads (``1``, what Kuaidi100's own demos ask for, gives only basic state names).
An answer without ``statusCode`` is still read: from the basic name in ``status``, then from the
overall ``state`` (the variant is logged once, ``common.notice_variant``).

Assumptions where the sheet says [UNK] (README, "What the sandbox assumes"; the sandbox courier
implements the same):

- Cancel: **invented**, no Kuaidi100 document or SDK has one. The same endpoint with
  ``method=cancelInterceptOrder`` and param ``{kuaidicom, kuaidinum, taskId}``, signed like
  interceptOrder; a real account must tell us how (or whether) Kuaidi100 withdraws.
- The accepted answer of interceptOrder carries ``data.taskId``, our reference for the request.
- A business refusal is any other ``code`` (the sandbox sends 400) with a Chinese message; the
  §7.2 reason is read from the message.
- The intercept result callback (**invented**: its shape is not published) is a form POST to
  the request's ``callbackUrl`` with fields ``param`` and ``sign = UPPER(md5(param + salt))``
  (the salt we sent in the request), param
  ``{"taskId", "orderId", "kuaidicom", "kuaidinum", "interceptType",
  "status": "ACCEPTED"|"SUCCESS"|"FAILED", "reason", "time": "yyyy-MM-dd HH:mm:ss"}``; it is
  acknowledged like a tracking push. Read tolerantly: ``taskId``/``taskid``,
  ``kuaidinum``/``kuaidiNum`` and the status in any case.
- Query return codes (not in the sheet; kuaidi100's query page as we know it): 500 no result,
  501/502 server error or busy, 503 sign failure, 601 key expired. A message that says "频繁"
  (too frequent) is a rate limit whatever its code.
"""

import time

from couriers import signing
from couriers.adapters.base import (
    AuthenticationError,
    Capabilities,
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
from couriers.codes import kuaidi100_stage
from couriers.types import TrackingScan

INTERCEPT_TYPES = {
    InterceptAction.RETURN_TO_SENDER_ADDRESS: "RETURN_SEND_ADDR",
    InterceptAction.RETURN_TO_ORIGIN_STATION: "RETURN_SEND_STATION",
    InterceptAction.REDIRECT_NEW_ADDRESS: "MODIFY_ADDR",
}
_ACTIONS_BY_TYPE = {value: key for key, value in INTERCEPT_TYPES.items()}

# Intercept callback status → our update status (the callback shape is our assumption).
CALLBACK_STATUSES = {
    "ACCEPTED": InterceptUpdate.IN_PROGRESS,
    "SUCCESS": InterceptUpdate.SUCCEEDED,
    "FAILED": InterceptUpdate.FAILED,
}

ACK_BODY = compact_json({"result": True, "returnCode": "200", "message": "成功"})

_QUERY_AUTH_CODES = frozenset({"503", "601", "600", "102", "401", "402"})
_QUERY_TRANSIENT_CODES = frozenset({"501", "502"})
_SUBSCRIBE_AUTH_CODES = frozenset({"600", "601"})
_LABEL_AUTH_CODES = frozenset({"102", "401", "402"})
_LABEL_INVALID_CODES = frozenset({"101", "103", "104"})


def _is_rate_limit(message: str) -> bool:
    return "频繁" in message


# The basic state names of resultv2=1 (§2.3), for an answer that carries no statusCode.
BASIC_CODES_BY_NAME = {
    "在途": "0",
    "揽收": "1",
    "疑难": "2",
    "签收": "3",
    "退签": "4",
    "派件": "5",
    "退回": "6",
    "转投": "7",
    "转单": "7",
    "清关": "8",
    "待清关": "10",
    "清关中": "11",
    "已清关": "12",
    "清关异常": "13",
    "拒签": "14",
}


def scans_from_data(
    waybill_no: str, data: list[dict], overall_state: str = ""
) -> list[TrackingScan]:
    """Scans, oldest first, from a query answer's or a push's ``data`` list (newest first there).

    With ``resultv2=4`` each item has an advanced ``statusCode``. An item without one (a gateway
    that answered a lower level) is read from its basic ``status`` name; failing that the newest
    takes the answer's overall ``state`` and the others the stage of the scan before.
    """
    # The lists come newest first; reversing before the stable sort keeps same-second scans in
    # the order they happened.
    items = sorted(reversed(data), key=lambda item: item.get("ftime") or item.get("time") or "")
    scans: list[TrackingScan] = []
    for index, item in enumerate(items):
        code = str(item.get("statusCode") or "").strip()
        if not code and item.get("status") in BASIC_CODES_BY_NAME:
            notice_variant("kuaidi100", "scans without statusCode, read from the status name")
            code = BASIC_CODES_BY_NAME[item["status"]]
        if code:
            stage = kuaidi100_stage(code)
        elif index == len(items) - 1 and overall_state != "":
            code = str(overall_state)
            stage = kuaidi100_stage(code)
        else:
            stage = scans[-1].stage if scans else kuaidi100_stage(None)
        scans.append(
            TrackingScan(
                waybill_no=waybill_no,
                occurred_at=parse_local_time(item.get("ftime") or item["time"]),
                raw_code=code,
                stage=stage,
                description=item.get("context", ""),
                location=item.get("location") or item.get("areaName") or "",
            )
        )
    return scans


class Kuaidi100Adapter(HttpAdapter):
    protocol = "kuaidi100"
    capabilities = Capabilities(
        query_batch_size=1,
        can_subscribe=True,
        can_intercept=True,
        intercept_actions=tuple(INTERCEPT_TYPES),
    )

    def _url(self, path: str) -> str:
        return self.account.base_url.rstrip("/") + path

    # Tracking.

    def query(self, waybills: list[Waybill]) -> list[TrackingResult]:
        return [self._query_one(waybill) for waybill in waybills]

    def _query_one(self, waybill: Waybill) -> TrackingResult:
        fields = {"com": waybill.protocol_code, "num": waybill.waybill_no, "resultv2": "4"}
        if waybill.phone_tail:
            fields["phone"] = waybill.phone_tail
        param = compact_json({**fields, "show": "0", "order": "desc"})
        sign = signing.kuaidi100_query_sign(param, self.account.key, self.account.customer)
        text = self.post_form(
            self._url("/poll/query.do"),
            {"customer": self.account.customer, "param": param, "sign": sign},
        )
        answer = load_json(text, "kuaidi100 query")
        if str(answer.get("status", "")) == "200":
            try:
                scans = scans_from_data(
                    waybill.waybill_no, answer.get("data") or [], str(answer.get("state", ""))
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise TransientError(f"kuaidi100 query: unreadable scan: {exc}") from exc
            return TrackingResult(waybill_no=waybill.waybill_no, scans=scans, found=bool(scans))
        code = str(answer.get("returnCode", ""))
        message = str(answer.get("message", ""))
        if _is_rate_limit(message):
            raise RateLimitedError(f"kuaidi100 query {code}: {message}")
        if code == "500":
            # 查询无结果: the courier has nothing on this number yet.
            return TrackingResult(waybill_no=waybill.waybill_no, found=False)
        if code in _QUERY_AUTH_CODES:
            raise AuthenticationError(f"kuaidi100 query {code}: {message}")
        if code in _QUERY_TRANSIENT_CODES:
            raise TransientError(f"kuaidi100 query {code}: {message}")
        raise RefusedError(FailureReason.INVALID_REQUEST, f"{code}: {message}")

    def subscribe(self, waybill: Waybill) -> None:
        parameters = {
            "callbackurl": self.account.callback_url,
            "salt": self.account.salt,
            "resultv2": "4",
        }
        if waybill.phone_tail:
            parameters["phone"] = waybill.phone_tail
        param = compact_json(
            {
                "company": waybill.protocol_code,
                "number": waybill.waybill_no,
                "key": self.account.key,
                "parameters": parameters,
            }
        )
        text = self.post_form(self._url("/poll"), {"schema": "json", "param": param})
        answer = load_json(text, "kuaidi100 subscribe")
        code = str(answer.get("returnCode", ""))
        message = str(answer.get("message", ""))
        # 501 重复订阅: the waybill is already being polled for us, which is what we want.
        if code in ("200", "501"):
            return
        if _is_rate_limit(message):
            raise RateLimitedError(f"kuaidi100 subscribe {code}: {message}")
        if code in _SUBSCRIBE_AUTH_CODES:
            raise AuthenticationError(f"kuaidi100 subscribe {code}: {message}")
        if code in ("701", "702"):
            raise RefusedError(FailureReason.CARRIER_NOT_SUPPORTED, f"{code}: {message}")
        if code == "700":
            raise RefusedError(FailureReason.INVALID_REQUEST, f"{code}: {message}")
        raise TransientError(f"kuaidi100 subscribe {code}: {message}")

    # Intercepts.

    def request_intercept(
        self, waybill: Waybill, *, action: str, reason: str = "", new_address: dict | None = None
    ) -> InterceptAnswer:
        intercept_type = INTERCEPT_TYPES.get(action)
        if intercept_type is None:
            raise unsupported_action(self.protocol, action)
        fields = {
            "kuaidicom": waybill.protocol_code,
            "kuaidinum": waybill.waybill_no,
            "interceptType": intercept_type,
            "reason": reason,
            "orderRole": "1",
            "interceptPayType": "SHIPPER",
            "salt": self.account.salt,
            "callbackUrl": self.account.callback_url,
        }
        if waybill.ewaybill_account:
            fields["partnerId"] = waybill.ewaybill_account
        if intercept_type == "MODIFY_ADDR":
            address = new_address_fields(new_address)
            fields["recManInfo"] = {
                "name": address["name"],
                "mobile": address["phone"],
                "printAddr": "".join(
                    address[key] for key in ("province", "city", "district", "address")
                ),
                "company": "",
            }
        answer, text = self._label("interceptOrder", compact_json(fields))
        code = str(answer.get("code", ""))
        message = str(answer.get("message", ""))
        if code == "200":
            data = answer.get("data") or {}
            return InterceptAnswer(accepted=True, reference=str(data.get("taskId", "")), raw=text)
        raise RefusedError(reason_from_message(message), message)

    def cancel_intercept(self, waybill: Waybill, *, reference: str) -> InterceptAnswer:
        param = compact_json(
            {
                "kuaidicom": waybill.protocol_code,
                "kuaidinum": waybill.waybill_no,
                "taskId": reference,
            }
        )
        answer, text = self._label("cancelInterceptOrder", param)
        code = str(answer.get("code", ""))
        message = str(answer.get("message", ""))
        if code == "200":
            return InterceptAnswer(accepted=True, reference=reference, raw=text)
        raise RefusedError(FailureReason.CANNOT_CANCEL, message)

    def _label(self, method: str, param: str) -> tuple[dict, str]:
        """Call label/order and raise for everything but success and business refusals."""
        t = str(int(time.time() * 1000))
        sign = signing.kuaidi100_label_sign(param, t, self.account.key, self.account.secret)
        text = self.post_form(
            self._url("/label/order"),
            {"method": method, "key": self.account.key, "t": t, "param": param, "sign": sign},
        )
        answer = load_json(text, f"kuaidi100 {method}")
        code = str(answer.get("code", ""))
        message = str(answer.get("message", ""))
        if _is_rate_limit(message):
            raise RateLimitedError(f"kuaidi100 {method} {code}: {message}")
        if code in _LABEL_AUTH_CODES:
            raise AuthenticationError(f"kuaidi100 {method} {code}: {message}")
        if code == "500":
            raise TransientError(f"kuaidi100 {method} {code}: {message}")
        if code in _LABEL_INVALID_CODES:
            raise RefusedError(FailureReason.INVALID_REQUEST, f"{code}: {message}")
        return answer, text

    # Pushes.

    def parse_push(self, form: dict[str, str]) -> PushResult:
        """Verify and read a tracking push or an intercept result callback (same envelope)."""
        param = form.get("param")
        sign = form.get("sign")
        if not param or sign is None:
            raise PushRejected("kuaidi100 push without param or sign")
        if not signing.kuaidi100_verify_push(param, self.account.salt, sign):
            raise PushRejected("kuaidi100 push: bad sign")
        try:
            body = load_json(param, "kuaidi100 push")
        except TransientError as exc:
            raise PushRejected(str(exc)) from exc
        if not isinstance(body, dict):
            raise PushRejected("kuaidi100 push: param is not an object")
        if "lastResult" in body:
            return PushResult(tracking=[_push_tracking(body)], ack_body=ACK_BODY)
        task_id = pick(body, "taskId", "taskid", protocol="kuaidi100", what="intercept callback")
        status = str(body.get("status") or "")
        if task_id and status.upper() in CALLBACK_STATUSES:
            if status not in CALLBACK_STATUSES:
                notice_variant("kuaidi100", f"intercept callback status {status!r}")
            return PushResult(intercept_updates=[_intercept_update(body)], ack_body=ACK_BODY)
        raise PushRejected("kuaidi100 push: neither a tracking push nor an intercept callback")


def _push_tracking(body: dict) -> TrackingResult:
    last = body.get("lastResult") or {}
    waybill_no = str(last.get("nu", ""))
    if not waybill_no:
        raise PushRejected("kuaidi100 push: lastResult without nu")
    try:
        scans = scans_from_data(waybill_no, last.get("data") or [], str(last.get("state", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise PushRejected(f"kuaidi100 push: unreadable scan: {exc}") from exc
    return TrackingResult(
        waybill_no=waybill_no,
        scans=scans,
        found=bool(scans),
        courier_code=str(last.get("com") or ""),
    )


def _intercept_update(body: dict) -> dict:
    """Our update from the intercept callback, whose shape is our assumption (module docstring)."""
    status = CALLBACK_STATUSES[str(body["status"]).upper()]
    reason = str(body.get("reason") or "")
    reason_code = ""
    if status == InterceptUpdate.FAILED:
        # An asynchronous failure usually means the parcel passed the node before the
        # instruction reached it; a message naming a stage says more.
        reason_code = str(reason_from_message(reason, default=FailureReason.MISSED_AT_NODE))
    try:
        occurred_at = parse_local_time(body["time"]) if body.get("time") else None
    except ValueError as exc:
        raise PushRejected(f"kuaidi100 callback: bad time {body.get('time')!r}") from exc
    action = _ACTIONS_BY_TYPE.get(str(body.get("interceptType", "")))
    waybill_no = pick(body, "kuaidinum", "kuaidiNum", protocol="kuaidi100", what="callback")
    task_id = pick(body, "taskId", "taskid", protocol="kuaidi100", what="callback")
    return {
        "waybill_no": str(waybill_no or ""),
        "reference": str(task_id),
        "status": str(status),
        "action": str(action) if action else "",
        "reason_code": reason_code,
        "reason": reason,
        "occurred_at": occurred_at,
    }
