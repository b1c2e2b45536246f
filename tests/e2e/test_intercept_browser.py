"""Intercepts in a real browser, in Chinese.

A merchant's after-sales agent opens an after-sale, is led to sign the intercept agreement on
the shop's first intercept, enters the payment password and confirms; the courier's answer then
appears on the record page without a reload (a real Celery worker sends the request to the
sandbox courier, which takes a second and a half to answer). Platform CS intercepts on an
after-sale under arbitration, with a reason and no password.
"""

import pytest
from celery.contrib.testing.worker import start_worker
from django.urls import reverse

from couriers.models import Courier, CourierAccount
from couriers.sandbox import FaultOptions, SandboxServer
from intercepts.models import AfterSale, InterceptRequest
from intercepts.tracking.polling import courier_queue
from shops.models import Shop
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import sandbox_served
from tests.intercepts.readiness import PIN, make_ready, zto_waybill

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def slow_courier():
    """A sandbox courier that answers after 1.5 s, on a clock slow enough that an accepted
    intercept stays accepted while the test looks at it."""
    with SandboxServer(speed=1, seed=41, faults=FaultOptions(latency_ms=1500)) as server:
        yield server


def _prepare(world, server, *, shop, owner, after_sale, parcel):
    account = sandbox_served(server, "kuaidi100", ["ZTO"])
    CourierAccount.objects.filter(pk=account.pk).update(callback_url="http://127.0.0.1:9/unheard")
    make_ready(shop, owner)
    parcel.courier = Courier.objects.get(code="ZTO")
    parcel.waybill_no = zto_waybill("2")
    parcel.save(update_fields=["courier", "waybill_no"])


def test_an_agent_signs_pays_and_sees_the_answer_arrive(
    world, browser_page, slow_courier, celery_eager
):
    _prepare(
        world,
        slow_courier,
        shop=world.shop_a,
        owner=world.owner,
        after_sale=world.after_sale_a,
        parcel=world.parcel_a,
    )
    # The shop's first intercept: nobody has signed the agreement yet.
    Shop.objects.filter(pk=world.shop_a.pk).update(
        intercept_agreement_signed_at=None, intercept_agreement_version=""
    )
    page = browser_page
    login_in_browser(page, "agent", "pw-for-tests-123")
    page.goto(
        page.live_server_url
        + reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    )
    screenshot(page, "intercept_1_after_sale")
    page.get_by_role("link", name="发起拦截").click()

    page.wait_for_selector("#agreement-text")
    assert "店铺首次拦截前需签署拦截服务协议" in page.content()
    screenshot(page, "intercept_2_agreement")
    page.get_by_label("我已阅读本协议，代表店铺签署").check()
    page.get_by_role("button", name="签署协议").click()

    page.wait_for_selector("#intercept-form")
    card = page.locator(".parcel-card")
    assert "中通快递" in card.inner_text() and "运输中" in card.inner_text()
    assert page.locator(".rule[data-passed=no]").count() == 0
    assert page.locator(".rule[data-passed=yes]").count() == 12
    assert card.locator(".fee").inner_text() == "3.00"
    assert card.locator(".chance").inner_text() == "88%"
    screenshot(page, "intercept_3_rules_and_fee")

    # From here on tasks go through the broker to a real worker, as in production.
    celery_eager.conf.task_always_eager = False
    with start_worker(
        celery_eager, pool="solo", perform_ping_check=False, queues=[courier_queue("ZTO")]
    ):
        page.fill("#id_pin", PIN)
        page.get_by_role("button", name="支付并拦截").click()
        page.wait_for_selector("#intercept-live")
        assert page.locator("#intercept-status").inner_text() in ("已创建", "已提交快递")
        assert "等待快递公司应答" in page.locator("#intercept-live").inner_text()
        screenshot(page, "intercept_4_waiting")
        # Anything set on this page survives only if the answer comes without a reload.
        page.evaluate("window.__stillTheSamePage = true")
        page.wait_for_function(
            "document.getElementById('intercept-status').innerText === '快递已受理'",
            timeout=20_000,
        )
        assert page.evaluate("window.__stillTheSamePage") is True
        # The history below gains the courier's answer too, still without a reload.
        page.wait_for_selector("#events-group >> text=快递答复")
        assert page.evaluate("window.__stillTheSamePage") is True
        screenshot(page, "intercept_5_accepted")

    intercept = InterceptRequest.objects.get(shop=world.shop_a)
    assert intercept.status == InterceptRequest.Status.ACCEPTED
    assert intercept.requested_by == world.agent
    assert Shop.objects.get(pk=world.shop_a.pk).intercept_agreement_signed_by == world.agent
    assert "已在钱包中冻结" in page.locator("#fee-state").inner_text()


def test_cs_intercepts_for_the_merchant_under_arbitration(world, browser_page, slow_courier):
    _prepare(
        world,
        slow_courier,
        shop=world.shop_b,
        owner=world.other,
        after_sale=world.after_sale_b,
        parcel=world.parcel_b,
    )
    AfterSale.objects.filter(pk=world.after_sale_b.pk).update(
        arbitration=AfterSale.Arbitration.FOR_BUYER
    )
    page = browser_page
    login_in_browser(page, "cs", "pw-for-tests-123")
    page.goto(
        page.live_server_url
        + reverse("admin:intercepts_aftersale_change", args=[world.after_sale_b.pk])
    )
    page.get_by_role("link", name="代商家发起拦截").click()
    page.wait_for_selector("#intercept-form")
    assert page.locator("#id_pin").count() == 0  # no payment password for CS
    screenshot(page, "intercept_cs_1_form")
    page.get_by_role("button", name="代商家发起拦截").click()
    assert "必填项" in page.content()  # the reason is required
    page.fill("#id_reason", "仲裁判定买家胜诉，平台代商家拦截")
    page.get_by_role("button", name="代商家发起拦截").click()
    page.wait_for_selector("#intercept-live")
    page.wait_for_function(
        "document.getElementById('intercept-status').innerText === '快递已受理'",
        timeout=20_000,
    )
    screenshot(page, "intercept_cs_2_accepted")
    intercept = InterceptRequest.objects.get(shop=world.shop_b)
    assert intercept.channel == InterceptRequest.Channel.PLATFORM_CS
    assert intercept.requested_by == world.cs
    assert "平台客服" in page.content()  # the record shows the channel
