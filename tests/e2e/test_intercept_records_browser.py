"""Intercept records in a real browser: the owner reads their shop's intercepts in Chinese, with
the other shop's nowhere on the page, and narrows the list by status."""

import pytest

from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_set_status
from tests.e2e.conftest import login_in_browser, screenshot
from tests.intercepts.test_intercept_records import _fund, _intercept

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_owner_reads_the_intercept_records(world, browser_page):
    _fund(world, world.shop_a, world.owner)
    _fund(world, world.shop_b, world.other)
    mine = _intercept(world, world.shop_a, world.owner)
    refused = _intercept(world, world.shop_a, world.owner)
    for status in (InterceptRequest.Status.SUBMITTED, InterceptRequest.Status.REJECTED):
        intercept_set_status(
            intercept=refused,
            to_status=status,
            source=InterceptEvent.Source.COURIER_ANSWER,
            failure_code="ALREADY_SIGNED",
            failure_reason="快件已签收",
        )
    theirs = _intercept(world, world.shop_b, world.other)

    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.get_by_role("link", name="拦截记录").first.click()
    page.wait_for_selector("#result_list")
    table = page.locator("#result_list").inner_text()
    screenshot(page, "owner_intercept_records")
    assert mine.parcel.order.order_no in table and refused.parcel.order.order_no in table
    assert theirs.parcel.order.order_no not in page.content()
    assert "退回寄件人" in table and "快递拒绝" in table and "3.00" in table

    page.locator("#result_list a").first.click()
    page.wait_for_selector("text=拦截记录")
    screenshot(page, "owner_intercept_record")


def test_the_after_sale_page_shows_its_intercepts(world, browser_page):
    from django.urls import reverse

    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    url = reverse("admin:intercepts_aftersale_change", args=[intercept.after_sale_id])
    page.goto(page.live_server_url + url)
    page.wait_for_selector("#intercepts-group")
    assert "退回寄件人" in page.locator("#intercepts-group").inner_text()
    screenshot(page, "owner_after_sale_intercepts")
    link = page.locator("#intercepts-group a[href*='/interceptrequest/']").first
    page.goto(page.live_server_url + link.get_attribute("href"))
    page.wait_for_selector("text=已创建")
