"""Workbench lists served from a cached frame are the pages the admin would have rendered.

The frame (sidebar, header, filters, table header) is kept per user, roles, language and list
query; only the rows, the pagination and the CSRF token are rendered for each request. These
tests compare frame-served pages with pages rendered whole, for every workbench list and the
whole cast, and check that what must change on each request does.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from intercepts import admin_frames
from intercepts.admin_frames import Frame, FrameCache, cut, frames
from intercepts.models import PLATFORM_CS, AfterSale
from tests.conftest import make_after_sale

LISTS = [
    "admin:intercepts_aftersale_changelist",
    "admin:intercepts_order_changelist",
    "admin:intercepts_parcel_changelist",
    "admin:intercepts_shop_changelist",
    "admin:billing_wallet_changelist",
    "admin:billing_ledgerentry_changelist",
    "admin:billing_hold_changelist",
    "admin:billing_adjustment_changelist",
    "admin:billing_invoicerequest_changelist",
]
CAST = ("owner", "agent", "viewer", "other", "cs", "finance")
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _page(response) -> str:
    """The page with its CSRF tokens (masked differently on every request) blanked out."""
    assert response.status_code == 200
    return TOKEN.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())


@pytest.fixture
def busy_world(world):
    for _ in range(25):
        make_after_sale(world.shop_a)
    return world


@pytest.fixture
def no_frames(monkeypatch):
    """Render every list page whole, as without the cache."""

    def render_whole():
        monkeypatch.setattr(frames, "max_bytes", 0)

    return render_whole


@pytest.mark.parametrize("route", LISTS)
@pytest.mark.parametrize("who", CAST)
def test_frame_served_page_is_the_page_rendered_whole(busy_world, login, route, who):
    client = login(busy_world.user(who))
    url = reverse(route)
    first = client.get(url)  # rendered whole, frame kept
    if first.status_code == 403:  # not this member's list (the role matrix covers it)
        assert client.get(url).status_code == 403
        return
    second = client.get(url)  # from the frame
    assert frames.hits == 1
    assert _page(second) == _page(first)
    saved = frames.max_bytes
    frames.max_bytes = 0
    try:
        whole = client.get(url)
    finally:
        frames.max_bytes = saved
    assert _page(second) == _page(whole)


@pytest.mark.parametrize(
    "query",
    [
        {"p": "2"},
        {"status": "pending"},
        {"status": "pending", "p": "2"},
        {"q": "no-such-number"},
        {"kind": "refund_only", "stage": "in_transit"},
    ],
)
@pytest.mark.parametrize("who", ["owner", "cs"])
def test_another_page_of_the_same_list_is_rendered_as_whole(busy_world, login, who, query):
    # The frame of page 1 (or of the unfiltered list) serves only what it was made from.
    client = login(busy_world.user(who))
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url, {k: v for k, v in query.items() if k != "p"})
    served = client.get(url, query)
    frames.max_bytes, saved = 0, frames.max_bytes
    try:
        whole = client.get(url, query)
    finally:
        frames.max_bytes = saved
    assert _page(served) == _page(whole)


def test_parcels_for_an_owner_keep_the_page_in_the_key(busy_world, login):
    # An owner may add parcels: the add button returns to the list's page, so each page has
    # its own frame.
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_parcel_changelist")
    client.get(url)
    client.get(url, {"p": "2"})
    assert frames.hits == 0
    assert "_changelist_filters=p%3D2" in client.get(url, {"p": "2"}).content.decode()
    assert frames.hits == 1


def test_rows_are_read_on_every_request(busy_world, login):
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    newest, _ = make_after_sale(busy_world.shop_a)
    AfterSale.objects.filter(pk=busy_world.after_sale_a.pk).update(status="refunded")
    page = _page(client.get(url))
    assert frames.hits == 1
    assert newest.order.order_no in page
    # The oldest after-sale is on page 2 now; its new status shows there.
    page_two = _page(client.get(url, {"p": "2"}))
    assert busy_world.after_sale_a.order.order_no in page_two
    row = page_two.split(busy_world.after_sale_a.order.order_no, 1)[1].split("</tr>", 1)[0]
    assert "已退款" in row


def test_each_user_gets_their_own_frame(world, login):
    url = reverse("admin:intercepts_aftersale_changelist")
    owner_page = _page(login(world.owner).get(url))
    assert world.after_sale_a.order.order_no in owner_page
    other_page = _page(login(world.other).get(url))
    assert frames.hits == 0
    assert world.after_sale_a.order.order_no not in other_page
    assert world.after_sale_b.order.order_no in other_page
    assert ">other<" in other_page.replace(" ", "").replace("\n", "")
    assert ">owner<" not in other_page.replace(" ", "").replace("\n", "")


def test_a_new_role_gets_a_new_frame(world, login):
    client = login(world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    as_merchant = _page(client.get(url))
    assert world.after_sale_b.order.order_no not in as_merchant
    assert "快递推送记录" not in as_merchant
    world.owner.groups.add(Group.objects.get(name=PLATFORM_CS))
    as_platform = _page(client.get(url))
    assert frames.hits == 0
    assert world.after_sale_b.order.order_no in as_platform
    assert "快递推送记录" in as_platform  # the platform's own pages in the sidebar


def test_each_language_gets_its_own_frame(busy_world, login):
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    english = client.get(url, headers={"accept-language": "en"})
    assert frames.hits == 0
    assert 'lang="en"' in _page(english)
    assert "After-sale orders" in _page(english)
    assert "售后单" not in _page(english)


def _leave_message(client, text: str) -> None:
    """A message waiting for the next page, as a redirect after an action leaves one."""
    from django.contrib.messages import constants
    from django.contrib.messages.storage.base import Message
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.test import RequestFactory

    storage = CookieStorage(RequestFactory().get("/"))
    client.cookies[storage.cookie_name] = storage._encode([Message(constants.SUCCESS, text)])


def test_a_page_with_messages_is_rendered_whole(busy_world, login):
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    _leave_message(client, "测试消息：筛选已保存")
    page = _page(client.get(url))
    assert frames.hits == 0
    assert "测试消息：筛选已保存" in page
    again = _page(client.get(url))
    assert frames.hits == 1
    assert "测试消息：筛选已保存" not in again


def test_csrf_token_of_a_frame_served_page_is_accepted(busy_world, client):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    served = client.get(url)
    assert frames.hits == 1
    tokens = set(TOKEN.findall(served.content.decode()))
    assert len(tokens) == 1
    token = tokens.pop()
    assert admin_frames.CSRF_SENTINEL not in served.content.decode()
    response = client.post(
        reverse("set_language"), {"language": "en", "next": url, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    refused = client.post(
        reverse("set_language"), {"language": "en", "next": url, "csrfmiddlewaretoken": "x" * 64}
    )
    assert refused.status_code == 403


def test_no_frames_are_kept_when_the_cache_is_off(busy_world, login, no_frames):
    no_frames()
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    client.get(url)
    assert len(frames) == 0
    assert frames.hits == 0


def test_cut_keeps_the_frame_and_serves_the_page():
    marked = (
        f"<head>{admin_frames.CSRF_SENTINEL}</head><table>"
        f"{admin_frames.hole_start('rows')}<tr>1</tr>{admin_frames.hole_end('rows')}</table>"
        f"<nav>{admin_frames.hole_start('pagination')}p1{admin_frames.hole_end('pagination')}"
        f"</nav><form>{admin_frames.CSRF_SENTINEL}</form>"
    )
    frame, served = cut(marked, "TOKEN")
    assert served == "<head>TOKEN</head><table><tr>1</tr></table><nav>p1</nav><form>TOKEN</form>"
    assert frame.holes == ("csrf", "rows", "pagination", "csrf")
    filled = frame.fill({"csrf": "T2", "rows": "<tr>2</tr>", "pagination": "p2"})
    assert filled == b"<head>T2</head><table><tr>2</tr></table><nav>p2</nav><form>T2</form>"


def test_frame_cache_stays_within_its_size_and_drops_the_least_used():
    def frame(name: bytes) -> Frame:
        return Frame((name * 40,), ())

    # Room for two frames: each counts its 40 bytes and the allowance for its paginations.
    size = frame(b"a").size
    assert size == 40 + admin_frames.MAX_PAGINATIONS * admin_frames.PAGINATION_BYTES
    cache = FrameCache(max_bytes=2 * size + 10)
    for name in (b"a", b"b", b"c"):
        cache.put(name, frame(name))
    assert cache.bytes <= cache.max_bytes
    assert cache.get(b"a") is None  # the oldest went first
    assert cache.get(b"c") is not None
    cache.get(b"b")
    cache.put(b"d", frame(b"d"))
    assert cache.get(b"b") is not None  # used recently, so kept
    assert cache.get(b"c") is None
    cache.put(b"huge", Frame((b"x" * (2 * size),), ()))
    assert cache.get(b"huge") is None
    assert cache.bytes <= cache.max_bytes


def test_paginations_kept_per_frame_are_bounded():
    kept = Frame((b"page",), ())
    for page in range(admin_frames.MAX_PAGINATIONS + 5):
        assert kept.pagination((page, True), lambda page=page: f"p{page}") == f"p{page}"
    assert len(kept.paginations) == admin_frames.MAX_PAGINATIONS
    long = "x" * (admin_frames.PAGINATION_BYTES + 1)
    assert Frame((b"",), ()).pagination((1, False), lambda: long) == long


def test_frames_are_dropped_when_a_template_changes(busy_world, login):
    from pathlib import Path

    from django.utils.autoreload import file_changed

    client = login(busy_world.owner)
    client.get(reverse("admin:intercepts_aftersale_changelist"))
    assert len(frames) == 1
    file_changed.send(sender=None, file_path=Path("intercepts/admin.py"))
    assert len(frames) == 1  # Python changes restart the server anyway
    file_changed.send(sender=None, file_path=Path("templates/admin/workbench/change_list.html"))
    assert len(frames) == 0


def test_a_renamed_courier_gets_a_new_frame(busy_world, login):
    from couriers.models import Courier

    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    assert "中通快递" in _page(client.get(url))
    Courier.objects.filter(code="ZTO").update(name_zh="中通速递")
    page = _page(client.get(url))
    assert frames.hits == 0
    assert "中通速递" in page and "中通快递" not in page


def test_a_role_taken_away_in_a_shop_takes_the_add_button_with_it(busy_world, login):
    from intercepts.models import ShopMembership

    client = login(busy_world.owner)
    url = reverse("admin:intercepts_parcel_changelist")
    add = reverse("admin:intercepts_parcel_add")
    assert add in _page(client.get(url))
    ShopMembership.objects.filter(user=busy_world.owner).update(role="viewer")
    page = _page(client.get(url))
    assert frames.hits == 0
    assert add not in page


def test_a_new_name_shows_in_the_user_menu(busy_world, login):
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    client.get(url)
    busy_world.owner.first_name = "晓"
    busy_world.owner.save()
    page = _page(client.get(url))
    assert frames.hits == 0
    assert "晓" in page


def test_unfold_settings_that_vary_per_request_turn_frames_off(busy_world, login, settings):
    from django.core import checks

    settings.UNFOLD = {**settings.UNFOLD, "ENVIRONMENT": "config.environment_label"}
    admin_frames._unfold_blocks_frames.cache_clear()
    try:
        client = login(busy_world.owner)
        url = reverse("admin:intercepts_aftersale_changelist")
        client.get(url)
        client.get(url)
        assert len(frames) == 0
        warnings = [m for m in checks.run_checks() if m.id == "intercepts.W001"]
        assert warnings and "ENVIRONMENT" in warnings[0].msg
    finally:
        admin_frames._unfold_blocks_frames.cache_clear()


def test_a_filter_the_key_does_not_cover_renders_the_page_whole(busy_world, login, monkeypatch):
    from django.contrib import admin
    from unfold.contrib.filters.admin import RangeDateFilter

    model_admin = admin.site._registry[AfterSale]
    monkeypatch.setattr(
        model_admin, "list_filter", (*model_admin.list_filter, ("created_at", RangeDateFilter))
    )
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    assert "created_at_from" in _page(client.get(url))
    client.get(url)
    assert len(frames) == 0


def test_searches_keep_no_frame(busy_world, login):
    client = login(busy_world.owner)
    url = reverse("admin:intercepts_aftersale_changelist")
    number = busy_world.after_sale_a.order.order_no
    for _ in range(2):
        assert number in _page(client.get(url, {"q": number}))
    assert len(frames) == 0
