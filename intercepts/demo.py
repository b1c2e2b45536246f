"""Demo data: two shops, a user per role, and a few hundred orders in every stage and state;
and the demo's traffic (``demo_tick``): new orders and refund requests while it runs.

The seeded parcels agree with the sandbox courier: a waybill's last digits pick the stage the
sandbox starts it in (``couriers.sandbox.start_stage``), so each seeded parcel's number is made
for its stage, and the sandbox's scans, not made-up ones, are its history. A parcel in a stage
the sandbox cannot start in is left as seeded and not asked about.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from couriers.models import Courier, CourierAccount
from couriers.sandbox import SANDBOX_ACCOUNTS, START_STAGES, sandbox_account
from couriers.stages import TERMINAL_STAGES, ParcelStage
from intercepts.models import (
    AfterSale,
    GoodsCategory,
    InterceptPolicy,
    Order,
    OrderLine,
    Parcel,
    Shipment,
    TrackingEvent,
)
from intercepts.services.shipment_checks import shipments_scan_overdue
from intercepts.services.shipping import receiver_key
from shops.models import PLATFORM_CS, PLATFORM_FINANCE, EwaybillAccount, Shop, ShopMembership

# Demo-only logins, printed by `seed_demo` and `make run`.
DEMO_USERS = [
    # username, password, shop code or None, role or group, description
    ("owner", "demo-owner-123", "demo-apparel", ShopMembership.Role.OWNER, "店主 (潮流服饰旗舰店)"),
    (
        "agent",
        "demo-agent-123",
        "demo-apparel",
        ShopMembership.Role.AGENT,
        "售后客服 (潮流服饰旗舰店)",
    ),
    (
        "viewer",
        "demo-viewer-123",
        "demo-apparel",
        ShopMembership.Role.VIEWER,
        "只读 (潮流服饰旗舰店)",
    ),
    ("owner2", "demo-owner2-123", "demo-tea", ShopMembership.Role.OWNER, "店主 (山野茶铺)"),
    ("cs", "demo-cs-123", None, PLATFORM_CS, "平台客服"),
    ("finance", "demo-finance-123", None, PLATFORM_FINANCE, "平台财务"),
    ("admin", "demo-admin-123", None, None, "超级管理员"),
]

SHOPS = [
    ("demo-apparel", "潮流服饰旗舰店", 200),
    ("demo-tea", "山野茶铺", 100),
]

# What each shop mostly sells: general goods, which may be intercepted. Tea itself is excluded
# (JD's rules), so the tea shop sells mostly tea ware, and tea now and then.
SHOP_GOODS = {
    "demo-apparel": ["纯棉T恤", "牛仔裤", "帆布鞋", "双肩包", "保温杯"],
    "demo-tea": ["紫砂壶", "青瓷茶具套装", "竹制茶盘", "玻璃公道杯", "便携旅行茶具"],
}

GOODS = {
    GoodsCategory.NORMAL: ["纯棉T恤", "牛仔裤", "帆布鞋", "双肩包", "保温杯"],
    GoodsCategory.FRESH: ["阳澄湖大闸蟹", "赣南脐橙"],
    GoodsCategory.VIRTUAL: ["视频会员月卡"],
    GoodsCategory.CUSTOMISED: ["定制刻字钢笔"],
    GoodsCategory.JEWELLERY: ["银手镯"],
    GoodsCategory.ANTIQUE: ["民国瓷瓶"],
    GoodsCategory.SECOND_HAND: ["二手相机"],
    GoodsCategory.TEA: ["明前龙井", "安溪铁观音"],
    GoodsCategory.LARGE_APPLIANCE: ["滚筒洗衣机"],
}

# The stages a parcel passes on its way, used to write a plausible tracking history.
ROUTE = [
    (ParcelStage.LABEL_CREATED, "商家已下单，等待揽收"),
    (ParcelStage.PICKED_UP, "快递员已揽收"),
    (ParcelStage.IN_TRANSIT, "快件已到达转运中心"),
    (ParcelStage.AT_DESTINATION_CITY, "快件已到达目的城市"),
    (ParcelStage.AT_DELIVERY_STATION, "快件已到达派件网点"),
    (ParcelStage.OUT_FOR_DELIVERY, "快递员正在派件"),
]
ENDINGS = {
    ParcelStage.AWAITING_COLLECTION: "快件已放入驿站，请凭取件码领取",
    ParcelStage.DELIVERY_FAILED: "派件失败：电话无人接听",
    ParcelStage.DELIVERED: "已签收，签收人：本人",
    ParcelStage.REJECTED: "收件人拒收",
    ParcelStage.INTERCEPTED: "快件已被拦截",
    ParcelStage.REDIRECTING: "快件已改址转寄",
    ParcelStage.RETURNING: "快件退回中",
    ParcelStage.RETURNED: "退件已签收",
    ParcelStage.HANDED_TO_OTHER_CARRIER: "快件已转交其他快递",
    ParcelStage.CUSTOMS: "快件清关中",
    ParcelStage.EXCEPTION: "快件异常：地址不详",
    ParcelStage.CANCELLED: "寄件人已取消发货",
    ParcelStage.LOST: "快件遗失",
    ParcelStage.STALE: "物流信息长时间未更新",
}
CITIES = ["上海市浦东新区", "北京市朝阳区", "广州市天河区", "杭州市西湖区", "成都市武侯区"]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]


def demo_waybill(courier: Courier, n: int) -> str:
    formats = {
        "ZTO": lambda: f"73{n:012d}",
        "YTO": lambda: f"YT{n:013d}",
        "YUNDA": lambda: f"43{n:011d}",
        "STO": lambda: f"77{n:013d}",
        "SF": lambda: f"SF{n:013d}",
        "JD": lambda: f"JDVA{n:011d}",
        "EMS": lambda: f"11{n:011d}",
        "JT": lambda: f"JT{n:013d}",
    }
    return formats[courier.code]()


def waybill_serial(key: int, stage: str) -> int:
    """A serial unique per ``key`` whose last digits make the sandbox courier start the parcel
    in ``stage``: "00" for no tracking, else a last digit of ``START_STAGES``."""
    if stage == ParcelStage.NO_INFO:
        return key * 100
    digit = START_STAGES.index(stage) if stage in START_STAGES else 0
    return key * 100 + 10 + digit


def sandbox_tracks(stage: str) -> bool:
    """Whether the sandbox courier tells this seeded stage, so the parcel is asked about."""
    return stage == ParcelStage.NO_INFO or (stage in START_STAGES and stage not in TERMINAL_STAGES)


def _route_for(stage: str) -> list[tuple[str, str]]:
    codes = [s for s, _ in ROUTE]
    if stage == ParcelStage.NO_INFO:
        return []
    if stage in codes:
        return ROUTE[: codes.index(stage) + 1]
    return [*ROUTE, (stage, ENDINGS[stage])]


# Which demo gateway account serves which courier: the aggregator for the franchise couriers,
# SF direct, and Kdniao (tracking only) for JD and EMS.
DEMO_ACCOUNTS = {
    "kuaidi100": ("沙箱·快递100", ["ZTO", "YTO", "YUNDA", "STO", "JT"]),
    "sf": ("沙箱·顺丰", ["SF"]),
    "kdniao": ("沙箱·快递鸟", ["JD", "EMS"]),
}


def ensure_sandbox_accounts(sandbox_url: str = "", site_url: str = "") -> None:
    """Point the couriers at the sandbox courier (``COURIER_SANDBOX_URL`` unless named), and
    its pushes at us (``SITE_URL`` unless named)."""
    sandbox_url = sandbox_url or settings.COURIER_SANDBOX_URL
    site_url = site_url or settings.SITE_URL
    for protocol, (name, codes) in DEMO_ACCOUNTS.items():
        config = sandbox_account(protocol, sandbox_url)
        account, _created = CourierAccount.objects.update_or_create(
            name=name,
            defaults={
                "protocol": protocol,
                "base_url": config.base_url,
                "requests_per_second": 20,
                "batch_size": 10 if protocol == "sf" else 1,
                **SANDBOX_ACCOUNTS[protocol],
            },
        )
        push_path = reverse("courier-push", args=[account.pk])
        CourierAccount.objects.filter(pk=account.pk).update(
            callback_url=site_url.rstrip("/") + push_path
        )
        Courier.objects.filter(code__in=codes).update(account=account)


def repoint_sandbox_accounts(*, sandbox_url: str, site_url: str) -> bool:
    """Point an already seeded demo at a sandbox and a web server on other ports (``runall``);
    False, touching nothing, where the demo was never seeded."""
    names = [name for name, _codes in DEMO_ACCOUNTS.values()]
    if not CourierAccount.objects.filter(name__in=names).exists():
        return False
    ensure_sandbox_accounts(sandbox_url, site_url)
    return True


# Intercept fees for the demo, in fen, per courier: (return to sender, change of address).
# Published (Douyin): return with ZTO and Yunda 3 yuan, YTO 4 yuan; billing's migration seeds
# those. The rest are the demo's assumptions in the reference's range (a service fee of 0-5
# yuan plus freight): the direct networks a little dearer, and a change of address 1 yuan
# above a return for the new leg. The platform's finance staff set the real ones.
DEMO_FEES = {
    "ZTO": (300, 400),
    "YTO": (400, 500),
    "YUNDA": (300, 400),
    "STO": (300, 400),
    "SF": (500, 600),
    "JD": (500, 600),
    "EMS": (400, 500),
    "JT": (300, 400),
}


def ensure_fee_rules() -> int:
    """A fee rule for every courier and action that has none, added by the demo's finance user
    through billing (from now on); returns how many were added."""
    from billing import services as billing_services
    from billing.models import FeeAction, FeeRule

    finance = User.objects.get(username="finance")
    now = timezone.now()
    added = 0
    for courier in Courier.objects.order_by("sort_order"):
        fees = DEMO_FEES.get(courier.code, (500, 600))
        for action, amount_fen in zip((FeeAction.RETURN, FeeAction.REDIRECT), fees, strict=True):
            if FeeRule.objects.filter(courier=courier, action=action).exists():
                continue
            rule = FeeRule(courier=courier, action=action, valid_from=now, amount_fen=amount_fen)
            billing_services.fee_rule_save(actor=finance, rule=rule)
            added += 1
    return added


def ensure_users() -> list[tuple[str, str, str]]:
    shops = {code: Shop.objects.get(code=code) for code, _, _ in SHOPS}
    printed = []
    for username, password, shop_code, role, description in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": role is None}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        if shop_code:
            ShopMembership.objects.get_or_create(
                user=user, shop=shops[shop_code], defaults={"role": role}
            )
        elif role:
            user.groups.add(Group.objects.get(name=role))
        printed.append((username, password, description))
    return printed


PRICES = [1990, 5900, 12900, 29900, 89900, 159900]
# Where a parcel may be both sent back and sent to a new address, and the sandbox tells it.
READY_STAGES = [ParcelStage.PICKED_UP, ParcelStage.IN_TRANSIT, ParcelStage.AT_DESTINATION_CITY]


@transaction.atomic
def seed_demo(*, seed: int = 20261121) -> dict:
    rng = random.Random(seed)
    couriers = list(Courier.objects.order_by("sort_order"))
    # The couriers whose gateway (Kuaidi100, SF) takes intercepts; Kdniao's (JD, EMS) does not.
    taker_codes = {code for protocol in ("kuaidi100", "sf") for code in DEMO_ACCOUNTS[protocol][1]}
    takers = [courier for courier in couriers if courier.code in taker_codes]
    created = {"shops": 0, "orders": 0}
    now = timezone.now()
    stages = list(ParcelStage)
    statuses = list(AfterSale.Status)
    kinds = list(AfterSale.Kind)
    arbitrations = list(AfterSale.Arbitration)
    waybill_counter = 0
    receipt_days = InterceptPolicy.current().receipt_confirm_days
    for shop_index, (code, name, order_count) in enumerate(SHOPS):
        shop, shop_created = Shop.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "return_contact": "售后仓",
                "return_phone": "021-55550000",
                "return_address": "上海市青浦区华新镇售后仓 1 号门",
            },
        )
        created["shops"] += int(shop_created)
        for courier in couriers:
            # The platform grants each demo shop an e-waybill account with every courier.
            EwaybillAccount.objects.get_or_create(
                shop=shop,
                courier=courier,
                defaults={"account_no": f"{courier.code}-{7001 + shop_index:06d}"},
            )
        if Order.objects.filter(shop=shop).exists():
            continue
        for i in range(order_count):
            has_after_sale = i % 7 != 6  # six orders in seven have an after-sale
            after_sale_status = statuses[(i // 3) % len(statuses)]
            # Two pending refund requests in three are on a parcel still on its way, of goods
            # that may be intercepted, with a courier that takes intercepts: what the merchant
            # can intercept the moment the demo opens (the traffic brings more as these move).
            ready = has_after_sale and after_sale_status == AfterSale.Status.PENDING and i % 3 != 2
            paid_at = now - timedelta(hours=rng.randint(30, 24 * 20), minutes=rng.randint(0, 59))
            buyer = rng.choice(NAMES)
            phone = f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}"
            address = f"{rng.choice(CITIES)}幸福路{rng.randint(1, 999)}号"
            first_shipped_at = paid_at + timedelta(hours=rng.randint(1, 20))
            order = Order.objects.create(
                shop=shop,
                order_no=f"{6900 + shop_index}{i:06d}{rng.randint(1000, 9999)}",
                status=Order.Status.SHIPPED,
                buyer_name=buyer,
                buyer_phone=phone,
                receiver_name=buyer,
                receiver_phone=phone,
                receiver_address=address,
                paid_at=paid_at,
                shipped_at=first_shipped_at,
                receipt_confirm_at=first_shipped_at + timedelta(days=receipt_days),
                created_at=paid_at,
            )
            lines = []
            for _ in range(1 if ready else rng.choice([1, 1, 1, 2, 3])):
                category = (
                    rng.choice(list(GoodsCategory))
                    if rng.random() < 0.2 and not ready
                    else GoodsCategory.NORMAL
                )
                if code == "demo-tea" and category != GoodsCategory.NORMAL and rng.random() < 0.5:
                    category = GoodsCategory.TEA
                names = SHOP_GOODS[code] if category == GoodsCategory.NORMAL else GOODS[category]
                lines.append(
                    OrderLine.objects.create(
                        order=order,
                        goods_name=rng.choice(names),
                        category=category,
                        unit_price_fen=rng.choice(
                            PRICES[:4] if ready else PRICES  # within the value cap if ready
                        ),
                        quantity=1 if ready else rng.choice([1, 1, 2]),
                    )
                )
            order.total_fen = sum(line.amount_fen for line in lines)
            order.save(update_fields=["total_fen"])
            parcel_count = 2 if len(lines) > 1 and rng.random() < 0.3 else 1
            for p in range(parcel_count):
                waybill_counter += 1
                if ready:
                    courier = takers[i % len(takers)]
                    stage = READY_STAGES[i % len(READY_STAGES)]
                else:
                    courier = couriers[(i + p) % len(couriers)]
                    stage = stages[(i * 5 + p) % len(stages)]
                carried = lines if parcel_count == 1 else lines[p::parcel_count]
                shipped_at = first_shipped_at + timedelta(hours=p)
                route = _route_for(stage)
                # Spread the history between shipping and now, so nothing lies in the future.
                step = (now - shipped_at) / (len(route) + 1)
                parcel = Parcel.objects.create(
                    shop=shop,
                    order=order,
                    courier=courier,
                    waybill_no=demo_waybill(
                        courier, waybill_serial(10_000 * (shop_index + 1) + waybill_counter, stage)
                    ),
                    declared_value_fen=sum(line.amount_fen for line in carried),
                    receiver_name=buyer,
                    receiver_phone=phone,
                    receiver_address=address,
                    stage=stage,
                    shipped_at=shipped_at,
                    created_at=shipped_at,
                    # What the sandbox tells is asked about at the next poll, so it moves on.
                    next_poll_at=now if sandbox_tracks(stage) else None,
                )
                parcel.lines.set(carried)
                Shipment.objects.create(
                    shop=shop,
                    order=order,
                    parcel=parcel,
                    receiver_key=receiver_key(phone, address),
                    receiver_address=address,
                    channel=Shipment.Channel.WORKBENCH,
                    shipped_at=shipped_at,
                )
                if sandbox_tracks(stage):
                    continue  # its history is the sandbox's, read at the first poll
                events = []
                at = shipped_at
                for event_stage, text in route:
                    at += step * rng.uniform(0.6, 1.0)
                    events.append(
                        TrackingEvent(
                            parcel=parcel,
                            occurred_at=at,
                            raw_code="",  # made up here: no courier ever sent a code
                            stage=event_stage,
                            description=text,
                            location=rng.choice(CITIES)[:3],
                            source="demo",
                        )
                    )
                TrackingEvent.objects.bulk_create(events)
                if events:
                    parcel.picked_up_at = events[1].occurred_at if len(events) > 1 else None
                    if stage == ParcelStage.DELIVERED:
                        parcel.signed_at = events[-1].occurred_at
                    parcel.save(update_fields=["picked_up_at", "signed_at"])
            if has_after_sale:
                AfterSale.objects.create(
                    shop=shop,
                    order=order,
                    kind=kinds[i % len(kinds)],
                    status=after_sale_status,
                    arbitration=arbitrations[(i // 2) % len(arbitrations)]
                    if i % 4 == 0
                    else AfterSale.Arbitration.NONE,
                    refund_amount_fen=order.total_fen,
                    reason=rng.choice(["不想要了", "拍错了", "七天无理由", "商品与描述不符"]),
                    created_at=min(paid_at + timedelta(hours=rng.randint(20, 40)), now),
                )
            created["orders"] += 1
    ensure_sandbox_accounts()
    created["users"] = ensure_users()
    ensure_fee_rules()
    ensure_wallets()
    created["caught"] = ensure_caught_parcels()
    created["awaiting_shipment"] = ensure_awaiting_shipment()
    # The platform's shipment checks over the seeded history: parcels stuck 6 and 10 days.
    shipments_scan_overdue(now=now)
    return created


# Orders paid and not yet shipped, to ship from their page or by a batch upload; the last of
# them goes to another receiver on an existing waybill, flagged as a suspected fake shipment.
AWAITING_PREFIX = "66"
AWAITING_COUNT = 4


def ensure_awaiting_shipment() -> int:
    from intercepts.services.orders import order_receive
    from intercepts.services.shipping import ship_order

    made = 0
    for shop_index, (code, _name, _count) in enumerate(SHOPS):
        shop = Shop.objects.filter(code=code).first()
        owner = _shop_owner(shop) if shop else None
        if (
            owner is None
            or Order.objects.filter(
                shop=shop, order_no__startswith=f"{AWAITING_PREFIX}{shop_index}"
            ).exists()
        ):
            continue
        orders = [
            order_receive(
                shop=shop,
                order_no=f"{AWAITING_PREFIX}{shop_index}0000{n:02d}",
                buyer_name=NAMES[n],
                buyer_phone=f"1380000{shop_index}{n:03d}",
                receiver_name=NAMES[n],
                receiver_phone=f"1380000{shop_index}{n:03d}",
                receiver_address=f"{CITIES[n]}人民路{10 + n}号",
                # Paid days ago: the sandbox dates a new waybill's earlier scans back by its
                # stages' usual times, and a pickup before the payment is a sign of fake
                # shipping the checks would rightly raise.
                paid_at=timezone.now() - timedelta(days=3, hours=n),
                lines=[
                    {
                        "goods_name": SHOP_GOODS[code][n % len(SHOP_GOODS[code])],
                        "unit_price_fen": PRICES[n % 4],
                        "quantity": 1,
                    }
                ],
            )
            for n in range(1, AWAITING_COUNT + 1)
        ]
        made += len(orders)
        shared = (
            Parcel.objects.filter(shop=shop, stage=ParcelStage.IN_TRANSIT)
            .select_related("courier")
            .order_by("pk")
            .first()
        )
        if shared is not None:
            ship_order(
                actor=owner,
                order=orders[-1],
                courier=shared.courier,
                waybill_no=shared.waybill_no,
                channel=Shipment.Channel.WORKBENCH,
            )
    return made


DEMO_PIN = "123456"
DEMO_FUNDS_FEN = 500_00


def ensure_wallets() -> None:
    """Each demo shop's wallet opened and topped up once, with a payment password, so that its
    merchant can intercept at once (the agreement is left for the first intercept to sign)."""
    from billing import services as billing_services
    from billing.models import LedgerTransaction, PaymentPassword
    from billing.validators import normalise_reference

    finance = User.objects.get(username="finance")
    for shop in Shop.objects.filter(code__in=[code for code, _, _ in SHOPS]):
        owner = (
            User.objects.filter(
                shop_memberships__shop=shop, shop_memberships__role=ShopMembership.Role.OWNER
            )
            .order_by("pk")
            .first()
        )
        if owner is None:
            continue
        wallet = billing_services.wallet_open(actor=owner, shop_id=shop.pk)
        reference = normalise_reference(f"DEMO-{shop.code}")
        # In any case: databases seeded before bank serials were kept in upper case.
        top_ups = LedgerTransaction.objects.filter(kind="top_up", reference__iexact=reference)
        if not top_ups.exists():
            billing_services.wallet_top_up(
                actor=finance,
                wallet=wallet,
                amount_fen=DEMO_FUNDS_FEN,
                external_reference=reference,
                note="演示充值",
            )
        if not PaymentPassword.objects.filter(shop_id=shop.pk).exists():
            billing_services.payment_password_set(actor=owner, shop_id=shop.pk, pin=DEMO_PIN)


# Parcels intercepted before the demo began, on their way back: (order number suffix, days since
# the intercept succeeded, goods, price). The first is overdue, so the record suggests a claim.
CAUGHT = [("01", 9, "羊绒大衣", 89900), ("02", 1, "真丝围巾", 29900)]
CAUGHT_PREFIX = "68"


def ensure_caught_parcels() -> int:
    """Two intercepts per demo shop that succeeded before the demo began, their parcels still
    on the way back, so that a claim can be filed at once; one past the policy's days, which
    the claim watch then marks. Made through the intercept services (the fee charged from the
    wallet); only the success time is set back, as the demo's history is older than its run."""
    from intercepts.models import InterceptEvent, InterceptRequest
    from intercepts.services.claim_watch import claims_suggest_overdue
    from intercepts.services.intercept_requests import intercept_create, intercept_set_status

    now = timezone.now()
    made = 0
    courier = Courier.objects.get(code="ZTO")
    for shop_index, (code, _name, _count) in enumerate(SHOPS):
        shop = Shop.objects.filter(code=code).first()
        owner = _shop_owner(shop) if shop else None
        if owner is None:
            continue
        for suffix, days, goods, price_fen in CAUGHT:
            order_no = f"{CAUGHT_PREFIX}{shop_index}0000{suffix}"
            if Order.objects.filter(shop=shop, order_no=order_no).exists():
                continue
            succeeded_at = now - timedelta(days=days)
            paid_at = succeeded_at - timedelta(days=2)
            order = Order.objects.create(
                shop=shop,
                order_no=order_no,
                status=Order.Status.SHIPPED,
                buyer_name="周敏",
                buyer_phone="13900001111",
                receiver_name="周敏",
                receiver_phone="13900001111",
                receiver_address="杭州市西湖区文三路90号",
                total_fen=price_fen,
                paid_at=paid_at,
                shipped_at=paid_at + timedelta(hours=6),
                created_at=paid_at,
            )
            line = OrderLine.objects.create(order=order, goods_name=goods, unit_price_fen=price_fen)
            parcel = Parcel.objects.create(
                shop=shop,
                order=order,
                courier=courier,
                waybill_no=_free_waybill(courier, ParcelStage.RETURNING),
                declared_value_fen=price_fen,
                receiver_name="周敏",
                receiver_phone="13900001111",
                receiver_address="杭州市西湖区文三路90号",
                stage=ParcelStage.RETURNING,
                shipped_at=paid_at + timedelta(hours=6),
                created_at=paid_at + timedelta(hours=6),
            )
            parcel.lines.set([line])
            Shipment.objects.create(
                shop=shop,
                order=order,
                parcel=parcel,
                receiver_key=receiver_key(order.receiver_phone, order.receiver_address),
                receiver_address=order.receiver_address,
                channel=Shipment.Channel.WORKBENCH,
                shipped_at=parcel.shipped_at,
            )
            TrackingEvent.objects.bulk_create(
                TrackingEvent(
                    parcel=parcel,
                    occurred_at=at,
                    raw_code="",  # made up here: no courier ever sent a code
                    stage=stage,
                    description=text,
                    location="杭州",
                    source="demo",
                )
                for stage, text, at in [
                    (ParcelStage.PICKED_UP, "快件已揽收", paid_at + timedelta(hours=8)),
                    (
                        ParcelStage.IN_TRANSIT,
                        "快件已发往杭州转运中心",
                        paid_at + timedelta(hours=20),
                    ),
                    (ParcelStage.INTERCEPTED, "快件已拦截，将退回寄件人", succeeded_at),
                    (ParcelStage.RETURNING, "快件退回中", succeeded_at + timedelta(hours=5)),
                ]
            )
            after_sale = AfterSale.objects.create(
                shop=shop,
                order=order,
                kind=AfterSale.Kind.REFUND_ONLY,
                refund_amount_fen=price_fen,
                reason="不想要了",
                created_at=paid_at + timedelta(days=1),
            )
            intercept = intercept_create(
                actor=owner,
                parcel=parcel,
                action=InterceptRequest.Action.RETURN,
                channel=InterceptRequest.Channel.WORKBENCH,
                after_sale=after_sale,
            )
            for status in ("submitted", "accepted", "succeeded"):
                intercept_set_status(
                    intercept=intercept, to_status=status, source=InterceptEvent.Source.SYSTEM
                )
            requested_at = succeeded_at - timedelta(hours=1)
            InterceptRequest.objects.filter(pk=intercept.pk).update(
                succeeded_at=succeeded_at, created_at=requested_at, updated_at=succeeded_at
            )
            # Its history as it would have been written then (the ledger keeps the real time
            # of the fee's postings: it is append-only).
            intercept.events.exclude(to_status="succeeded").update(created_at=requested_at)
            intercept.events.filter(to_status="succeeded").update(created_at=succeeded_at)
            made += 1
    claims_suggest_overdue(now=now)
    return made


