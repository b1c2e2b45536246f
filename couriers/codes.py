"""Each courier protocol's tracking codes mapped onto the unified ``ParcelStage``.

Follows the reference sheet §7.1, with the code lists of §1.5 (Kdniao), §2.3 (kuaidi100) and
§3.1 (SF route opCodes). The tables are keyed by the code as a string because the protocols send
the same code as a JSON string or number depending on the endpoint; the lookup functions accept
either. Where §7.1 is silent or contradicts itself, the comment next to the code says what was
chosen and why.

Codes whose meaning depends on history (Kdniao "4xx after 413" is RETURNING, SF opCode 31 at the
destination hub is AT_DESTINATION_CITY) cannot be decided from one code; they map to their
context-free stage here and the caller refines them with the parcel's previous stage.
"""

from couriers.stages import ParcelStage

S = ParcelStage  # a short alias keeps the tables below readable

# Kdniao basic `State` (§1.5). Paying users get StateEx too, which wins when it is known.
KDNIAO_STATE_STAGES: dict[str, ParcelStage] = {
    "0": S.NO_INFO,  # 无轨迹
    "1": S.PICKED_UP,  # 已揽收
    "2": S.IN_TRANSIT,  # 在途中
    "3": S.DELIVERED,  # 签收
    "4": S.EXCEPTION,  # 问题件
    "5": S.REDIRECTING,  # 转寄
    "6": S.CUSTOMS,  # 清关
}

# Kdniao `StateEx` (§1.5, the value-added state); its one-digit codes mean the same as `State`.
KDNIAO_STATE_EX_STAGES: dict[str, ParcelStage] = {
    **KDNIAO_STATE_STAGES,
    "10": S.LABEL_CREATED,  # 待揽件
    "201": S.AT_DESTINATION_CITY,  # 到达派件城市
    "202": S.OUT_FOR_DELIVERY,  # 派件中
    "204": S.IN_TRANSIT,  # 到达转运中心
    "205": S.AT_DELIVERY_STATION,  # 到达派件网点
    "206": S.IN_TRANSIT,  # 寄件网点发件
    "211": S.AWAITING_COLLECTION,  # 已放入快递柜或驿站
    "301": S.DELIVERED,  # 正常签收
    "302": S.DELIVERED,  # 异常后最终签收
    "304": S.DELIVERED,  # 代收签收
    "311": S.DELIVERED,  # 快递柜或驿站签收
    # §7.1 lists 401 and 403 in both the EXCEPTION and the STALE rows. EXCEPTION is chosen so that
    # they agree with kuaidi100's 202 超时未更新, which §7.1 puts in EXCEPTION only; STALE is left
    # to the signals that are not codes (kuaidi100 push status=abort, Kdniao "三天无轨迹").
    "401": S.EXCEPTION,  # 发货无信息
    "402": S.EXCEPTION,  # 超时未签收
    "403": S.EXCEPTION,  # 超时未更新
    "404": S.REJECTED,  # 拒收(退件)
    "405": S.DELIVERY_FAILED,  # 派件异常
    "406": S.RETURNED,  # 退货签收
    "407": S.RETURNING,  # 退货未签收
    "412": S.AWAITING_COLLECTION,  # 快递柜/驿站超时未取: still waiting, only for too long
    "413": S.INTERCEPTED,  # 单号已拦截
    "414": S.EXCEPTION,  # 破损
    "415": S.CANCELLED,  # 客户取消发货
    "416": S.DELIVERY_FAILED,  # 无法联系
    "417": S.EXCEPTION,  # 配送延迟
    # Not in §7.1. The courier took the parcel back out of the locker (for a redelivery or an
    # intercept, §7.4): it is at the last mile in the courier's hands again, so the closest stage
    # is the delivery station, neither awaiting collection nor out for delivery yet.
    "418": S.AT_DELIVERY_STATION,  # 快件取出
    "419": S.DELIVERY_FAILED,  # 重新派送
    "420": S.DELIVERY_FAILED,  # 收货地址不详细
    "421": S.DELIVERY_FAILED,  # 收件人电话错误
    "422": S.EXCEPTION,  # 错分件
    "423": S.EXCEPTION,  # 超区件
    "601": S.CUSTOMS,  # 待清关
    "602": S.CUSTOMS,  # 清关中
    "603": S.CUSTOMS,  # 已清关
    "604": S.CUSTOMS,  # 清关异常
}

