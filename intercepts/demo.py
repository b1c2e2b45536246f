"""Demo data: two shops, a user per role, and a few hundred orders in every stage and state."""

import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from couriers.models import Courier, CourierAccount
from couriers.sandbox import SANDBOX_ACCOUNTS, sandbox_account
from couriers.stages import TERMINAL_STAGES, ParcelStage
from intercepts.models import AfterSale, GoodsCategory, Order, OrderLine, Parcel, TrackingEvent
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


def ensure_sandbox_accounts() -> None:
    """Point the couriers at the sandbox courier (``COURIER_SANDBOX_URL``)."""
    for protocol, (name, codes) in DEMO_ACCOUNTS.items():
        config = sandbox_account(protocol, settings.COURIER_SANDBOX_URL)
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
            callback_url=settings.SITE_URL.rstrip("/") + push_path
        )
        Courier.objects.filter(code__in=codes).update(account=account)


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


@transaction.atomic
def seed_demo(*, seed: int = 20261121) -> dict:
    rng = random.Random(seed)
    couriers = list(Courier.objects.order_by("sort_order"))
    created = {"shops": 0, "orders": 0}
    now = timezone.now()
    stages = list(ParcelStage)
    statuses = list(AfterSale.Status)
    kinds = list(AfterSale.Kind)
    arbitrations = list(AfterSale.Arbitration)
    waybill_counter = 0
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
            paid_at = now - timedelta(hours=rng.randint(30, 24 * 20), minutes=rng.randint(0, 59))
            buyer = rng.choice(NAMES)
            phone = f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}"
            order = Order.objects.create(
                shop=shop,
                order_no=f"{6900 + shop_index}{i:06d}{rng.randint(1000, 9999)}",
                status=Order.Status.SHIPPED,
                buyer_name=buyer,
                buyer_phone=phone,
                paid_at=paid_at,
                created_at=paid_at,
            )
            lines = []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                category = (
                    rng.choice(list(GoodsCategory)) if rng.random() < 0.2 else GoodsCategory.NORMAL
                )
                if code == "demo-tea" and rng.random() < 0.6:
                    category = GoodsCategory.TEA
                lines.append(
                    OrderLine.objects.create(
                        order=order,
                        goods_name=rng.choice(GOODS[category]),
                        category=category,
                        unit_price_fen=rng.choice([1990, 5900, 12900, 29900, 89900, 159900]),
                        quantity=rng.choice([1, 1, 2]),
                    )
                )
            order.total_fen = sum(line.amount_fen for line in lines)
            order.save(update_fields=["total_fen"])
            parcel_count = 2 if len(lines) > 1 and rng.random() < 0.3 else 1
            for p in range(parcel_count):
                waybill_counter += 1
                courier = couriers[(i + p) % len(couriers)]
                stage = stages[(i * 5 + p) % len(stages)]
                carried = lines if parcel_count == 1 else lines[p::parcel_count]
                shipped_at = paid_at + timedelta(hours=rng.randint(1, 20))
                route = _route_for(stage)
                # Spread the history between shipping and now, so nothing lies in the future.
                step = (now - shipped_at) / (len(route) + 1)
                parcel = Parcel.objects.create(
                    shop=shop,
                    order=order,
                    courier=courier,
                    waybill_no=demo_waybill(courier, 10_000 * (shop_index + 1) + waybill_counter),
                    declared_value_fen=sum(line.amount_fen for line in carried),
                    receiver_name=buyer,
                    receiver_phone=phone,
                    receiver_address=f"{rng.choice(CITIES)}幸福路{rng.randint(1, 999)}号",
                    stage=stage,
                    shipped_at=shipped_at,
                    created_at=shipped_at,
                    # Unfinished parcels are asked about at the next poll, so they move on.
                    next_poll_at=None if stage in TERMINAL_STAGES else now,
                )
                parcel.lines.set(carried)
                events = []
                at = shipped_at
                for event_stage, text in route:
                    at += step * rng.uniform(0.6, 1.0)
                    events.append(
                        TrackingEvent(
                            parcel=parcel,
                            occurred_at=at,
                            raw_code=event_stage,
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
            if i % 7 != 6:  # six orders in seven have an after-sale
                AfterSale.objects.create(
                    shop=shop,
                    order=order,
                    kind=kinds[i % len(kinds)],
                    status=statuses[(i // 3) % len(statuses)],
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
    ensure_wallets()
    return created


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
