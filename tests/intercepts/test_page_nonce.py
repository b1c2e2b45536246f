"""The workbench's own inline scripts run under the Content-Security-Policy: each carries the
request's nonce."""

from django.urls import reverse

from tests.factories import sandbox_served
from tests.intercepts.readiness import make_ready


def test_the_intercept_pages_script_carries_the_requests_nonce(world, sandbox, login):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    url = reverse("admin:intercepts_aftersale_intercept", args=[world.after_sale_a.pk])
    response = login(world.agent).get(url)
    nonce = response.headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in response.content.decode()
