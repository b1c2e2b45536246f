"""Finance exports in a real browser: finance picks a period and a shop, downloads the CSV, and
queues an Excel workbook that appears in the list, ready to download."""

from pathlib import Path

import pytest
from django.utils import timezone

from billing import services
from couriers.models import Courier
from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def fees(world):
    wallet = services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=50_000, external_reference="BANK-EXP-1"
    )
    zto = Courier.objects.get(code="ZTO")
    for number in (51, 52):
        reference = f"intercept:{number}"
        services.wallet_hold(
            shop_id=world.shop_a.pk, reference=reference, amount_fen=300, courier=zto
        )
        services.wallet_capture(reference=reference)


def test_finance_downloads_fees_and_builds_a_workbook(world, fees, browser_page):
    page = browser_page
    login_in_browser(page, "finance", "pw-for-tests-123")
    page.get_by_role("link", name="财务导出").first.click()
    page.wait_for_selector("#export-form")
    today = timezone.localdate().isoformat()
    page.fill("#id_date_from", today)
    page.fill("#id_date_to", today)
    # The shop is searched as typed.
    page.locator("#export-form .select2-selection").first.click()
    page.keyboard.type("甲")
    page.locator(".select2-results__option", has_text=world.shop_a.name).click()
    screenshot(page, "finance_exports_form")

    with page.expect_download() as download:
        page.get_by_role("button", name="下载 CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith('"扣费时间"')
    assert "intercept:51" in text and "intercept:52" in text and "3.00" in text

    page.get_by_role("button", name="生成 Excel").click()
    page.wait_for_selector("text=Excel 文件正在生成")
    # The eager task has built it already; the list shows it ready to download.
    page.wait_for_selector("#result_list >> text=已完成")
    assert "2 / 2 (100%)" in page.locator("#result_list").inner_text()
    screenshot(page, "finance_exports_list")
    with page.expect_download() as workbook:
        page.locator("#result_list").get_by_role("link", name="下载").first.click()
    assert workbook.value.suggested_filename.endswith(".xlsx")


def test_a_merchant_has_no_exports_page(world, browser_page):
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    assert page.get_by_role("link", name="财务导出").count() == 0
    response = page.goto(f"{page.live_server_url}/admin/billing/export/")
    assert response.status == 403
