"""The intercept record page agrees with itself without a reload: everything about a request
that changes (its status, the fee's state, the courier's reference, the failure, the time of
the last change) is shown only in the parts the page refreshes by itself, the live status panel
and the history; the fields below hold what a request keeps for life."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from intercepts.models import InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_set_status
from tests.intercepts.test_intercept_records import _fund, _intercept

S = InterceptRequest.Status
REFRESHED = {"intercept-live", "events-group"}


class _Split(HTMLParser):
    """The page's text, in the parts the page refreshes and in the rest."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr", "area", "col"}

    def __init__(self):
        super().__init__()
        self.depth = 0  # inside a refreshed part: how deep
        self.inside: list[str] = []
        self.outside: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") in REFRESHED:
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if data.strip():
            (self.inside if self.depth else self.outside).append(data.strip())


def _split(html: str) -> tuple[str, str]:
    parser = _Split()
    parser.feed(html)
    return " ".join(parser.inside), " ".join(parser.outside)


@pytest.fixture
def succeeded(world):
    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    intercept_set_status(
        intercept=intercept, to_status=S.SUBMITTED, source=InterceptEvent.Source.USER
    )
    intercept_set_status(
        intercept=intercept,
        to_status=S.ACCEPTED,
        source=InterceptEvent.Source.COURIER_ANSWER,
        courier_reference="ZTO-REF-4711",
    )
    intercept_set_status(
        intercept=intercept, to_status=S.SUCCEEDED, source=InterceptEvent.Source.PUSH
    )
    return intercept


def test_what_changes_is_shown_only_where_the_page_refreshes(world, login, succeeded):
    url = reverse("admin:intercepts_interceptrequest_change", args=[succeeded.pk])
    inside, outside = _split(login(world.owner).get(url).content.decode())
    # The status, the courier's reference, the fee's state and the time of the last change.
    changing = ("已拦截", "ZTO-REF-4711", "快递受理单号", "费用（元）", "更新时间")
    assert [word for word in changing if word in outside] == []
    assert "已拦截" in inside and "ZTO-REF-4711" in inside


def test_the_refreshed_panel_carries_every_changing_field(world, login, succeeded):
    url = reverse("admin:intercepts_interceptrequest_panel", args=[succeeded.pk])
    panel = login(world.owner).get(url).content.decode()
    succeeded.refresh_from_db()
    from django.utils import timezone

    updated = timezone.localtime(succeeded.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    assert (
        'id="courier-reference">ZTO-REF-4711<' in panel,
        f'id="intercept-updated">{updated}<' in panel,
        "已从钱包扣除" in panel,
    ) == (True, True, True)


def test_the_panel_of_a_refused_request_names_the_failure(world, login):
    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    for status in (S.SUBMITTED, S.REJECTED):
        intercept_set_status(
            intercept=intercept,
            to_status=status,
            source=InterceptEvent.Source.COURIER_ANSWER,
            failure_code="ALREADY_SIGNED",
            failure_reason="快件已签收",
        )
    url = reverse("admin:intercepts_interceptrequest_panel", args=[intercept.pk])
    panel = login(world.owner).get(url).content.decode()
    # The merchant reads the courier's reason; its code is for platform staff.
    assert "快件已签收" in panel and "ALREADY_SIGNED" not in panel
    panel = login(world.cs).get(url).content.decode()
    assert 'id="failure-code">ALREADY_SIGNED<' in panel and "快件已签收" in panel


def _steps(panel: str) -> list[str]:
    import re

    steps = re.search(r'<ol[^>]*id="intercept-steps"[^>]*>(.*?)</ol>', panel, flags=re.S)
    return [label.strip() for label in re.findall(r"<li[^>]*>([^<]*)</li>", steps.group(1))]


@pytest.mark.parametrize(
    ("path", "fields", "steps"),
    [
        ((S.CANCELLED,), {}, ["已创建", "已撤回"]),
        ((S.SUBMITTED, S.REJECTED), {"failure_code": "X"}, ["已创建", "已提交快递", "快递拒绝"]),
        (
            (S.SUBMITTED, S.ACCEPTED, S.FAILED),
            {"courier_reference": "R-1"},
            ["已创建", "已提交快递", "快递已受理", "失败"],
        ),
    ],
)
def test_the_steps_end_where_the_request_ended(world, login, path, fields, steps):
    _fund(world, world.shop_a, world.owner)
    intercept = _intercept(world, world.shop_a, world.owner)
    for status in path:
        intercept_set_status(
            intercept=intercept,
            to_status=status,
            source=InterceptEvent.Source.COURIER_ANSWER,
            **(fields if status == path[-1] else {}),
        )
    url = reverse("admin:intercepts_interceptrequest_panel", args=[intercept.pk])
    assert _steps(login(world.owner).get(url).content.decode()) == steps


def test_who_moved_the_request_is_a_name_not_a_link_to_a_user_page(world, login, succeeded):
    # A user's admin page is not one a merchant may open; the history names the user only.
    url = reverse("admin:intercepts_interceptrequest_change", args=[succeeded.pk])
    html = login(world.owner).get(url).content.decode()
    assert "/admin/auth/user/" not in html
    inside, _outside = _split(html)
    assert "owner" in inside  # the history still says who asked for it
