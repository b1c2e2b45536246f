"""The after-sales platform CS works from: a filter for those under arbitration, with how many
there are, counted within the shops the user may see."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intercepts.models import AfterSale
from intercepts.selectors import ARBITRATION_QUEUE_CAP
from tests.factories import make_after_sale


@pytest.fixture
def arbitrations(world):
    """Shop A: two after-sales under arbitration, one decided for the merchant; shop B: three
    under arbitration."""
    plan = [
        (world.shop_a, AfterSale.Arbitration.REQUESTED),
        (world.shop_a, AfterSale.Arbitration.IN_PROGRESS),
        (world.shop_a, AfterSale.Arbitration.FOR_MERCHANT),
        (world.shop_b, AfterSale.Arbitration.REQUESTED),
        (world.shop_b, AfterSale.Arbitration.IN_PROGRESS),
        (world.shop_b, AfterSale.Arbitration.FOR_BUYER),
    ]
    made = []
    for shop, arbitration in plan:
        after_sale, _parcel = make_after_sale(shop)
        AfterSale.objects.filter(pk=after_sale.pk).update(arbitration=arbitration)
        made.append(after_sale)
    return made


def _list(client, params=None):
    return client.get(reverse("admin:intercepts_aftersale_changelist"), params or {})


def test_cs_filters_the_after_sales_under_arbitration_and_sees_how_many(arbitrations, world, login):
    client = login(world.cs)
    page = _list(client).content.decode()
    assert "平台仲裁中（5）" in page
    filtered = _list(client, {"arbitration": "open"})
    shown = {row.pk for row in filtered.context["cl"].result_list}
    assert shown == {arbitrations[i].pk for i in (0, 1, 3, 4, 5)}


def test_a_merchant_counts_only_their_own_shops_arbitrations(arbitrations, world, login):
    page = _list(login(world.owner)).content.decode()
    assert "平台仲裁中（2）" in page
    assert "平台仲裁中（5）" not in page
    filtered = _list(login(world.owner), {"arbitration": "open"})
    assert {row.shop_id for row in filtered.context["cl"].result_list} == {world.shop_a.pk}
    assert len(filtered.context["cl"].result_list) == 2


def test_a_long_arbitration_queue_reads_99_plus_without_counting_rows(world, login):
    for _ in range(ARBITRATION_QUEUE_CAP + 1):
        after_sale, _parcel = make_after_sale(world.shop_b)
        AfterSale.objects.filter(pk=after_sale.pk).update(
            arbitration=AfterSale.Arbitration.IN_PROGRESS
        )
    client = login(world.cs)
    with CaptureQueriesContext(connection) as ctx:
        page = _list(client).content.decode()
    assert "平台仲裁中（99+）" in page
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "平台仲裁中（0）" in _list(login(world.owner)).content.decode()
