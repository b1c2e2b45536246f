"""Signing in with a password and an authenticator code in a real browser, in Chinese; the
workbench pages then run under the Content-Security-Policy with no violation reported."""

from base64 import b32encode

import pytest
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing import services
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Chromium reports a blocked script, style or connection on the console; the listener below
# reports the DOM's own securitypolicyviolation events there too.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
    console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});
"""

POLICY_MARKS = ("Content Security Policy", "CSP violation", "Refused to")


def _code(device) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


@pytest.fixture
def enrolled_finance(world):
    wallet = services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=120_000, external_reference="BANK-CSP-1"
    )
    device = TOTPDevice.objects.create(user=world.finance, name="authenticator", confirmed=True)
    return wallet, device


@override_settings(WORKBENCH_REQUIRE_2FA=True)
def test_finance_signs_in_with_a_code_and_pages_run_under_the_policy(
    world, enrolled_finance, browser_page
):
    wallet, device = enrolled_finance
    page = browser_page
    reports = []
    page.on(
        "console",
        lambda message: (
            reports.append(message.text)
            if any(mark in message.text for mark in POLICY_MARKS)
            else None
        ),
    )
    page.on("pageerror", lambda error: reports.append(f"page error: {error}"))
    page.add_init_script(REPORT_VIOLATIONS)
    base = page.live_server_url

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "finance")
    page.fill("#id_password", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/two-factor/verify/**")
    assert "两步验证" in page.content()
    screenshot(page, "signin_two_factor_code")
    page.fill("#id_code", _code(device))
    page.get_by_role("button", name="验证").click()
    page.wait_for_url(f"{base}/admin/")

    headers = {}
    for name, path in [
        ("index", "/admin/"),
        ("wallets", "/admin/billing/wallet/"),
        ("wallet", f"/admin/billing/wallet/{wallet.pk}/change/"),
        ("top_ups", "/admin/billing/topup/"),
        ("two_factor", "/admin/two-factor/"),
    ]:
        response = page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("() => Boolean(window.Alpine)"), name  # Alpine ran under the policy
        headers[name] = response.headers.get("content-security-policy", "")
        screenshot(page, f"signin_csp_{name}")

    assert all("script-src 'self'" in policy for policy in headers.values()), headers
    assert reports == []
    assert "BANK-CSP-1" in page.goto(f"{base}/admin/billing/topup/").text()


@override_settings(WORKBENCH_REQUIRE_2FA=True)
def test_an_owner_enrols_an_authenticator_in_the_browser(world, browser_page):
    page = browser_page
    reports = []
    page.on(
        "console",
        lambda message: (
            reports.append(message.text)
            if any(mark in message.text for mark in POLICY_MARKS)
            else None
        ),
    )
    page.add_init_script(REPORT_VIOLATIONS)
    base = page.live_server_url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-for-tests-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/two-factor/?next=**")
    assert page.locator("#two-factor-qr svg").is_visible()
    screenshot(page, "signin_two_factor_enrol")
    device = TOTPDevice.objects.get(user=world.owner, confirmed=False)
    assert page.locator("#two-factor-secret").inner_text() == b32encode(device.bin_key).decode()
    page.fill("#id_code", _code(device))
    page.get_by_role("button", name="开启两步验证").click()
    page.wait_for_selector("#recovery-codes")
    screenshot(page, "signin_two_factor_recovery_codes")
    assert page.locator("#recovery-codes li").count() == 10
    page.get_by_role("link", name="进入工作台").click()
    page.wait_for_url(f"{base}/admin/")
    assert reports == []
