"""The intercept record page and the money buttons in a real browser, in Chinese.

The record page agrees with itself as the courier answers: the status, the courier's reference
and the time of the last change move together in the live panel, without a reload, and nothing
below it still says 已创建. 撤回拦截 and 同意退款 lead to a page that says what will happen
before anything does.
"""

import pytest
from django.urls import reverse

from billing import selectors as billing_selectors
from intercepts.models import AfterSale, InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_set_status
from tests.e2e.conftest import login_in_browser, screenshot
from tests.intercepts.test_intercept_records import _fund, _intercept

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
S = InterceptRequest.Status

# The text of the record page's read-only fields, the history left out (it refreshes itself).
FIELDS_TEXT = """Array.from(document.querySelectorAll('fieldset.module'))
    .filter(f => !f.closest('#events-group')).map(f => f.innerText).join(' ')"""


def _record_url(page, intercept):
    return page.live_server_url + reverse(
        "admin:intercepts_interceptrequest_change", args=[intercept.pk]
    )


def test_the_record_page_moves_as_one_when_the_courier_answers(world, browser_page):
    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.goto(_record_url(page, intercept))
    assert page.locator("#intercept-status").inner_text() == "已创建"
    assert page.locator("#courier-reference").inner_text() == "—"
    page.evaluate("window.__stillTheSamePage = true")
    screenshot(page, "record_1_created")

    intercept_set_status(intercept=intercept, to_status=S.SUBMITTED, source="user")
    intercept_set_status(
        intercept=intercept,
        to_status=S.ACCEPTED,
        source=InterceptEvent.Source.COURIER_ANSWER,
        courier_reference="ZTO-REF-4711",
    )
    page.wait_for_function(
        "document.getElementById('intercept-status').innerText === '快递已受理'", timeout=10_000
    )
    assert page.locator("#courier-reference").inner_text() == "ZTO-REF-4711"
    assert "已在钱包中冻结" in page.locator("#fee-state").inner_text()
    page.wait_for_selector("#events-group >> text=快递已受理")
    assert page.evaluate("window.__stillTheSamePage") is True
    fields = page.evaluate(FIELDS_TEXT)
    assert "退回寄件人" in fields  # the fields are there, and
    assert "已创建" not in fields and "快递受理单号" not in fields  # none of them lags behind
    screenshot(page, "record_2_accepted_without_reload")


def test_withdrawing_asks_first_then_returns_the_fee(world, browser_page):
    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.goto(_record_url(page, intercept))
    page.locator("#withdraw-intercept").click()

    page.wait_for_selector("#confirm-form")
    text = page.locator("#content-main").inner_text()
    assert "将立即撤回，冻结的 3.00 元费用退回钱包可用余额" in text
    assert "撤回后包裹将继续派送给原收件人" in text
    screenshot(page, "confirm_withdraw")
    intercept.refresh_from_db()
    assert intercept.status == S.CREATED  # showing the page did nothing

    page.locator("#confirm-submit").click()
    page.wait_for_selector("#intercept-live")
    assert page.locator("#intercept-status").inner_text() == "已撤回"
    assert "已解冻退回钱包" in page.locator("#fee-state").inner_text()
    assert "拦截已撤回，费用已退回钱包。" in page.content()
    assert page.locator("#intercept-steps li").all_inner_texts() == ["已创建", "已撤回"]
    screenshot(page, "confirm_withdraw_done")
    intercept.refresh_from_db()
    balances = billing_selectors.wallet_balances(shop_id=world.shop_a.pk)
    assert (intercept.status, balances.held_fen) == (S.CANCELLED, 0)


def test_approving_a_refund_asks_first_and_names_the_amount(world, browser_page):
    AfterSale.objects.filter(pk=world.after_sale_a.pk).update(refund_amount_fen=245_500)
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    after_sale_url = page.live_server_url + reverse(
        "admin:intercepts_aftersale_change", args=[world.after_sale_a.pk]
    )
    page.goto(after_sale_url)
    page.get_by_role("link", name="同意退款").click()

    page.wait_for_selector("#confirm-form")
    assert "同意退款 2,455.00 元？" in page.content()
    assert "由平台退还给买家。此操作无法撤销" in page.locator("#content-main").inner_text()
    assert "该订单没有包裹被拦截退回" in page.locator("#content-main").inner_text()
    screenshot(page, "confirm_refund")
    # Changing one's mind changes nothing.
    page.locator("#confirm-cancel").click()
    page.wait_for_url(after_sale_url)
    assert AfterSale.objects.get(pk=world.after_sale_a.pk).status == AfterSale.Status.PENDING

    page.get_by_role("link", name="同意退款").click()
    page.get_by_role("button", name="确认同意退款 2,455.00 元").click()
    page.wait_for_selector("text=已同意退款。")
    screenshot(page, "confirm_refund_done")
    assert AfterSale.objects.get(pk=world.after_sale_a.pk).status == AfterSale.Status.APPROVED
