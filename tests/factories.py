"""factory_boy factories for the core records."""

import itertools

import factory
from django.contrib.auth.models import User

from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.demo import demo_waybill
from intercepts.models import AfterSale, Order, OrderLine, Parcel
from shops.models import Shop, ShopMembership

# Far from the demo's numbers (a waybill names one parcel), with the same last digits.
_waybills = itertools.count(500_000_001)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("pw-for-tests-123")


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    name = factory.Sequence(lambda n: f"测试店铺{n}")
    code = factory.Sequence(lambda n: f"shop-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShopMembership

    user = factory.SubFactory(UserFactory)
    shop = factory.SubFactory(ShopFactory)
    role = ShopMembership.Role.OWNER


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    shop = factory.SubFactory(ShopFactory)
    order_no = factory.Sequence(lambda n: f"69{n:010d}")
    status = Order.Status.SHIPPED
    buyer_name = "张三"
    buyer_phone = "13812341234"
    total_fen = 12900


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    goods_name = "纯棉T恤"
    unit_price_fen = 12900
    quantity = 1


def _courier(code: str = "ZTO") -> Courier:
    return Courier.objects.get(code=code)


class ParcelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Parcel

    order = factory.SubFactory(OrderFactory)
    shop = factory.SelfAttribute("order.shop")
    courier = factory.LazyFunction(_courier)
    waybill_no = factory.LazyAttribute(lambda o: demo_waybill(o.courier, next(_waybills)))
    declared_value_fen = 12900
    receiver_name = "张三"
    receiver_phone = "13812341234"
    receiver_address = "上海市浦东新区幸福路1号"
    stage = ParcelStage.IN_TRANSIT


class AfterSaleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AfterSale

    order = factory.SubFactory(OrderFactory)
    shop = factory.SelfAttribute("order.shop")
    kind = AfterSale.Kind.REFUND_ONLY
    status = AfterSale.Status.PENDING
    refund_amount_fen = 12900


def make_after_sale(shop, **parcel_kwargs):
    after_sale = AfterSaleFactory(order__shop=shop, shop=shop)
    line = OrderLineFactory(order=after_sale.order)
    parcel = ParcelFactory(order=after_sale.order, **parcel_kwargs)
    parcel.lines.set([line])
    return after_sale, parcel


def list_page_queries(client, url, params=None) -> list[dict]:
    """The queries of one list page, which must answer 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return ctx.captured_queries


def sandbox_served(sandbox, protocol: str, codes, **fields):
    """A gateway account at the sandbox courier, serving the couriers with these codes."""
    from couriers.models import Courier, CourierAccount
    from couriers.sandbox import SANDBOX_ACCOUNTS, sandbox_account

    config = sandbox_account(protocol, sandbox.url)
    account = CourierAccount.objects.create(
        name=f"sandbox {protocol} {'/'.join(codes)}",
        protocol=protocol,
        base_url=config.base_url,
        **{**SANDBOX_ACCOUNTS[protocol], **fields},
    )
    Courier.objects.filter(code__in=codes).update(account=account)
    return account


def make_intercept(actor, parcel, after_sale, *statuses):
    """A return-to-sender intercept opened through the service (its fee held), then moved
    through ``statuses`` as the courier's answers would move it."""
    from intercepts.models import InterceptEvent, InterceptRequest
    from intercepts.services.intercept_requests import intercept_create, intercept_set_status

    intercept = intercept_create(
        actor=actor,
        parcel=parcel,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=after_sale,
    )
    for status in statuses:
        intercept_set_status(
            intercept=intercept, to_status=status, source=InterceptEvent.Source.COURIER_ANSWER
        )
    return intercept