# The demo's pace: one simulated minute per real second on the sandbox courier (``runall``),
# so a parcel just picked up stays interceptable for about twenty minutes; and its traffic, a
# step a minute.
DEMO_HOURS_PER_SECOND = 1 / 60
DEMO_TICK_SECONDS = 60.0
# Order numbers of the traffic's orders start with this, apart from the seeded ones.
TRAFFIC_PREFIX = "77"
# The stages the traffic's parcels start in at the sandbox (their waybills' last digit):
# mostly just picked up, now and then still waiting for the courier or already under way.
TRAFFIC_START_STAGES = [
    ParcelStage.PICKED_UP,
    ParcelStage.PICKED_UP,
    ParcelStage.IN_TRANSIT,
    ParcelStage.LABEL_CREATED,
]
TRAFFIC_PAID_BEFORE = timedelta(hours=12)
REFUND_REASONS = ["不想要了", "拍错了", "七天无理由", "地址填错了", "买贵了"]


def _shop_owner(shop: Shop) -> User | None:
    return (
        User.objects.filter(
            shop_memberships__shop=shop, shop_memberships__role=ShopMembership.Role.OWNER
        )
        .order_by("pk")
        .first()
    )


def _free_waybill(courier: Courier, stage: str) -> str:
    key = 100_000 + Parcel.objects.count()
    while Parcel.objects.filter(
        waybill_no=(waybill := demo_waybill(courier, waybill_serial(key, stage)))
    ).exists():
        key += 1
    return waybill


