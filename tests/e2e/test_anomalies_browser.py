"""A 10-day stall in a real browser, in Chinese: the merchant finds it in the list and answers
with a photo, finance sees the held settlement, customer service dismisses the anomaly and the
hold is lifted."""

import pytest

from intercepts.models import Order, ShipmentAnomaly
from tests.e2e.conftest import login_in_browser, screenshot
from tests.intercepts import anomaly_helpers
from tests.intercepts.anomaly_helpers import jpeg_bytes, shipped, stall_10d, stalls_found

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "pw-for-tests-123"
uploads_dir = anomaly_helpers.uploads_dir


def _sign_out(page) -> None:
    page.context.clear_cookies()


@pytest.mark.usefixtures("uploads_dir")
def test_a_stall_answered_then_dismissed(world, browser_page, tmp_path):
    page = browser_page
    base = page.live_server_url
    order = shipped(world.shop_a, world.owner, days_ago=11)
    stalls_found()
    stall = stall_10d(order)
    photo = tmp_path / "网点爆仓.jpg"
    photo.write_bytes(jpeg_bytes())

    # The merchant opens the list from the sidebar and answers with a photo.
    login_in_browser(page, "owner", PASSWORD)
    page.get_by_role("link", name="发货异常").first.click()
    page.wait_for_selector("#result_list")
    assert page.locator("#figure-stalled_10d").inner_text() == "1"
    screenshot(page, "anomalies_1_merchant_list")
    page.goto(f"{base}/admin/intercepts/shipmentanomaly/{stall.pk}/change/")
    page.fill("#answer-explanation", "网点爆仓，包裹仍在派送")
    page.set_input_files("input[name=files]", str(photo))
    screenshot(page, "anomalies_2_answer_form")
    page.locator("#button-answer").click()
    page.locator("#anomaly-panel").wait_for()
    assert page.locator("#anomaly-status").inner_text() == "商家已说明"
    assert "网点爆仓.jpg" in page.content()
    screenshot(page, "anomalies_3_answered")

    # Finance sees the held settlement.
    _sign_out(page)
    login_in_browser(page, "finance", PASSWORD)
    page.get_by_role("link", name="结算暂停").first.click()
    page.locator("#held-orders").wait_for()
    assert order.order_no in page.locator("#held-orders").inner_text()
    screenshot(page, "anomalies_4_finance_held")

    # Customer service dismisses it: the hold is lifted.
    _sign_out(page)
    login_in_browser(page, "cs", PASSWORD)
    page.goto(f"{base}/admin/intercepts/shipmentanomaly/{stall.pk}/change/")
    page.fill("#form-rule input[name=note]", "快递确认在途")
    page.locator("#button-dismiss").click()
    page.locator("#anomaly-panel").wait_for()
    assert page.locator("#anomaly-status").inner_text() == "平台已撤销"
    screenshot(page, "anomalies_5_cs_dismissed")
    stall.refresh_from_db()
    assert (stall.status, Order.objects.get(pk=order.pk).settlement_held_at) == (
        ShipmentAnomaly.Status.DISMISSED,
        None,
    )
