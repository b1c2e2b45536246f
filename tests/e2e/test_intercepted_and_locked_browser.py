"""In a real browser, in Chinese: an after-sale whose parcel is already intercepted says so
and links the record instead of offering 发起拦截; the intercept page shows a locked payment
password, and when it unlocks, as soon as it opens."""

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from billing.models import PaymentPassword
from billing.services import BillingError
from couriers.sandbox import SandboxServer
from intercepts.models import InterceptRequest
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import make_after_sale, make_intercept, sandbox_served
from tests.intercepts.readiness import make_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

S = InterceptRequest.Status


@pytest.fixture
def courier():
    with SandboxServer(speed=1, seed=43) as server:
        yield server


@pytest.fixture
def ready(world, courier):
    sandbox_served(courier, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    return world


def test_an_intercepted_parcel_is_said_and_not_offered_again(ready, browser_page):
    world, page = ready, browser_page
    intercept = make_intercept(
        world.owner, world.parcel_a, world.after_sale_a, S.SUBMITTED, S.SUCCEEDED
    )
    login_in_browser(page, "agent", "pw-for-tests-123")
    page.goto(
        page.live_server_url
        + reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    )
    notice = page.locator(".standing-intercept")
    notice.wait_for()
    screenshot(page, "after_sale_already_intercepted")
    assert f"包裹 {world.parcel_a.waybill_no} 已拦截成功" in notice.inner_text()
    assert page.locator("#start-intercept").count() == 0
    notice.get_by_role("link", name="查看拦截记录").click()
    page.wait_for_url(f"**/interceptrequest/{intercept.pk}/change/")


def test_the_pay_page_shows_the_lock_when_it_opens(ready, browser_page):
    world, page = ready, browser_page
    for _ in range(billing_services.PIN_MAX_FAILURES):
        with pytest.raises(BillingError):
            billing_services.payment_password_check(shop_id=world.shop_a.pk, pin="000000")
    until = timezone.localtime(PaymentPassword.objects.get(shop=world.shop_a).locked_until)
    after_sale, _parcel = make_after_sale(world.shop_a)
    login_in_browser(page, "agent", "pw-for-tests-123")
    page.goto(
        page.live_server_url + reverse("admin:intercepts_aftersale_intercept", args=[after_sale.pk])
    )
    locked = page.locator("#pin-locked")
    locked.wait_for()
    screenshot(page, "intercept_page_pin_locked")
    assert f"支付密码已锁定至 {until:%H:%M}" in locked.inner_text()
    assert page.locator("#confirm-intercept").is_disabled()
