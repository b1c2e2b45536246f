"""The after-sales platform CS works from: a filter for those awaiting the platform (a dispute
to decide, or decided for the buyer and not yet refunded or closed), with how many there are,
counted within the shops the user may see."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intercepts.models import AfterSale
from intercepts.selectors import ARBITRATION_QUEUE_CAP
from tests.factories import make_after_sale


@pytest.fixture
def arbitrations(world):
    """Shop A: two after-sales awaiting the platform, one decided for the merchant; shop B:
    three awaiting it (one of them decided for the buyer and still pending, one a dispute over
    a rejected after-sale), one decided for the buyer and since refunded and one dispute on an
    after-sale since closed."""
    S, A = AfterSale.Status, AfterSale.Arbitration
    plan = [
        (world.shop_a, A.REQUESTED, S.PENDING),
        (world.shop_a, A.IN_PROGRESS, S.PENDING),
        (world.shop_a, A.FOR_MERCHANT, S.PENDING),
        (world.shop_b, A.REQUESTED, S.REJECTED),
        (world.shop_b, A.IN_PROGRESS, S.PENDING),
        (world.shop_b, A.FOR_BUYER, S.PENDING),
        (world.shop_b, A.FOR_BUYER, S.REFUNDED),
        (world.shop_b, A.REQUESTED, S.CLOSED),
    ]
    made = []
    for shop, arbitration, status in plan:
        after_sale, _parcel = make_after_sale(shop)
        AfterSale.objects.filter(pk=after_sale.pk).update(arbitration=arbitration, status=status)
        made.append(after_sale)
    return made


def _list(client, params=None):
    return client.get(reverse("admin:intercepts_aftersale_changelist"), params or {})


def test_cs_filters_the_after_sales_awaiting_the_platform_and_sees_how_many(
    arbitrations, world, login
):
    client = login(world.cs)
    page = _list(client).content.decode()
    assert "待平台处理（5）" in page
    filtered = _list(client, {"arbitration": "open"})
    shown = {row.pk for row in filtered.context["cl"].result_list}
    assert shown == {arbitrations[i].pk for i in (0, 1, 3, 4, 5)}


def test_a_merchant_counts_only_their_own_shops_cases(arbitrations, world, login):
    page = _list(login(world.owner)).content.decode()
    assert "待平台处理（2）" in page
    assert "待平台处理（5）" not in page
    filtered = _list(login(world.owner), {"arbitration": "open"})
    assert {row.shop_id for row in filtered.context["cl"].result_list} == {world.shop_a.pk}
    assert len(filtered.context["cl"].result_list) == 2


def test_a_long_queue_reads_99_plus_without_counting_rows(world, login):
    for _ in range(ARBITRATION_QUEUE_CAP + 1):
        after_sale, _parcel = make_after_sale(world.shop_b)
        AfterSale.objects.filter(pk=after_sale.pk).update(
            arbitration=AfterSale.Arbitration.IN_PROGRESS
        )
    client = login(world.cs)
    with CaptureQueriesContext(connection) as ctx:
        page = _list(client).content.decode()
    assert "待平台处理（99+）" in page
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "待平台处理（0）" in _list(login(world.owner)).content.decode()