# kuaidi100 `state` (§2.3): basic codes, and the advanced ones sent with resultv2=4 or 6.
KUAIDI100_STAGES: dict[str, ParcelStage] = {
    # Basic.
    "0": S.IN_TRANSIT,  # 在途
    "1": S.PICKED_UP,  # 揽收
    "2": S.EXCEPTION,  # 疑难
    "3": S.DELIVERED,  # 签收
    "4": S.RETURNED,  # 退签: the return was signed for by the sender
    "5": S.OUT_FOR_DELIVERY,  # 派件
    "6": S.RETURNING,  # 退回: on its way back, not yet signed
    "7": S.HANDED_TO_OTHER_CARRIER,  # 转投/转单
    "8": S.CUSTOMS,  # 清关
    "10": S.CUSTOMS,  # 待清关
    "11": S.CUSTOMS,  # 清关中
    "12": S.CUSTOMS,  # 已清关
    "13": S.CUSTOMS,  # 清关异常
    "14": S.REJECTED,  # 拒签
    # Advanced, under 1 揽收.
    "101": S.LABEL_CREATED,  # 已下单
    "102": S.LABEL_CREATED,  # 待揽收
    "103": S.PICKED_UP,  # 已揽收
    # Advanced, under 0 在途.
    "1001": S.AT_DESTINATION_CITY,  # 到达派件城市
    "1002": S.IN_TRANSIT,  # 干线
    "1003": S.REDIRECTING,  # 转递 (to a new address)
    # Advanced, under 5 派件.
    "501": S.AWAITING_COLLECTION,  # 投柜或驿站
    # Advanced, under 3 签收.
    "301": S.DELIVERED,  # 本人签收
    "302": S.DELIVERED,  # 派件异常后签收
    "303": S.DELIVERED,  # 代签
    "304": S.DELIVERED,  # 投柜或站签收
    # Advanced, under 4 退签: the sender's order was voided, not a returned parcel.
    "401": S.CANCELLED,  # 已销单
    # Advanced, under 2 疑难 (the 2xx list is third-party, §2.3).
    "201": S.EXCEPTION,  # 超时未签收
    "202": S.EXCEPTION,  # 超时未更新 (§7.1 EXCEPTION row, not STALE)
    "203": S.REJECTED,  # 拒收
    "204": S.DELIVERY_FAILED,  # 派件异常
    "205": S.AWAITING_COLLECTION,  # 柜/驿站超时未取
    "206": S.DELIVERY_FAILED,  # 无法联系
    "207": S.EXCEPTION,  # 超区
    "208": S.EXCEPTION,  # 滞留
    "209": S.EXCEPTION,  # 破损
    "210": S.CANCELLED,  # 销单 (sender cancelled)
}

# SF route opCodes (§3.1, third-party and partly inferred; §7.1 marks the SF column [INF]).
# Only the codes with a known meaning are listed: 607, 123 and 99 appear in §3.1 without one, so
# they are left out and map to None like any other unknown code.
SF_STAGES: dict[str, ParcelStage] = {
    "50": S.PICKED_UP,  # 收件
    "54": S.PICKED_UP,  # 收件 (揽收)
    "30": S.IN_TRANSIT,  # 分拣/装车
    # 到达: also the destination-hub arrival, which the opCode alone cannot tell apart.
    "31": S.IN_TRANSIT,
    "36": S.IN_TRANSIT,  # 离开
    "130": S.AT_DELIVERY_STATION,  # 到达目的网点
    "44": S.OUT_FOR_DELIVERY,  # 派件中
    "80": S.DELIVERED,  # 已签收
    "8000": S.DELIVERED,  # 结单
    # §7.1 lists 631 and 648 under INTERCEPTED as well; the more specific outcome is used.
    "631": S.RETURNING,  # 退回 related [INF]
    "648": S.REDIRECTING,  # 转寄 related [INF]
}


# Damage codes, per protocol: the scans that say the goods were broken (reference sheet §1.5,
# Kdniao StateEx 414 破损; §2.3, kuaidi100 209 破损). Both map to EXCEPTION above, among codes
# that only mean a delay or a wrong sort, so a claim check reads the raw code. SF publishes none.
DAMAGE_CODES: dict[str, frozenset[str]] = {
    "kdniao": frozenset({"414"}),
    "kuaidi100": frozenset({"209"}),
}
DAMAGE_RAW_CODES: frozenset[str] = frozenset().union(*DAMAGE_CODES.values())


def _code(value: str | int | None) -> str:
    # Protocols send codes as JSON numbers or strings, sometimes padded with spaces.
    if value is None:
        return ""
    return str(value).strip()


def _unknown_or_empty(*codes: str) -> ParcelStage:
    # An empty or zero code means nothing happened yet; anything else we cannot read means
    # something did happen, so it surfaces as an exception for a person to look at.
    if any(code not in ("", "0") for code in codes):
        return S.EXCEPTION
    return S.NO_INFO


def kdniao_stage(state: str | int | None, state_ex: str | int | None) -> ParcelStage:
    """Stage from Kdniao's `State` and `StateEx`; StateEx wins when known and past NO_INFO.

    An unknown StateEx falls back to State. When neither says more than "no tracking", the stage
    is NO_INFO if both are empty or 0, and EXCEPTION if either is a code this table lacks.
    """
    state, state_ex = _code(state), _code(state_ex)
    # A StateEx of 0 next to a State with content is ignored: StateEx adds detail, not absence.
    for code, table in ((state_ex, KDNIAO_STATE_EX_STAGES), (state, KDNIAO_STATE_STAGES)):
        stage = table.get(code)
        if stage is not None and stage != S.NO_INFO:
            return stage
    return _unknown_or_empty(state, state_ex)


def kuaidi100_stage(state: str | int | None) -> ParcelStage:
    """Stage from kuaidi100's basic (0–14) or advanced (resultv2) `state`.

    Empty → NO_INFO; an unknown code → EXCEPTION rather than a guess from its parent family,
    since a wrong guess could be terminal (4xx → RETURNED) and stop the tracking.
    """
    code = _code(state)
    stage = KUAIDI100_STAGES.get(code)
    return stage if stage is not None else _unknown_or_empty(code)


def sf_stage(op_code: str | int | None) -> ParcelStage | None:
    """Stage from an SF route opCode, or None for a code not in SF_STAGES.

    SF routes carry many operational scans besides the listed ones; None tells the caller to keep
    the parcel's previous stage instead of moving it on an unread scan.
    """
    return SF_STAGES.get(_code(op_code))
