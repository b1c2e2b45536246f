"""The wallet in a real browser: the owner reads balances and entries in Chinese; finance tops
up through the form; another shop's owner cannot open it."""

import pytest

from billing import selectors, services
from couriers.models import Courier
from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def funded_wallet(world):
    wallet = services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=50_000, external_reference="BANK-E2E-1"
    )
    zto = Courier.objects.get(code="ZTO")
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:41", amount_fen=300, courier=zto
    )
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:42", amount_fen=300, courier=zto
    )
    services.wallet_capture(reference="intercept:41")
    return wallet


def test_owner_reads_the_wallet_in_chinese(world, funded_wallet, browser_page):
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.get_by_role("link", name="钱包").first.click()
    page.wait_for_selector("#result_list")
    assert "494.00" in page.locator("#result_list").inner_text()
    page.locator("#result_list a", has_text=world.shop_a.name).first.click()
    page.wait_for_selector("#wallet-movements")
    screenshot(page, "owner_wallet")

    assert page.locator("#balance-available").inner_text() == "494.00"
    assert page.locator("#balance-held").inner_text() == "3.00"
    # Merchants read one line per movement; these fees name no intercept, so their reference.
    entries = page.locator("#wallet-movements").inner_text()
    assert "intercept:42" in entries and "费用冻结" in entries and "费用扣除" in entries
    assert "充值" in entries and "BANK-E2E-1" in entries
    # An owner sets the payment password; only finance tops up.
    assert page.get_by_role("link", name="支付密码").count() == 1
    assert page.get_by_role("link", name="充值").count() == 0


def test_finance_tops_up_in_the_browser(world, funded_wallet, browser_page):
    page = browser_page
    login_in_browser(page, "finance", "pw-for-tests-123")
    page.goto(f"{page.live_server_url}/admin/billing/wallet/{funded_wallet.pk}/change/")
    page.locator('a[href$="/top-up/"]', has_text="充值").click()
    page.fill("#id_amount_fen", "88.80")
    page.fill("#id_external_reference", "BANK-E2E-2")
    page.fill("#id_note", "线下转账")
    screenshot(page, "finance_top_up_form")
    page.get_by_role("button", name="充值").click()
    page.wait_for_selector("#wallet-entries")
    screenshot(page, "finance_wallet_after_top_up")
    assert "已充值 88.80 元" in page.content()
    assert page.locator("#balance-available").inner_text() == "582.80"
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 58_280

    # The same bank serial again is refused on the form, in Chinese.
    page.locator('a[href$="/top-up/"]', has_text="充值").click()
    page.fill("#id_amount_fen", "88.80")
    page.fill("#id_external_reference", "BANK-E2E-2")
    page.get_by_role("button", name="充值").click()
    page.get_by_text("已入账，不能重复充值").wait_for()
    screenshot(page, "finance_top_up_refused")
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 58_280


def test_other_shop_owner_gets_404(world, funded_wallet, browser_page):
    page = browser_page
    login_in_browser(page, "other", "pw-for-tests-123")
    response = page.goto(f"{page.live_server_url}/admin/billing/wallet/{funded_wallet.pk}/change/")
    assert response.status == 404


def test_owner_requests_an_invoice_in_the_browser(world, funded_wallet, browser_page):
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.goto(f"{page.live_server_url}/admin/billing/wallet/{funded_wallet.pk}/change/")
    page.get_by_role("link", name="申请开票").click()
    page.select_option("#id_invoice_type", "digital_special")
    page.fill("#id_title", "甲店贸易有限公司")
    page.fill("#id_taxpayer_id", "91330100716105852G")  # a wrong check character
    page.get_by_role("button", name="提交开票申请").click()
    page.get_by_text("校验位不正确").first.wait_for()
    # The courier and the period of the fees can be chosen; the dates use the browser's picker.
    assert page.get_attribute("#id_charged_from", "type") == "date"
    page.select_option("#id_courier", label="中通快递")
    screenshot(page, "owner_invoice_form")
    page.fill("#id_taxpayer_id", "91330100716105852F")
    page.fill("#id_address_phone", "杭州市余杭区文一西路1号 0571-88888888")
    page.fill("#id_bank_account", "招商银行杭州分行 571900000000001")
    page.get_by_role("button", name="提交开票申请").click()
    page.get_by_text("已申请开票，金额 3.00 元").wait_for()
    screenshot(page, "owner_invoice_requested")
    # The line is the fee's (its courier and amount); the reference is platform staff's.
    lines = page.locator("#lines-group").inner_text()
    assert "中通快递" in lines and "3.00" in lines and "intercept:41" not in lines
    assert "数电专票" in page.content() and "待审核" in page.content()


def test_large_top_up_waits_for_a_second_finance_user_in_the_browser(
    world, funded_wallet, finance2, browser_page
):
    page = browser_page
    wallet_url = f"{page.live_server_url}/admin/billing/wallet/{funded_wallet.pk}/change/"
    login_in_browser(page, "finance", "pw-for-tests-123")
    page.goto(wallet_url)
    page.locator('a[href$="/top-up/"]', has_text="充值").click()
    # A full-width amount, as a Chinese input method types it, is refused on the form.
    page.fill("#id_amount_fen", "６００００")
    page.fill("#id_external_reference", " cmb-e2e-big ")
    page.get_by_role("button", name="充值").click()
    page.get_by_text("使用半角字符").first.wait_for()
    screenshot(page, "finance_top_up_full_width_refused")
    page.fill("#id_amount_fen", "60000.00")
    page.fill("#id_note", "大额对公转账")
    page.get_by_role("button", name="充值").click()
    page.get_by_text("60,000.00 元的充值需等待另一位财务人员审批").wait_for()
    screenshot(page, "finance_top_up_waiting")
    assert page.locator("#balance-available").inner_text() == "494.00"
    pending = page.locator("#pending-top-ups").inner_text()
    assert "60,000.00" in pending and "CMB-E2E-BIG" in pending
    # Its requester may withdraw it but not approve it.
    page.locator("#pending-top-ups").get_by_role("link", name="审核").click()
    page.get_by_role("button", name="驳回").wait_for()
    assert page.get_by_role("button", name="批准并入账").count() == 0

    page.context.clear_cookies()
    login_in_browser(page, "finance2", "pw-for-tests-123")
    page.goto(wallet_url)
    page.locator("#pending-top-ups").get_by_role("link", name="审核").click()
    page.fill("input[name=decision_note]", "已核对银行回单")
    screenshot(page, "finance2_top_up_to_approve")
    page.get_by_role("button", name="批准并入账").click()
    page.get_by_text("充值已批准并入账").wait_for()
    screenshot(page, "finance2_top_up_approved")
    assert "已核对银行回单" in page.content()
    assert selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == 6_049_400

    page.goto(wallet_url)
    page.wait_for_selector("#wallet-entries")
    screenshot(page, "finance2_wallet_after_approval")
    assert page.locator("#balance-available").inner_text() == "60,494.00"
    assert page.locator("#pending-top-ups").count() == 0
    assert "CMB-E2E-BIG" in page.locator("#wallet-entries").inner_text()

    # The top-up records keep the refused attempt beside the applied top-up.
    page.locator("#wallet_form").get_by_role("link", name="充值记录").click()
    page.wait_for_selector("#result_list")
    screenshot(page, "finance2_top_up_records")
    records = page.locator("#result_list").inner_text()
    assert "６００００" in records and "录入被拒" in records and "半角" in records
    assert "60,000.00" in records and "已入账" in records
