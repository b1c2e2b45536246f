"""The intercept records list: each shop's staff see their own shop's intercepts only, platform
staff see all; filters, search by number, and a query count that does not grow with the page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from couriers.models import Courier
from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_create, intercept_set_status
from tests.factories import make_after_sale

LIST = "admin:intercepts_interceptrequest_changelist"
S = InterceptRequest.Status


def _fund(world, shop, owner):
    wallet = billing_services.wallet_open(actor=owner, shop_id=shop.pk)
    billing_services.wallet_top_up(
        actor=world.finance,
        wallet=wallet,
        amount_fen=100_000,
        external_reference=f"BANK-R-{shop.pk}",
    )


def _intercept(world, shop, actor) -> InterceptRequest:
    after_sale, parcel = make_after_sale(shop, courier=Courier.objects.get(code="ZTO"))
    return intercept_create(
        actor=actor,
        parcel=parcel,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=after_sale,
    )


@pytest.fixture
def records(world):
    _fund(world, world.shop_a, world.owner)
    _fund(world, world.shop_b, world.other)
    a_open = _intercept(world, world.shop_a, world.owner)
    a_done = _intercept(world, world.shop_a, world.agent)
    for status in (S.SUBMITTED, S.ACCEPTED, S.SUCCEEDED):
        intercept_set_status(
            intercept=a_done, to_status=status, source=InterceptEvent.Source.COURIER_ANSWER
        )
    b_open = _intercept(world, world.shop_b, world.other)
    return {"a_open": a_open, "a_done": a_done, "b_open": b_open}


def _order_no(intercept) -> str:
    return intercept.parcel.order.order_no


@pytest.mark.parametrize(
    ("who", "sees_a", "sees_b"),
    [
        ("owner", True, False),
        ("agent", True, False),
        ("viewer", True, False),
        ("other", False, True),
        ("cs", True, True),
        ("finance", True, True),
    ],
)
def test_each_sees_only_what_they_may(world, login, records, who, sees_a, sees_b):
    page = login(world.user(who)).get(reverse(LIST))
    assert page.status_code == 200
    html = page.content.decode()
    assert (_order_no(records["a_open"]) in html) is sees_a
    assert (_order_no(records["a_done"]) in html) is sees_a
    assert (_order_no(records["b_open"]) in html) is sees_b


@pytest.mark.parametrize(
    ("who", "change", "add", "delete"),
    [
        ("owner", 200, 403, 403),
        ("agent", 200, 403, 403),
        ("viewer", 200, 403, 403),
        ("other", 404, 403, 404),
        ("cs", 200, 403, 403),
        ("finance", 200, 403, 403),
        ("anonymous", 302, 302, 302),
    ],
)
def test_pages_of_one_record(world, login, records, who, change, add, delete):
    client = login(world.user(who))
    pk = records["a_done"].pk
    page = client.get(reverse("admin:intercepts_interceptrequest_change", args=[pk]))
    assert page.status_code == change
    if change == 200:
        assert "已拦截" in page.content.decode()  # its history, in Chinese
    assert client.get(reverse("admin:intercepts_interceptrequest_add")).status_code == add
    assert (
        client.get(reverse("admin:intercepts_interceptrequest_delete", args=[pk])).status_code
        == delete
    )
    if who != "anonymous":
        # Nobody changes a record by posting to it: only the services move it.
        client.post(reverse("admin:intercepts_interceptrequest_change", args=[pk]), {})
        assert InterceptRequest.objects.get(pk=pk).status == S.SUCCEEDED


def test_filters_and_search(world, login, records):
    client = login(world.cs)
    html = client.get(reverse(LIST), {"status": S.SUCCEEDED}).content.decode()
    assert _order_no(records["a_done"]) in html and _order_no(records["a_open"]) not in html
    waybill = records["a_open"].parcel.waybill_no
    html = client.get(reverse(LIST), {"q": waybill}).content.decode()
    assert _order_no(records["a_open"]) in html and _order_no(records["b_open"]) not in html
    today = timezone.localdate().isoformat()
    html = client.get(
        reverse(LIST), {"created_at_from": today, "created_at_to": today, "shop": world.shop_b.code}
    ).content.decode()
    assert _order_no(records["b_open"]) in html and _order_no(records["a_open"]) not in html
    # A merchant's search never reaches another shop's parcel.
    html = login(world.owner).get(reverse(LIST), {"q": records["b_open"].parcel.waybill_no})
    assert _order_no(records["b_open"]) not in html.content.decode()


def test_the_list_costs_the_same_queries_with_more_rows(world, login, records):
    client = login(world.owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(reverse(LIST)).status_code == 200
        return len(context.captured_queries)

    few = queries()
    for _ in range(6):
        _intercept(world, world.shop_a, world.owner)
    assert queries() == few <= 10


EXPORT = "admin:intercepts_interceptrequest_export"


def _csv(response) -> list[list[str]]:
    import csv
    import io

    data = b"".join(response.streaming_content)
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("who", "sees_a", "sees_b"),
    [("owner", True, False), ("viewer", True, False), ("other", False, True), ("cs", True, True)],
)
def test_export_holds_what_the_list_shows(world, login, records, who, sees_a, sees_b):
    response = login(world.user(who)).get(reverse(EXPORT))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    assert rows[0][:3] == ["创建时间", "店铺", "订单号"]
    orders = {row[2] for row in rows[1:]}
    assert (_order_no(records["a_open"]) in orders) is sees_a
    assert (_order_no(records["b_open"]) in orders) is sees_b


def test_export_follows_the_lists_filters_and_search(world, login, records):
    client = login(world.cs)
    rows = _csv(client.get(reverse(EXPORT), {"status": S.SUCCEEDED}))
    assert [row[2] for row in rows[1:]] == [_order_no(records["a_done"])]
    assert rows[1][7] == "已拦截" and rows[1][8] == "3.00"
    waybill = records["b_open"].parcel.waybill_no
    rows = _csv(client.get(reverse(EXPORT), {"q": waybill}))
    assert [row[4] for row in rows[1:]] == [waybill]
    # The list page links to the export with its current filters.
    page = client.get(reverse(LIST), {"status": S.SUCCEEDED}).content.decode()
    assert f"{reverse(EXPORT)}?status={S.SUCCEEDED}" in page


def test_anonymous_visitors_cannot_export(client, records):
    assert client.get(reverse(EXPORT)).status_code == 302


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 200), ("viewer", 200), ("other", 404), ("cs", 200)]
)
def test_the_after_sale_page_lists_its_intercepts(world, login, records, who, status):
    after_sale = records["a_done"].after_sale
    url = reverse("admin:intercepts_aftersale_change", args=[after_sale.pk])
    response = login(world.user(who)).get(url)
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        record = reverse("admin:intercepts_interceptrequest_change", args=[records["a_done"].pk])
        assert record in page and "已拦截" in page
        assert (
            reverse("admin:intercepts_interceptrequest_change", args=[records["b_open"].pk])
            not in page
        )


def _ended(world, shop, actor, *path, **fields) -> InterceptRequest:
    intercept = _intercept(world, shop, actor)
    for status in path:
        intercept_set_status(
            intercept=intercept,
            to_status=status,
            source=InterceptEvent.Source.COURIER_ANSWER,
            **fields,
        )
    return intercept


@pytest.fixture
def fees(world):
    """One intercept per thing that can become of its fee."""
    _fund(world, world.shop_a, world.owner)
    return {
        "held": _intercept(world, world.shop_a, world.owner),
        "charged": _ended(world, world.shop_a, world.owner, S.SUBMITTED, S.SUCCEEDED),
        "refused": _ended(world, world.shop_a, world.owner, S.SUBMITTED, S.REJECTED),
        "failed": _ended(world, world.shop_a, world.owner, S.SUBMITTED, S.ACCEPTED, S.FAILED),
        "withdrawn": _ended(world, world.shop_a, world.owner, S.CANCELLED),
    }


FEE_CELLS = {
    "held": "已冻结 3.00",
    "charged": "已扣 3.00",
    "refused": "已退回 3.00",
    "failed": "已退回 3.00",
    "withdrawn": "已退回 3.00",
}


def test_the_list_says_what_became_of_each_fee(world, login, fees):
    import re

    page = login(world.owner).get(reverse(LIST)).content.decode()
    cells = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S):
        order_no = re.search(r'class="[^"]*field-order_no[^"]*"[^>]*>\s*([^<]+?)\s*<', row)
        fee = re.search(r'class="[^"]*field-fee[^"]*"[^>]*>\s*([^<]+?)\s*<', row)
        if order_no and fee:
            cells[order_no.group(1)] = fee.group(1)
    assert {name: cells[_order_no(i)] for name, i in fees.items()} == FEE_CELLS


def test_the_export_says_what_became_of_each_fee(world, login, fees):
    rows = _csv(login(world.owner).get(reverse(EXPORT)))
    assert rows[0][8:10] == ["费用（元）", "费用状态"]
    states = {row[2]: (row[8], row[9]) for row in rows[1:]}
    assert {name: states[_order_no(i)] for name, i in fees.items()} == {
        "held": ("3.00", "已冻结"),
        "charged": ("3.00", "已扣除"),
        "refused": ("3.00", "已退回钱包"),
        "failed": ("3.00", "已退回钱包"),
        "withdrawn": ("3.00", "已退回钱包"),
    }


def test_the_after_sale_page_says_what_became_of_its_fee(world, login, fees):
    after_sale = fees["refused"].after_sale
    url = reverse("admin:intercepts_aftersale_change", args=[after_sale.pk])
    assert "已退回 3.00" in login(world.owner).get(url).content.decode()
