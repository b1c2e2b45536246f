"""The intercept service agreement in a real browser: the owner reads it in Chinese from the
shop's page, ticks the box and signs; the page then says who signed and when."""

import pytest
from django.urls import reverse

from shops.models import Shop
from tests.e2e.conftest import login_in_browser, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_owner_signs_the_agreement(world, browser_page):
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    page.goto(page.live_server_url + reverse("admin:shops_shop_change", args=[world.shop_a.pk]))
    page.click("#agreement-link")
    page.wait_for_selector("#agreement-text")
    assert "仅在快递成功拦截时扣除" in page.locator("#agreement-text").inner_text()
    screenshot(page, "owner_agreement")
    page.get_by_label("我已阅读本协议，代表店铺签署").check()
    page.get_by_role("button", name="签署协议").click()
    page.wait_for_selector("text=拦截服务协议已签署")
    shop = Shop.objects.get(pk=world.shop_a.pk)
    assert shop.intercept_agreement_signed_by_id == world.owner.pk
