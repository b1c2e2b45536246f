"""Claim payouts in a real browser: finance opens the page from the sidebar, narrows it to one
shop, and downloads the same table as CSV; a merchant has neither the link nor the page."""

from pathlib import Path

import pytest

from billing import services as billing_services
from couriers.models import Courier
from tests.claims.test_payouts import paid_claim
from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def payouts(world):
    # Claims filed without evidence: nothing is written to the evidence storage.
    for shop, owner in ((world.shop_a, world.owner), (world.shop_b, world.other)):
        wallet = billing_services.wallet_open(actor=owner, shop_id=shop.pk)
        billing_services.wallet_top_up(
            actor=world.finance,
            wallet=wallet,
            amount_fen=100_000,
            external_reference=f"BANK-PAYOUTS-{shop.code}",
        )
    zto, yto = Courier.objects.get(code="ZTO"), Courier.objects.get(code="YTO")
    paid_claim(world, shop=world.shop_a, courier=zto, claimed_fen=12_900, approved_fen=12_900)
    paid_claim(
        world,
        shop=world.shop_a,
        courier=yto,
        claimed_fen=30_000,
        approved_fen=30_000,
        offline=True,
    )
    paid_claim(world, shop=world.shop_b, courier=zto, claimed_fen=99_900, approved_fen=99_900)


def test_finance_reads_and_downloads_the_payouts(world, payouts, browser_page):
    page = browser_page
    login_in_browser(page, "finance", "pw-for-tests-123")
    page.get_by_role("link", name="赔付统计").first.click()
    page.wait_for_selector("#claim-payouts")
    assert page.locator("#claim-payouts tfoot").inner_text().split() == [
        "合计",
        "3",
        "1,128.00",
        "300.00",
        "1,428.00",
    ]
    screenshot(page, "claim_payouts_all_shops")

    # The shop is searched as typed, as on the finance exports.
    page.locator("#payout-filters .select2-selection").first.click()
    page.keyboard.type("甲")
    page.locator(".select2-results__option", has_text=world.shop_a.name).click()
    page.get_by_role("button", name="查询").click()
    page.wait_for_url("**shop=*")
    assert page.locator("#claim-payouts tfoot").inner_text().split() == [
        "合计",
        "2",
        "129.00",
        "300.00",
        "429.00",
    ]
    screenshot(page, "claim_payouts_one_shop")

    with page.expect_download() as download:
        page.get_by_role("button", name="下载 CSV").click()
    assert download.value.suggested_filename.endswith(f"-{world.shop_a.code}.csv")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert (
        lines[0] == '"快递公司","月份","赔付件数","赔付到钱包（元）","线下赔付（元）","合计（元）"'
    )
    assert lines[-1] == '"合计","","2","129.00","300.00","429.00"'


def test_a_merchant_has_no_payouts_page(world, browser_page):
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    assert page.get_by_role("link", name="赔付统计").count() == 0
    response = page.goto(f"{page.live_server_url}/admin/claims/claimpayout/")
    assert response.status == 403
