"""API keys and webhooks in a real browser: the owner makes a key from the sidebar, sees it once
and uses it on the API; an intercept made with it shows up among the webhook deliveries."""

import re

import httpx
import pytest

from couriers.sandbox import SandboxServer
from intercepts.models import InterceptRequest
from shops.webhooks import webhook_endpoint_create
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import sandbox_served
from tests.intercepts.readiness import make_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(speed=1, seed=44) as server:
        yield server


def test_the_owner_makes_a_key_uses_it_and_sees_the_webhook(world, sandbox, browser_page):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    webhook_endpoint_create(
        actor=world.owner, shop=world.shop_a, url="http://127.0.0.1:9/erp", description="ERP"
    )
    page = browser_page
    login_in_browser(page, "owner", "pw-for-tests-123")

    page.get_by_role("link", name="API 密钥").first.click()
    page.locator("a[href$='/shops/apikey/add/']").first.click()
    page.select_option("#id_shop", str(world.shop_a.pk))
    page.fill("#id_name", "聚水潭 ERP")
    page.fill("#id_allowed_ips", "127.0.0.1")
    screenshot(page, "api_key_form")
    page.locator("button[name=_save], input[name=_save]").first.click()
    page.wait_for_selector("#api-key")
    screenshot(page, "api_key_shown_once")
    raw = page.locator("#api-key").inner_text().strip()
    assert re.fullmatch(r"pik_[0-9a-f]{8}_[A-Za-z0-9_-]+", raw)
    page.get_by_role("link", name="返回 API 密钥列表").click()
    page.wait_for_selector("#result_list")

    api = f"{page.live_server_url}/api/v1"
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "browser-1"}
    body = {"after_sale": world.after_sale_a.pk, "parcel": world.parcel_a.pk, "action": "return"}
    created = httpx.post(f"{api}/intercepts/", json=body, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    assert InterceptRequest.objects.get().channel == "api"

    # The key is not shown again; its list row says who and when.
    page.reload()
    assert raw not in page.content()
    assert "聚水潭 ERP" in page.locator("#result_list").inner_text()

    page.get_by_role("link", name="Webhook 投递记录").first.click()
    page.wait_for_selector("#result_list")
    screenshot(page, "webhook_deliveries")
    assert "intercept.status_changed" in page.locator("#result_list").inner_text()