def demo_tick() -> dict[str, int]:
    """One step of the demo's traffic. For each demo shop: a buyer asks for a refund (refund
    only, awaiting the merchant) on the order that shipped a step earlier, whose parcel is on
    its way by now; and a new order comes in and ships in one parcel, the couriers in turn.

    All through the services, as the platform's orders and the merchant's parcels are, so the
    rules hold and the parcel's tracking is asked for. Returns what was made.
    """
    from intercepts.services.orders import after_sale_receive, order_receive
    from intercepts.services.shipping import ship_order

    made = {"orders": 0, "after_sales": 0}
    couriers = list(Courier.objects.filter(account__isnull=False).order_by("sort_order"))
    for shop_index, (code, _name, _count) in enumerate(SHOPS):
        shop = Shop.objects.filter(code=code).first()
        owner = _shop_owner(shop) if shop else None
        if owner is None or not couriers:
            continue
        waiting = (
            Order.objects.filter(
                shop=shop, order_no__startswith=TRAFFIC_PREFIX, after_sales__isnull=True
            )
            .order_by("-created_at", "-id")
            .first()
        )
        step = Order.objects.filter(shop=shop, order_no__startswith=TRAFFIC_PREFIX).count()
        rng = random.Random(f"{code}:{step}")
        if waiting is not None:
            after_sale_receive(
                order=waiting,
                kind=AfterSale.Kind.REFUND_ONLY,
                reason=rng.choice(REFUND_REASONS),
            )
            made["after_sales"] += 1
        now = timezone.now()
        # Paid half a day ago and shipped now: the courier's history of a parcel that starts
        # under way (label printed, picked up) reaches up to about 11 hours back, never before
        # the order.
        paid_at = now - TRAFFIC_PAID_BEFORE
        buyer = rng.choice(NAMES)
        phone = f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}"
        with transaction.atomic():
            order = order_receive(
                shop=shop,
                order_no=f"{TRAFFIC_PREFIX}{shop_index}{now:%y%m%d%H%M%S}{step % 1000:03d}",
                buyer_name=buyer,
                buyer_phone=phone,
                receiver_name=buyer,
                receiver_phone=phone,
                receiver_address=f"{rng.choice(CITIES)}幸福路{rng.randint(1, 999)}号",
                paid_at=paid_at,
                lines=[
                    {
                        "goods_name": rng.choice(SHOP_GOODS[code]),
                        "category": GoodsCategory.NORMAL,
                        "unit_price_fen": rng.choice([1990, 5900, 12900, 29900, 89900]),
                        "quantity": 1,
                    }
                ],
            )
            courier = couriers[(step + shop_index) % len(couriers)]
            stage = TRAFFIC_START_STAGES[step % len(TRAFFIC_START_STAGES)]
            # Shipped as a merchant ships: under the platform's rules, to the order's receiver.
            ship_order(
                actor=owner,
                order=order,
                courier=courier,
                waybill_no=_free_waybill(courier, stage),
                channel=Shipment.Channel.WORKBENCH,
                now=now,
            )
        made["orders"] += 1
    return made
