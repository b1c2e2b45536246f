"""The newcomer's first half hour, in a real browser and in Chinese, on the demo `make run` loads.

The demo owner signs in with the password the demo prints, intercepts a parcel from an
after-sale (signing the agreement on the shop's first intercept), and watches the record page
take the courier's answer without a reload, its header and its details agreeing. A second
parcel is intercepted and withdrawn through the confirmation page, and the wallet's movements
then read one line per movement: the two fees held, the withdrawn one released.

A real Celery worker sends the requests to the sandbox courier, which answers after a second
and a half on a real-time clock, so the parcels stay where the demo put them.
"""

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.urls import reverse

from billing.models import Wallet
from couriers.models import Courier
from couriers.sandbox import FaultOptions, SandboxServer
from intercepts.demo import DEMO_PIN, DEMO_USERS, repoint_sandbox_accounts
from intercepts.eligibility import intercept_eligibility
from intercepts.models import AfterSale, InterceptRequest
from intercepts.tracking.polling import courier_queue
from shops.models import Shop
from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

S = InterceptRequest.Status
OWNER, OWNER_PASSWORD, SHOP_CODE = DEMO_USERS[0][:3]
# The record page's read-only fields, the history left out (it refreshes itself).
FIELDS_TEXT = """Array.from(document.querySelectorAll('fieldset.module'))
    .filter(f => !f.closest('#events-group')).map(f => f.innerText).join(' ')"""


@pytest.fixture
def demo(celery_eager):
    """The demo as `make run` seeds it, its courier accounts pointed at a sandbox courier."""
    call_command("seed_demo", force=True)
    with SandboxServer(speed=1, seed=16, faults=FaultOptions(latency_ms=1500)) as server:
        # Pushes go nowhere: the answers to our requests are what the page shows.
        repoint_sandbox_accounts(sandbox_url=server.url, site_url="http://127.0.0.1:9")
        queues = [
            "celery",
            *(courier_queue(code) for code in Courier.objects.values_list("code", flat=True)),
        ]
        celery_eager.conf.task_always_eager = False
        with start_worker(celery_eager, pool="solo", perform_ping_check=False, queues=queues):
            yield Shop.objects.get(code=SHOP_CODE)


def _interceptable(shop: Shop, count: int) -> list[AfterSale]:
    """After-sales of the shop whose only parcel may be sent back now (the agreement aside,
    which the owner signs at the first intercept), each with a different courier where the
    demo has them."""
    found, couriers = [], set()
    candidates = (
        AfterSale.objects.filter(shop=shop, status=AfterSale.Status.PENDING)
        .select_related("order")
        .prefetch_related("order__parcels__courier")
        .order_by("pk")
    )
    for after_sale in candidates:
        parcels = list(after_sale.order.parcels.all())
        if len(parcels) != 1 or parcels[0].courier.code in couriers:
            continue
        results = intercept_eligibility(
            after_sale=after_sale, parcel=parcels[0], action=InterceptRequest.Action.RETURN
        )
        if all(r.passed is not False for r in results if r.code != "agreement_signed"):
            found.append(after_sale)
            couriers.add(parcels[0].courier.code)
            if len(found) == count:
                return found
    raise AssertionError(f"the demo has fewer than {count} after-sales to intercept")


def _intercept_from_the_after_sale(page, after_sale: AfterSale, name: str) -> InterceptRequest:
    page.goto(
        page.live_server_url + reverse("admin:intercepts_aftersale_change", args=[after_sale.pk])
    )
    page.get_by_role("link", name="发起拦截").click()
    if page.locator("#agreement-text").count():
        screenshot(page, f"{name}_agreement")
        page.get_by_label("我已阅读本协议，代表店铺签署").check()
        page.get_by_role("button", name="签署协议").click()
    page.wait_for_selector("#intercept-form")
    assert page.locator(".rule[data-passed=no]").count() == 0
    screenshot(page, f"{name}_rules_and_fee")
    page.fill("#id_pin", DEMO_PIN)
    page.get_by_role("button", name="支付并拦截").click()
    page.wait_for_selector("#intercept-live")
    return InterceptRequest.objects.get(after_sale=after_sale)


def _wait_for_status(page, label: str) -> None:
    # Null-safe: the check may run while a form's post is still loading the next page.
    page.wait_for_function(
        f"document.getElementById('intercept-status')?.innerText === '{label}'", timeout=30_000
    )


def test_the_demo_owner_intercepts_withdraws_and_reads_the_wallet(demo, browser_page):
    shop, page = demo, browser_page
    first, second = _interceptable(shop, 2)

    login_in_browser(page, OWNER, OWNER_PASSWORD)
    screenshot(page, "newcomer_1_index")

    # An intercept, answered while the merchant looks at the record page.
    intercept = _intercept_from_the_after_sale(page, first, "newcomer_2")
    page.evaluate("window.__stillTheSamePage = true")
    _wait_for_status(page, "快递已受理")
    assert page.evaluate("window.__stillTheSamePage") is True
    intercept.refresh_from_db()
    assert intercept.status == S.ACCEPTED and intercept.courier_reference
    assert page.locator("#courier-reference").inner_text() == intercept.courier_reference
    assert "已在钱包中冻结" in page.locator("#fee-state").inner_text()
    page.wait_for_selector("#events-group >> text=快递已受理")
    fields = page.evaluate(FIELDS_TEXT)
    assert first.order.order_no in fields and "退回寄件人" in fields
    assert "已创建" not in fields  # nothing below the header lags behind it
    screenshot(page, "newcomer_3_record_agrees")

    # A second one, withdrawn: the confirmation says what will happen before it does.
    withdrawn = _intercept_from_the_after_sale(page, second, "newcomer_4")
    _wait_for_status(page, "快递已受理")
    page.locator("#withdraw-intercept").click()
    page.wait_for_selector("#confirm-form")
    confirm_text = page.locator("#content-main").inner_text()
    assert "撤回" in confirm_text and "退回钱包" in confirm_text
    screenshot(page, "newcomer_5_confirm_withdraw")
    withdrawn.refresh_from_db()
    assert withdrawn.status == S.ACCEPTED  # showing the page did nothing
    page.locator("#confirm-submit").click()
    _wait_for_status(page, "已撤回")
    assert "已解冻退回钱包" in page.locator("#fee-state").inner_text()
    screenshot(page, "newcomer_6_withdrawn")
    withdrawn.refresh_from_db()
    assert withdrawn.status == S.CANCELLED

    # The wallet in the merchant's words: one line per movement, by order and waybill.
    wallet = Wallet.objects.get(shop=shop)
    page.goto(page.live_server_url + reverse("admin:billing_wallet_change", args=[wallet.pk]))
    page.locator("#wallet-movements-link").click()
    page.wait_for_selector("table#wallet-movements")
    screenshot(page, "newcomer_7_wallet_movements")
    rows = page.locator("#wallet-movements tbody tr").all_inner_texts()
    released, held_second, held_first = rows[:3]
    second_parcel = withdrawn.parcel
    assert "费用释放" in released and second_parcel.waybill_no in released
    assert "费用冻结" in held_second and second.order.order_no in held_second
    assert "费用冻结" in held_first and intercept.parcel.waybill_no in held_first
    assert "充值" in rows[-1]
    assert "intercept:" not in page.locator("#wallet-movements").inner_text()
