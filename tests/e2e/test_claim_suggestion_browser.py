"""建议索赔 in a real browser, in Chinese: an intercept not back a week after it succeeded is
found by the list's filter, and its record page says why and when, with the courier's phone."""

from datetime import timedelta

import pytest
from django.urls import reverse

from couriers.models import Courier
from intercepts.models import InterceptRequest
from intercepts.services.claim_watch import claims_suggest_overdue
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import make_after_sale, make_intercept
from tests.intercepts.test_intercept_records import _fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
S = InterceptRequest.Status


def test_a_late_intercept_is_filtered_and_explained(world, browser_page):
    _fund(world, world.shop_a, world.owner)
    zto = Courier.objects.get(code="ZTO")
    after_sale, parcel = make_after_sale(world.shop_a, courier=zto)
    late = make_intercept(world.owner, parcel, after_sale, S.SUBMITTED, S.ACCEPTED, S.SUCCEEDED)
    # Another of the shop's intercepts, still with the courier: not suggested.
    after_sale, parcel = make_after_sale(world.shop_a, courier=zto)
    make_intercept(world.owner, parcel, after_sale, S.SUBMITTED, S.ACCEPTED)
    late.refresh_from_db()
    assert claims_suggest_overdue(now=late.succeeded_at + timedelta(days=7)) == 1

    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")
    list_url = page.live_server_url + reverse("admin:intercepts_interceptrequest_changelist")
    page.goto(f"{list_url}?claim=suggested")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "超时未退回" in rows.first.inner_text()
    assert late.parcel.order.order_no in rows.first.inner_text()
    screenshot(page, "claim_suggestion_1_list_filtered")

    page.goto(
        page.live_server_url + reverse("admin:intercepts_interceptrequest_change", args=[late.pk])
    )
    box = page.locator("#claim-suggestion")
    assert "建议索赔" in box.inner_text() and "超时未退回" in box.inner_text()
    assert zto.service_phone in box.inner_text()
    assert page.locator("#events-group >> text=建议索赔：拦截成功 7 天后，包裹仍未退回。").count()
    screenshot(page, "claim_suggestion_2_record")
