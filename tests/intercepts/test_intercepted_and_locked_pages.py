"""What the after-sale and intercept pages say before anything is typed: a parcel already
intercepted or being intercepted (with its record, and no second intercept offered), and a
payment password that wrong tries have locked (with when it unlocks)."""

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.models import PaymentPassword
from billing.services import BillingError
from intercepts.models import InterceptRequest
from intercepts.services.errors import DomainError
from intercepts.services.intercept_requests import (
    intercepts_request,
)
from tests.factories import make_intercept, sandbox_served
from tests.intercepts.readiness import PIN, make_ready

S = InterceptRequest.Status


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def ready(world, sandbox):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    return world


def _intercept(world, *statuses) -> InterceptRequest:
    return make_intercept(world.owner, world.parcel_a, world.after_sale_a, *statuses)


def _after_sale_page(world, user) -> str:
    url = reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    return user.get(url).content.decode()


def _intercept_page(world, user) -> str:
    url = reverse("admin:intercepts_aftersale_intercept", args=[world.after_sale_a.pk])
    return user.get(url).content.decode()


def test_after_a_successful_intercept_the_after_sale_says_so_and_offers_no_second(ready, login):
    world = ready
    intercept = _intercept(world, S.SUBMITTED, S.SUCCEEDED)
    page = _after_sale_page(world, login(world.agent))
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert f"包裹 {world.parcel_a.waybill_no} 已拦截成功，无需再次拦截。" in page
    assert f'href="{record}">查看拦截记录' in page
    assert 'id="start-intercept"' not in page and "发起拦截" not in page


def test_an_intercept_in_progress_is_said_with_its_record_and_no_second_offered(ready, login):
    world = ready
    intercept = _intercept(world, S.SUBMITTED)
    page = _after_sale_page(world, login(world.agent))
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert f"包裹 {world.parcel_a.waybill_no} 的拦截正在进行中（已提交快递）。" in page
    assert f'href="{record}">查看拦截记录' in page
    assert 'id="start-intercept"' not in page


def test_the_intercept_page_of_an_intercepted_parcel_refuses_a_second(ready, login):
    world = ready
    intercept = _intercept(world, S.SUBMITTED, S.SUCCEEDED)
    page = _intercept_page(world, login(world.owner))
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert "此包裹已拦截成功。" in page and f'href="{record}"' in page
    assert 'data-code="no_open_intercept" data-passed="no"' in page
    assert "此包裹已拦截成功，不能再次拦截。" in page
    assert 'id="confirm-intercept"' not in page
    # Nor can a crafted post make a second one.
    with pytest.raises(DomainError, match="此包裹已拦截成功，不能再次拦截"):
        intercepts_request(
            actor=world.owner,
            after_sale=world.after_sale_a,
            parcels=[world.parcel_a],
            action=InterceptRequest.Action.RETURN,
            pin=PIN,
        )


def test_a_locked_payment_password_is_shown_when_the_page_opens(ready, login):
    world = ready
    for _ in range(billing_services.PIN_MAX_FAILURES):
        with pytest.raises(BillingError):
            billing_services.payment_password_check(shop_id=world.shop_a.pk, pin="000000")
    until = PaymentPassword.objects.get(shop=world.shop_a).locked_until
    page = _intercept_page(world, login(world.agent))
    unlocks = timezone.localtime(until).strftime("%H:%M")
    assert f"错误次数过多：支付密码已锁定至 {unlocks}。" in page
    assert "店主可用登录密码重置支付密码，立即解除锁定" in page
    assert 'id="confirm-intercept" disabled' in page


def test_an_unlocked_payment_password_shows_no_lock(ready, login):
    world = ready
    page = _intercept_page(world, login(world.agent))
    assert "支付密码已锁定" not in page and 'id="pin-locked"' not in page
    assert 'id="confirm-intercept" disabled' not in page


def test_a_caught_parcel_is_not_stopped_again_by_any_caller(ready):
    """The service that opens a request refuses a parcel already caught, whoever calls it: the
    rules are checked earlier and could be passed by a race or another caller."""
    world = ready
    _intercept(world, S.SUBMITTED, S.SUCCEEDED)
    with pytest.raises(DomainError, match="此包裹已拦截成功，不能再次拦截"):
        _intercept(world)
    assert InterceptRequest.objects.filter(parcel=world.parcel_a).count() == 1
    assert billing_selectors.wallet_balances(shop_id=world.shop_a.pk).held_fen == 0  # no hold


def test_the_parcel_page_names_its_intercept_and_offers_no_waybill_correction(ready, login):
    """A parcel's own page says it was intercepted, with the record, and no longer offers the
    waybill correction the service would refuse."""
    world = ready
    correction = reverse("admin:intercepts_parcel_correct_waybill", args=[world.parcel_a.pk])
    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk])
    assert correction in login(world.owner).get(url).content.decode()
    intercept = _intercept(world, S.SUBMITTED, S.SUCCEEDED)
    page = login(world.owner).get(url).content.decode()
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert "拦截（退回寄件人）：已拦截。" in page and f'href="{record}"' in page
    assert correction not in page
    # Another shop's owner does not reach the page at all.
    assert login(world.other).get(url).status_code == 404
