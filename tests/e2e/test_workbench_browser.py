"""A merchant agent sees their shop's after-sales in Chinese, and nothing of another shop."""

import pytest

from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_agent_sees_own_after_sales_in_chinese(world, browser_page):
    page = browser_page
    own_order = world.after_sale_a.order.order_no
    other_order = world.after_sale_b.order.order_no

    login_in_browser(page, "agent", "pw-for-tests-123")
    page.get_by_role("link", name="售后单").first.click()
    page.wait_for_selector("#result_list")
    screenshot(page, "agent_after_sales_list")

    assert "售后单" in page.title()
    table = page.locator("#result_list")
    assert own_order in table.inner_text()
    assert "待商家处理" in table.inner_text()
    assert "138****1234" in table.inner_text()
    assert other_order not in page.content()

    # The filters panel is in Chinese and offers no shop filter to a merchant.
    page.locator("a", has_text="筛选").first.click()
    page.get_by_text("售后状态").first.wait_for()
    screenshot(page, "agent_after_sales_filters")
    assert "售后状态" in page.content()
    assert world.shop_b.name not in page.content()


def test_list_shows_new_rows_and_switches_language(world, browser_page):
    """A second visit shows the after-sale created since the first, and the page's forms carry
    a CSRF token the server accepts (the language switch is a POST)."""
    from tests.factories import make_after_sale

    page = browser_page
    for _ in range(20):  # a full first page: a new after-sale keeps it at 20 rows
        make_after_sale(world.shop_a)
    login_in_browser(page, "agent", "pw-for-tests-123")
    list_url = f"{page.live_server_url}/admin/intercepts/aftersale/"
    page.goto(list_url)
    page.wait_for_selector("#result_list")

    newest, _parcel = make_after_sale(world.shop_a)
    page.goto(list_url)
    page.wait_for_selector("#result_list")
    assert newest.order.order_no in page.locator("#result_list").inner_text()
    assert world.after_sale_b.order.order_no not in page.content()
    screenshot(page, "agent_after_sales_second_visit")

    # Switch to English with the page's own form.
    with page.expect_navigation():
        page.evaluate("document.querySelector('form input[name=language][value=en]').form.submit()")
    page.wait_for_selector("#result_list")
    assert "After-sale orders" in page.content()
    assert newest.order.order_no in page.locator("#result_list").inner_text()
    screenshot(page, "agent_after_sales_english")
