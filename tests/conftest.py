"""The fixed cast for permission tests and a small world of two shops.

Cast: ``owner`` and ``agent`` and ``viewer`` of shop A, ``other`` (owner of shop B), ``cs``
(platform customer service), ``finance`` (platform finance) and the anonymous visitor; and
``finance2``, a second finance user, for what two of them must decide.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group

from intercepts.models import PLATFORM_CS, PLATFORM_FINANCE, ShopMembership
from tests.factories import (
    AfterSaleFactory,
    MembershipFactory,
    OrderLineFactory,
    ParcelFactory,
    ShopFactory,
    UserFactory,
)


@dataclass
class World:
    shop_a: object
    shop_b: object
    owner: object
    agent: object
    viewer: object
    other: object
    cs: object
    finance: object
    after_sale_a: object
    after_sale_b: object
    parcel_a: object
    parcel_b: object

    def user(self, name: str):
        return None if name == "anonymous" else getattr(self, name)


def make_after_sale(shop, **parcel_kwargs):
    after_sale = AfterSaleFactory(order__shop=shop, shop=shop)
    line = OrderLineFactory(order=after_sale.order)
    parcel = ParcelFactory(order=after_sale.order, **parcel_kwargs)
    parcel.lines.set([line])
    return after_sale, parcel


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The cast logs in hundreds of times; real hashing would make that minutes of CPU.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def list_page_queries(client, url, params=None) -> list[dict]:
    """The queries of one list page, which must answer 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return ctx.captured_queries


@pytest.fixture
def world(db) -> World:
    shop_a = ShopFactory(name="甲店", code="shop-a")
    shop_b = ShopFactory(name="乙店", code="shop-b")
    owner = MembershipFactory(user__username="owner", shop=shop_a).user
    agent = MembershipFactory(
        user__username="agent", shop=shop_a, role=ShopMembership.Role.AGENT
    ).user
    viewer = MembershipFactory(
        user__username="viewer", shop=shop_a, role=ShopMembership.Role.VIEWER
    ).user
    other = MembershipFactory(user__username="other", shop=shop_b).user
    cs = UserFactory(username="cs")
    cs.groups.add(Group.objects.get(name=PLATFORM_CS))
    finance = UserFactory(username="finance")
    finance.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    after_sale_a, parcel_a = make_after_sale(shop_a)
    after_sale_b, parcel_b = make_after_sale(shop_b)
    return World(
        shop_a=shop_a,
        shop_b=shop_b,
        owner=owner,
        agent=agent,
        viewer=viewer,
        other=other,
        cs=cs,
        finance=finance,
        after_sale_a=after_sale_a,
        after_sale_b=after_sale_b,
        parcel_a=parcel_a,
        parcel_b=parcel_b,
    )


@pytest.fixture
def finance2(world):
    """A second platform finance user: a large top-up or adjustment needs two."""
    user = UserFactory(username="finance2")
    user.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    return user


@pytest.fixture
def login(client):
    """Log the client in as one of the cast (or stay anonymous) and return it."""

    def _login(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return _login


@pytest.fixture(autouse=True)
def celery_eager():
    """Run queued tasks in the calling thread (the tasks' own code, not a stand-in), so no test
    leaves messages on a real broker."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


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
