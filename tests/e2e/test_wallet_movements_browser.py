"""The merchant's wallet movements in a real browser, in Chinese: one line per movement with
the order and waybill of each intercept fee and the balance after it; another shop's owner
cannot open them."""

import pytest

from billing import services
from intercepts.models import InterceptRequest
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import make_after_sale, make_intercept

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

S = InterceptRequest.Status


def _intercept(world, parcel, after_sale, *statuses):
    return make_intercept(world.owner, parcel, after_sale, *statuses)


@pytest.fixture
def moved(world):
    wallet = services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=50_000, external_reference="BANK-E2E-M1"
    )
    _intercept(world, world.parcel_a, world.after_sale_a, S.SUBMITTED, S.SUCCEEDED)
    after_sale, parcel = make_after_sale(world.shop_a)
    _intercept(world, parcel, after_sale, S.REJECTED)
    world.wallet = wallet
    world.released_parcel = parcel
    return world


def test_owner_reads_the_wallet_movements_in_chinese(moved, browser_page):
    world, page = moved, browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.goto(f"{page.live_server_url}/admin/billing/wallet/{world.wallet.pk}/change/")
    page.wait_for_selector("#wallet-movements")
    screenshot(page, "owner_wallet_movements_on_wallet_page")
    assert "最近流水" in page.content()

    page.locator("#wallet-movements-link").click()
    page.wait_for_selector("table#wallet-movements")
    screenshot(page, "owner_wallet_movements_page")
    assert page.locator("h1, h2").filter(has_text="钱包流水").count() >= 1
    rows = page.locator("#wallet-movements tbody tr")
    assert rows.count() == 5  # top-up, hold, charge, hold, release: one line each
    texts = [rows.nth(i).inner_text() for i in range(5)]
    release, hold_2, charge, hold_1, top_up = texts
    assert "费用释放" in release and "+3.00" in release
    assert world.released_parcel.waybill_no in release
    assert world.released_parcel.order.order_no in release
    assert "费用扣除" in charge and world.parcel_a.waybill_no in charge
    assert world.after_sale_a.order.order_no in charge and "可用余额不变" in charge
    assert "费用冻结" in hold_1 and "−3.00" in hold_1 and "497.00" in hold_1
    assert "费用冻结" in hold_2 and "494.00" in hold_2
    assert "充值" in top_up and "+500.00" in top_up and "BANK-E2E-M1" in top_up
    assert "intercept:" not in page.locator("#wallet-movements").inner_text()


def test_other_shop_owner_cannot_open_the_movements(moved, browser_page):
    world, page = moved, browser_page
    login_in_browser(page, "other", "pw-for-tests-123")
    response = page.goto(
        f"{page.live_server_url}/admin/billing/wallet/{world.wallet.pk}/movements/"
    )
    assert response.status == 404
    screenshot(page, "other_owner_movements_404")
    assert world.parcel_a.waybill_no not in page.content()
