"""The merchant's wallet movements: one line per movement of money (not the ledger's two
legs), with the order and waybill of each intercept fee and the available balance after it;
only for the shop's own people and the platform, and in a flat number of queries."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

from billing.models import Hold
from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_create, intercept_set_status
from tests.factories import make_after_sale

S = InterceptRequest.Status


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


def _intercept(world, parcel, after_sale, outcome):
    """An intercept of ``parcel`` made through the services, its fee held, then moved to
    ``outcome`` (succeeded charges the fee, rejected releases it)."""
    intercept = intercept_create(
        actor=world.owner,
        parcel=parcel,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=after_sale,
    )
    source = InterceptEvent.Source.COURIER_ANSWER
    if outcome == S.SUCCEEDED:
        intercept_set_status(intercept=intercept, to_status=S.SUBMITTED, source=source)
    intercept_set_status(intercept=intercept, to_status=outcome, source=source)
    return intercept


@pytest.fixture
def moved(world, wallet_a, fund):
    """Shop A: 100.00 topped up; one intercept charged (3.00), one released."""
    fund(wallet_a, 10_000)
    _intercept(world, world.parcel_a, world.after_sale_a, S.SUCCEEDED)
    after_sale, parcel = make_after_sale(world.shop_a)
    _intercept(world, parcel, after_sale, S.REJECTED)
    world.released_parcel = parcel
    return world


def _rows(html: str) -> list[str]:
    table = html.split('id="wallet-movements"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in table.split("<tr")[2:]  # past the header row
    ]


def test_merchant_reads_one_line_per_movement_with_order_and_waybill(moved, wallet_a, login):
    world = moved
    url = reverse("admin:billing_wallet_movements", args=[wallet_a.pk])
    html = login(world.agent).get(url).content.decode()
    assert "钱包流水" in html
    rows = _rows(html)
    # Newest first: release, hold, charge, hold, top-up; one line each, not two legs.
    assert len(rows) == 5
    charged_order = world.after_sale_a.order.order_no
    released_order = world.released_parcel.order.order_no
    release, hold_2, charge, hold_1, top_up = rows
    # Amount, then the available balance after: 100 − 3 − 3 + 3.
    assert "费用释放" in release and "+3.00 97.00" in release
    assert released_order in release and world.released_parcel.waybill_no in release
    assert "未扣费（拦截被拒、失败或已撤回）：冻结的费用已退回可用余额" in release
    assert "费用冻结" in hold_2 and "−3.00 94.00" in hold_2
    assert "费用扣除" in charge and charged_order in charge and world.parcel_a.waybill_no in charge
    assert "拦截成功，冻结的费用已扣除；可用余额不变" in charge and "97.00" in charge
    assert "费用冻结" in hold_1 and "−3.00 97.00" in hold_1
    assert "充值" in top_up and "+100.00 100.00" in top_up and "银行流水号 BANK-" in top_up
    assert "intercept:" not in html


def test_wallet_page_shows_merchants_movements_and_platform_the_ledger(moved, wallet_a, login):
    url = reverse("admin:billing_wallet_change", args=[wallet_a.pk])
    merchant = login(moved.owner).get(url).content.decode()
    assert 'id="wallet-movements"' in merchant and "最近流水" in merchant
    assert 'id="wallet-entries"' not in merchant and "intercept:" not in merchant
    assert moved.parcel_a.waybill_no in merchant
    finance = login(moved.finance).get(url).content.decode()
    assert 'id="wallet-entries"' in finance and "intercept:" in finance


@pytest.mark.parametrize(("who", "status"), [("other", 404), ("anonymous", 302)])
def test_another_shops_user_cannot_read_the_movements(moved, wallet_a, login, who, status):
    url = reverse("admin:billing_wallet_movements", args=[wallet_a.pk])
    response = login(moved.user(who)).get(url)
    assert response.status_code == status
    assert moved.parcel_a.waybill_no not in response.content.decode()


@pytest.mark.parametrize("who", ["owner", "viewer", "cs", "finance"])
def test_the_shop_and_the_platform_read_the_movements(moved, wallet_a, login, who):
    url = reverse("admin:billing_wallet_movements", args=[wallet_a.pk])
    response = login(moved.user(who)).get(url)
    assert response.status_code == 200
    assert moved.parcel_a.waybill_no in response.content.decode()


def test_movement_pages_cost_the_same_queries_for_few_or_many(moved, wallet_a, login, fund):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("admin:billing_wallet_movements", args=[wallet_a.pk])
    client = login(moved.owner)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for _ in range(4):
        after_sale, parcel = make_after_sale(moved.shop_a)
        _intercept(moved, parcel, after_sale, S.SUCCEEDED)
    for _ in range(10):
        fund(wallet_a, 100)
    with CaptureQueriesContext(connection) as many:
        html = client.get(url).content.decode()
    assert len(_rows(html)) == 5 + 4 * 2 + 10
    assert len(many.captured_queries) == len(few.captured_queries)


def test_older_movements_are_a_page_away(moved, wallet_a, login, fund):
    from billing.admin.wallets import WalletAdmin

    for _ in range(WalletAdmin.MOVEMENTS_PER_PAGE):
        fund(wallet_a, 100)
    url = reverse("admin:billing_wallet_movements", args=[wallet_a.pk])
    client = login(moved.owner)
    first = client.get(url).content.decode()
    assert len(_rows(first)) == WalletAdmin.MOVEMENTS_PER_PAGE
    older = re.search(r'href="([^"]+)" id="older-movements"', first)[1].replace("&amp;", "&")
    rest = _rows(client.get(older).content.decode())
    assert len(rest) == 5  # the five movements of the fixture, the oldest last
    assert "充值" in rest[-1] and "+100.00" in rest[-1]


def test_fee_holds_name_the_order_and_waybill(moved, login):
    world = moved
    client = login(world.owner)
    html = client.get(reverse("admin:billing_hold_changelist")).content.decode()
    for parcel in (world.parcel_a, world.released_parcel):
        assert parcel.waybill_no in html and parcel.order.order_no in html
    assert "订单号" in html and "运单号" in html
    hold = world.parcel_a.intercepts.get()
    detail = client.get(
        reverse(
            "admin:billing_hold_change", args=[Hold.objects.get(reference=hold.hold_reference).pk]
        )
    ).content.decode()
    assert world.parcel_a.waybill_no in detail


def test_merchants_find_fee_holds_by_order_or_waybill_not_by_reference(moved, login):
    """The holds list speaks the merchant's numbers: no intercept:N column for them, and a
    search by order or waybill number; platform staff keep the reference."""
    world = moved
    url = reverse("admin:billing_hold_changelist")
    owner = login(world.owner)
    hold = Hold.objects.get(reference=world.parcel_a.intercepts.get().hold_reference)
    assert hold.reference not in owner.get(url).content.decode()
    for number in (world.parcel_a.waybill_no, world.parcel_a.order.order_no):
        found = owner.get(url, {"q": number}).context["cl"].result_list
        assert [row.pk for row in found] == [hold.pk]
    assert hold.reference in login(world.finance).get(url).content.decode()
    # Nor does its own page name it for the merchant, in its title or anywhere else.
    detail = login(world.owner).get(reverse("admin:billing_hold_change", args=[hold.pk]))
    assert hold.reference not in detail.content.decode()
    assert world.parcel_a.waybill_no in detail.content.decode()
    # A waybill typed in lower case is found as the after-sales search finds it.
    found = owner.get(url, {"q": world.parcel_a.waybill_no.lower()}).context["cl"].result_list
    assert [row.pk for row in found] == [hold.pk]
    # Another shop's owner finds nothing by these numbers.
    other = login(world.other).get(url, {"q": world.parcel_a.waybill_no})
    assert list(other.context["cl"].result_list) == []
