"""With debug off, the 403, 404 and 500 pages are the workbench's own, in Chinese, with a way
back to the workbench."""

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

BACK = '<a href="/admin/">返回工作台</a>'


@pytest.fixture(autouse=True)
def _debug_off(settings):
    settings.DEBUG = False


def test_a_page_a_merchant_may_not_open_is_a_chinese_403(world, login):
    response = login(world.owner).get(reverse("admin:intercepts_courierpush_changelist"))
    body = response.content.decode()
    assert (response.status_code, "你无权打开此页面" in body, BACK in body) == (403, True, True)


def test_an_unknown_address_is_a_chinese_404(world, login):
    response = login(world.owner).get("/no-such-page/")
    body = response.content.decode()
    assert (response.status_code, "找不到该页面" in body, BACK in body) == (404, True, True)


def test_the_server_error_page_is_chinese_and_needs_no_context():
    # Django renders 500.html with an empty context: nothing it shows may depend on one.
    with translation.override("zh-hans"):
        body = render_to_string("500.html")
    assert ("服务器出错了" in body, "错误已记录，请稍后再试。" in body, BACK in body) == (
        True,
        True,
        True,
    )
