"""Query-count guards: every changelist costs the same few queries whatever its page size."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intercepts.models import AfterSale, Order, Parcel
from shops.models import Shop
from tests.factories import list_page_queries, make_after_sale

CHANGELISTS = [
    (AfterSale, "admin:intercepts_aftersale_changelist"),
    (Order, "admin:intercepts_order_changelist"),
    (Parcel, "admin:intercepts_parcel_changelist"),
    (Shop, "admin:shops_shop_changelist"),
]
MAX_QUERIES = 10


def _count(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _counts(client, url, params=None) -> int:
    return len(list_page_queries(client, url, params))


@pytest.fixture
def busy_world(world):
    # Enough rows for full pages at both sizes, some with two parcels.
    for i in range(30):
        after_sale, _ = make_after_sale(world.shop_a)
        if i % 3 == 0:
            make_second = after_sale.order
            from tests.factories import ParcelFactory

            ParcelFactory(order=make_second, courier=world.parcel_a.courier)
    return world


@pytest.mark.parametrize(("model", "route"), CHANGELISTS, ids=[r for _, r in CHANGELISTS])
@pytest.mark.parametrize("who", ["owner", "cs"])
def test_changelist_queries_do_not_grow_with_page_size(busy_world, login, model, route, who):
    client = login(busy_world.user(who))
    url = reverse(route)
    model_admin = admin.site._registry[model]
    original = model_admin.list_per_page
    try:
        model_admin.list_per_page = 5
        small = _counts(client, url)
        model_admin.list_per_page = 25
        large = _counts(client, url)
    finally:
        model_admin.list_per_page = original
    assert small == large
    assert large <= MAX_QUERIES


@pytest.mark.parametrize(
    "route",
    [
        "admin:couriers_courier_changelist",
        "admin:auth_user_changelist",
        "admin:auth_group_changelist",
    ],
)
def test_platform_changelists_stay_cheap(busy_world, login, route):
    from tests.factories import UserFactory

    admin_user = UserFactory(username="root", is_superuser=True)
    client = login(admin_user)
    assert _count(client, reverse(route)) <= MAX_QUERIES


@pytest.mark.parametrize("who", ["owner", "cs"])
def test_filtered_and_searched_after_sales_stay_cheap(busy_world, login, who):
    client = login(busy_world.user(who))
    url = reverse("admin:intercepts_aftersale_changelist")
    parcel = busy_world.parcel_a
    for params in (
        {"status": "pending", "courier": parcel.courier_id},
        {"stage": parcel.stage},
        {"q": parcel.waybill_no},
        {"p": 2},
    ):
        assert _counts(client, url, params) <= MAX_QUERIES


def test_changelist_never_counts_rows(busy_world, login):
    client = login(busy_world.cs)
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("admin:intercepts_aftersale_changelist"))
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_facet_counts_are_never_computed(busy_world, login):
    client = login(busy_world.cs)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("admin:intercepts_aftersale_changelist"), {"_facets": "1"})
    assert response.status_code == 200
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
