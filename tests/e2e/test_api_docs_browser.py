"""The ERP API's docs page (Swagger UI) in a real Chromium with the network blocked to every host
but this one: its assets are ours (drf-spectacular-sidecar), it renders every operation, and
our Content-Security-Policy lets it run (the init script is a file of its own, not inline)."""

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Recorded by the page itself: every CSP violation the browser reports, whether or not it is
# also written to the console.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_the_docs_page_works_offline_under_our_csp(browser_page):
    page = browser_page
    elsewhere, requested, console = [], [], []

    def only_local(route):
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort("blockedbyclient")

    page.context.route("**/*", only_local)
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.add_init_script(CSP_LISTENER)

    response = page.goto(f"{page.live_server_url}/api/docs/")
    create = page.locator("#operations-intercepts-intercepts_create")
    create.wait_for()
    page.locator(".opblock").nth(23).wait_for()
    page.wait_for_load_state("networkidle")
    shot = screenshot(page, "api_docs")

    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp  # the project's strict policy is on this page too
    assert "POST" in create.inner_text() and "/api/v1/intercepts/" in create.inner_text()
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(operations) == 24, operations
    assert {
        "/api/v1/wallet/",
        "/api/v1/shipments/",
        "/api/v1/shipment-anomalies/{id}/",
        "/api/v1/parcels/{id}/eligibility/",
        "/api/v1/claims/{id}/evidence/{evidence_id}/",
    } <= set(operations)
    assert (
        page.locator(".swagger-ui .info .title")
        .inner_text()
        .startswith("Parcel intercepts ERP API")
    )
    # Nothing was even asked of another host, and the assets came from us.
    assert not elsewhere, elsewhere
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in requested)
    assert page.evaluate("window.__cspViolations") == []
    assert not [line for line in console if "Content Security Policy" in line], console
    assert shot.exists()
