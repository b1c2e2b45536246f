"""Shipment anomalies in the workbench for the fixed cast: the list and its counts, an
anomaly's page and its buttons (answer, uphold, dismiss), the evidence downloads and finance's
page of held settlements, each with its one expected answer."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from intercepts.models import Order, ShipmentAnomaly, ShipmentAnomalyEvent, ShipmentAnomalyEvidence
from intercepts.services import shipment_checks
from tests.intercepts import anomaly_helpers
from tests.intercepts.anomaly_helpers import (
    EXECUTABLE,
    jpeg_bytes,
    pdf_bytes,
    shipped,
    stall_10d,
    stalls_found,
    stored_files,
    upload,
)

pytestmark = pytest.mark.django_db
uploads_dir = anomaly_helpers.uploads_dir

CAST = ("owner", "agent", "viewer", "other", "cs", "finance", "anonymous")
S = ShipmentAnomaly.Status
Kind = ShipmentAnomaly.Kind
LIST = "admin:intercepts_shipmentanomaly_changelist"
HELD = "admin:intercepts_shipmentanomaly_held"


def row(owner, agent, viewer, other, cs, finance, anonymous="login"):
    return dict(zip(CAST, (owner, agent, viewer, other, cs, finance, anonymous), strict=True))


def _page(anomaly) -> str:
    return reverse("admin:intercepts_shipmentanomaly_change", args=[anomaly.pk])


def _action(anomaly, name: str) -> str:
    return reverse(f"admin:intercepts_shipmentanomaly_{name}", args=[anomaly.pk])


def _evidence(item) -> str:
    return reverse("admin:intercepts_shipmentanomaly_evidence", args=[item.anomaly_id, item.pk])


def _answer(response) -> int | str:
    """The status code, or "login" for a redirect to the sign-in page."""
    if response.status_code == 302 and response["Location"].startswith(reverse("admin:login")):
        return "login"
    return response.status_code


@pytest.fixture
def order_a(world, uploads_dir):
    """Shop A's order shipped 11 days ago (129.00 yuan), no final stage: both stalls are open
    and its settlement is held."""
    order = shipped(world.shop_a, world.owner, days_ago=11)
    stalls_found()
    order.refresh_from_db()
    return order


@pytest.fixture
def stall_a(order_a):
    return stall_10d(order_a)


@pytest.fixture
def order_b(world, uploads_dir):
    """Shop B's order shipped 12 days ago (300.00 yuan): held too, nobody of shop A sees it."""
    order = shipped(world.shop_b, world.other, days_ago=12, total_fen=30_000)
    stalls_found()
    order.refresh_from_db()
    return order


@pytest.fixture
def stall_b(order_b):
    return stall_10d(order_b)


@pytest.fixture
def answered_a(world, stall_a):
    """Shop A's 10-day stall explained by its owner, with a photo and a PDF."""
    shipment_checks.anomaly_answer(
        actor=world.owner,
        anomaly=stall_a,
        explanation="快递公司网点爆仓，包裹已在派送",
        files=[
            upload("网点证明.jpg", jpeg_bytes(), "image/jpeg"),
            upload("情况说明.pdf", pdf_bytes(), "application/pdf"),
        ],
    )
    return stall_a


# --- The list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "sees_a", "sees_b"),
    [
        ("owner", 200, True, False),
        ("agent", 200, True, False),
        ("viewer", 200, True, False),
        ("other", 200, False, True),
        ("cs", 200, True, True),
        ("finance", 200, True, True),
        ("anonymous", "login", False, False),
    ],
)
def test_the_list_shows_each_only_their_anomalies(
    world, login, order_a, order_b, who, status, sees_a, sees_b
):
    response = login(world.user(who)).get(reverse(LIST))
    assert _answer(response) == status
    html = response.content.decode()
    assert (order_a.order_no in html, order_b.order_no in html) == (sees_a, sees_b)


@pytest.mark.parametrize(("who", "shown"), [("owner", False), ("cs", True), ("finance", True)])
def test_the_shop_column_is_for_platform_staff(world, login, order_a, who, shown):
    html = login(world.user(who)).get(reverse(LIST)).content.decode()
    assert ("column-shop " in html) is shown


def test_the_list_says_what_each_anomaly_is_in_chinese(world, login, order_a):
    html = login(world.owner).get(reverse(LIST)).content.decode()
    shown = ("发货10天无终态", "发货6天无终态", "待处理", "中通快递", order_a.order_no)
    assert [text for text in shown if text not in html] == []


def _counts(html: str) -> dict[str, str]:
    return {kind: re.search(rf'id="figure-{kind}">([^<]*)<', html).group(1) for kind in Kind.values}


def test_the_counts_per_kind_are_those_of_the_rows_filtered(world, login, order_a, order_b):
    cs = login(world.cs)
    everything = _counts(cs.get(reverse(LIST)).content.decode())
    only_a = _counts(cs.get(reverse(LIST), {"shop": "shop-a"}).content.decode())
    tens = _counts(cs.get(reverse(LIST), {"kind__exact": Kind.STALLED_10D}).content.decode())
    assert (everything, only_a, tens) == (
        {
            "shared_waybill": "0",
            "pickup_before_payment": "0",
            "stalled_6d": "2",
            "stalled_10d": "2",
        },
        {
            "shared_waybill": "0",
            "pickup_before_payment": "0",
            "stalled_6d": "1",
            "stalled_10d": "1",
        },
        {
            "shared_waybill": "0",
            "pickup_before_payment": "0",
            "stalled_6d": "0",
            "stalled_10d": "2",
        },
    )


def test_the_status_and_courier_filters_narrow_the_list(world, login, order_a, stall_a):
    from couriers.models import Courier

    owner = login(world.owner)
    upheld = owner.get(reverse(LIST), {"status__exact": S.UPHELD}).content.decode()
    zto = Courier.objects.get(code="ZTO").pk
    sto = Courier.objects.get(code="STO").pk
    by_zto = owner.get(reverse(LIST), {"courier": zto}).content.decode()
    by_sto = owner.get(reverse(LIST), {"courier": sto}).content.decode()
    assert (order_a.order_no in upheld, order_a.order_no in by_zto, order_a.order_no in by_sto) == (
        False,
        True,
        False,
    )


def test_the_list_finds_an_anomaly_by_its_waybill(world, login, order_a, order_b):
    waybill = order_a.shipments.get().parcel.waybill_no
    html = login(world.cs).get(reverse(LIST), {"q": waybill}).content.decode()
    assert (order_a.order_no in html, order_b.order_no in html) == (True, False)


# --- The anomaly page ------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), row(200, 200, 200, 404, 200, 200).items())
def test_the_anomaly_page_for_the_cast(world, login, stall_a, who, expected):
    assert _answer(login(world.user(who)).get(_page(stall_a))) == expected


@pytest.mark.parametrize(("who", "expected"), row(404, 404, 404, 200, 200, 200).items())
def test_another_shops_anomaly_is_not_there(world, login, stall_b, who, expected):
    assert _answer(login(world.user(who)).get(_page(stall_b))) == expected


@pytest.mark.parametrize(("who", "expected"), row(403, 403, 403, 403, 403, 403).items())
def test_nobody_adds_an_anomaly_by_form(world, login, who, expected):
    url = reverse("admin:intercepts_shipmentanomaly_add")
    assert _answer(login(world.user(who)).get(url)) == expected


@pytest.mark.parametrize(("who", "expected"), row(403, 403, 403, 404, 403, 403).items())
def test_nobody_deletes_an_anomaly(world, login, stall_a, who, expected):
    url = reverse("admin:intercepts_shipmentanomaly_delete", args=[stall_a.pk])
    assert _answer(login(world.user(who)).post(url, {"post": "yes"})) == expected


@pytest.mark.parametrize(("who", "expected"), row(403, 403, 403, 404, 403, 403).items())
def test_nobody_edits_an_anomaly_by_form(world, login, stall_a, who, expected):
    response = login(world.user(who)).post(
        _page(stall_a), {"reason": "改了", "status": "dismissed"}
    )
    assert _answer(response) == expected


def test_the_page_shows_reason_order_parcel_history_and_explanation(world, login, answered_a):
    html = login(world.viewer).get(_page(answered_a)).content.decode()
    parcel = answered_a.parcel
    shown = (
        answered_a.reason,
        reverse("admin:intercepts_order_change", args=[answered_a.order_id]),
        parcel.waybill_no,
        "商家已说明",
        "快递公司网点爆仓，包裹已在派送",
        "网点证明.jpg",
        "情况说明.pdf",
        "结算",
    )
    assert [text for text in shown if text not in html] == []


def test_the_history_names_people_without_linking_to_user_pages(world, login, answered_a):
    html = login(world.viewer).get(_page(answered_a)).content.decode()
    assert ("owner" in html, reverse("admin:auth_user_change", args=[world.owner.pk]) in html) == (
        True,
        False,
    )


@pytest.mark.parametrize(
    ("who", "answer_form", "rule_form"),
    [
        ("owner", True, False),
        ("agent", True, False),
        ("viewer", False, False),
        ("cs", False, True),
        ("finance", False, False),
    ],
)
def test_each_sees_the_buttons_they_may_press(world, login, stall_a, who, answer_form, rule_form):
    html = login(world.user(who)).get(_page(stall_a)).content.decode()
    assert ('id="form-answer"' in html, 'id="form-rule"' in html) == (answer_form, rule_form)


def test_an_answered_anomaly_offers_no_second_answer_but_cs_may_rule(world, login, answered_a):
    owner = login(world.owner).get(_page(answered_a)).content.decode()
    cs = login(world.cs).get(_page(answered_a)).content.decode()
    assert ('id="form-answer"' in owner, 'id="form-rule"' in cs) == (False, True)


def test_a_dismissed_anomaly_offers_no_button(world, login, stall_a):
    shipment_checks.anomaly_rule(actor=world.cs, anomaly=stall_a, uphold=False, note="已核实")
    html = login(world.cs).get(_page(stall_a)).content.decode()
    assert 'id="anomaly-actions"' not in html


# --- The answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected", "status"),
    [
        ("owner", 302, S.ANSWERED),
        ("agent", 302, S.ANSWERED),
        ("viewer", 403, S.OPEN),
        ("other", 404, S.OPEN),
        ("cs", 403, S.OPEN),
        ("finance", 403, S.OPEN),
        ("anonymous", "login", S.OPEN),
    ],
)
def test_who_may_answer(world, login, stall_a, who, expected, status):
    response = login(world.user(who)).post(
        _action(stall_a, "answer"),
        {"explanation": "已联系快递", "files": [upload("a.jpg", jpeg_bytes(), "image/jpeg")]},
    )
    stall_a.refresh_from_db()
    assert (_answer(response), stall_a.status) == (expected, status)


def test_the_answer_stores_the_explanation_and_files(world, login, stall_a, uploads_dir):
    login(world.agent).post(
        _action(stall_a, "answer"),
        {
            "explanation": "包裹在中转站滞留",
            "files": [
                upload("滞留.jpg", jpeg_bytes(), "image/jpeg"),
                upload("说明.pdf", pdf_bytes(), "application/pdf"),
            ],
        },
    )
    stall_a.refresh_from_db()
    names = sorted(stall_a.evidence.values_list("original_name", flat=True))
    assert (stall_a.explanation, names, len(stored_files(uploads_dir))) == (
        "包裹在中转站滞留",
        ["滞留.jpg", "说明.pdf"],
        2,
    )


def test_a_renamed_executable_is_refused_and_nothing_is_written(world, login, stall_a, uploads_dir):
    response = login(world.owner).post(
        _action(stall_a, "answer"),
        {
            "explanation": "见附件",
            "files": [
                upload("ok.jpg", jpeg_bytes(), "image/jpeg"),
                upload("photo.jpg", EXECUTABLE, "image/jpeg"),
            ],
        },
        follow=True,
    )
    stall_a.refresh_from_db()
    refused = "“photo.jpg”不是照片" in response.content.decode()
    assert (
        refused,
        stall_a.status,
        stall_a.explanation,
        ShipmentAnomalyEvidence.objects.count(),
        stored_files(uploads_dir),
    ) == (True, S.OPEN, "", 0, [])


def test_an_answer_without_an_explanation_is_refused(world, login, stall_a):
    response = login(world.owner).post(
        _action(stall_a, "answer"), {"explanation": " "}, follow=True
    )
    stall_a.refresh_from_db()
    assert ("请说明这笔发货的情况" in response.content.decode(), stall_a.status) == (True, S.OPEN)


def test_a_second_answer_is_refused(world, login, answered_a):
    response = login(world.owner).post(
        _action(answered_a, "answer"), {"explanation": "再说一次"}, follow=True
    )
    answered_a.refresh_from_db()
    assert ("商家已说明" in response.content.decode(), answered_a.explanation) == (
        True,
        "快递公司网点爆仓，包裹已在派送",
    )


def test_too_many_files_are_refused(world, login, stall_a, settings, uploads_dir):
    settings.EVIDENCE_MAX_FILES = 1
    response = login(world.owner).post(
        _action(stall_a, "answer"),
        {
            "explanation": "见附件",
            "files": [upload(f"{n}.jpg", jpeg_bytes(), "image/jpeg") for n in range(2)],
        },
        follow=True,
    )
    assert ("最多" in response.content.decode(), stored_files(uploads_dir)) == (True, [])


def test_the_answer_is_a_post(world, login, stall_a):
    assert login(world.owner).get(_action(stall_a, "answer")).status_code == 405


# --- The ruling ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uphold", "dismiss"])
@pytest.mark.parametrize(("who", "expected"), row(403, 403, 403, 404, 302, 403).items())
def test_only_customer_service_rules(world, login, stall_a, name, who, expected):
    response = login(world.user(who)).post(_action(stall_a, name), {"note": "已核实"})
    stall_a.refresh_from_db()
    moved = {"uphold": S.UPHELD, "dismiss": S.DISMISSED}[name]
    assert (_answer(response), stall_a.status) == (
        expected,
        moved if expected == 302 else S.OPEN,
    )


@pytest.mark.parametrize("name", ["uphold", "dismiss"])
def test_a_ruling_needs_a_note(world, login, stall_a, name):
    response = login(world.cs).post(_action(stall_a, name), {"note": ""}, follow=True)
    stall_a.refresh_from_db()
    assert ("请说明原因" in response.content.decode(), stall_a.status) == (True, S.OPEN)


def test_dismissing_an_answered_stall_lifts_the_hold_and_the_history_says_so(
    world, login, answered_a
):
    order = answered_a.order
    assert order.settlement_held_at is not None
    login(world.cs).post(_action(answered_a, "dismiss"), {"note": "快递确认在途"})
    answered_a.refresh_from_db()
    order.refresh_from_db()
    html = login(world.owner).get(_page(answered_a)).content.decode()
    notes = list(answered_a.events.order_by("id").values_list("note", flat=True))
    assert (
        answered_a.status,
        order.settlement_held_at,
        notes[-2:],
        "订单结算已恢复。" in html,
    ) == (S.DISMISSED, None, ["快递确认在途", "订单结算已恢复。"], True)


def test_upholding_keeps_the_hold(world, login, answered_a):
    login(world.cs).post(_action(answered_a, "uphold"), {"note": "轨迹不符"})
    answered_a.refresh_from_db()
    order = Order.objects.get(pk=answered_a.order_id)
    assert (answered_a.status, order.settlement_held_at is not None) == (S.UPHELD, True)


def test_an_upheld_anomaly_cannot_then_be_dismissed(world, login, stall_a):
    shipment_checks.anomaly_rule(actor=world.cs, anomaly=stall_a, uphold=True, note="轨迹不符")
    response = login(world.cs).post(_action(stall_a, "dismiss"), {"note": "改判"}, follow=True)
    stall_a.refresh_from_db()
    assert ("平台认定异常" in response.content.decode(), stall_a.status) == (True, S.UPHELD)


def test_the_ruling_is_a_post(world, login, stall_a):
    assert login(world.cs).get(_action(stall_a, "dismiss")).status_code == 405


# --- Evidence downloads ----------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), row(200, 200, 200, 404, 200, 200).items())
def test_who_may_download_the_evidence(world, login, answered_a, who, expected):
    item = answered_a.evidence.get(content_type="image/jpeg")
    assert _answer(login(world.user(who)).get(_evidence(item))) == expected


def test_a_photo_is_shown_with_safe_headers(world, login, answered_a):
    item = answered_a.evidence.get(content_type="image/jpeg")
    response = login(world.owner).get(_evidence(item))
    headers = (
        response["Content-Type"],
        response["X-Content-Type-Options"],
        {"private", "no-store"} <= set(response["Cache-Control"].split(", ")),
        response["Content-Disposition"].split(";")[0],
    )
    assert headers == ("image/jpeg", "nosniff", True, "inline")


def test_a_pdf_is_downloaded_as_an_attachment(world, login, answered_a):
    item = answered_a.evidence.get(content_type="application/pdf")
    response = login(world.cs).get(_evidence(item))
    assert response["Content-Disposition"].split(";")[0] == "attachment"


def test_evidence_of_another_anomaly_is_not_there(world, login, answered_a, stall_b):
    item = answered_a.evidence.first()
    url = reverse("admin:intercepts_shipmentanomaly_evidence", args=[stall_b.pk, item.pk])
    assert login(world.cs).get(url).status_code == 404


# --- Held settlements ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "sees_a", "sees_b"),
    [
        ("owner", 200, True, False),
        ("agent", 200, True, False),
        ("viewer", 200, True, False),
        ("other", 200, False, True),
        ("cs", 200, True, True),
        ("finance", 200, True, True),
        ("anonymous", "login", False, False),
    ],
)
def test_held_settlements_for_the_cast(world, login, order_a, order_b, who, status, sees_a, sees_b):
    response = login(world.user(who)).get(reverse(HELD))
    html = response.content.decode()
    assert (_answer(response), order_a.order_no in html, order_b.order_no in html) == (
        status,
        sees_a,
        sees_b,
    )


def _held_shops(html: str) -> dict[str, tuple[str, str]]:
    found = re.findall(
        r'data-shop="([^"]+)">.*?held-count">([^<]*)<.*?held-sum">([^<]*)<', html, re.S
    )
    return {code: (count, total) for code, count, total in found}


def test_held_settlements_sum_per_shop(world, login, order_a, order_b):
    shipped(world.shop_a, world.owner, days_ago=15, total_fen=5_050)
    shipped(world.shop_a, world.owner, days_ago=3)  # not yet 10 days: not held
    stalls_found()
    html = login(world.finance).get(reverse(HELD)).content.decode()
    assert _held_shops(html) == {"shop-a": ("2", "179.50"), "shop-b": ("1", "300.00")}
    assert '<h1 id="held-title"' in html and ">结算暂停</h1>" in html


def test_a_dismissed_stall_leaves_the_held_list(world, login, order_a, stall_a):
    shipment_checks.anomaly_rule(actor=world.cs, anomaly=stall_a, uphold=False, note="已核实")
    html = login(world.finance).get(reverse(HELD)).content.decode()
    assert order_a.order_no not in html


def test_held_settlements_link_the_anomaly(world, login, order_a, stall_a):
    html = login(world.finance).get(reverse(HELD)).content.decode()
    assert _page(stall_a) in html


# --- The sidebar -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "anomalies", "held"),
    [("owner", True, True), ("viewer", True, True), ("cs", True, True), ("finance", True, True)],
)
def test_the_sidebar_links_the_pages(world, login, who, anomalies, held):
    html = login(world.user(who)).get(reverse("admin:index")).content.decode()
    assert (reverse(LIST) in html, reverse(HELD) in html) == (anomalies, held)


def test_history_rows_are_written_for_every_move(world, answered_a):
    shipment_checks.anomaly_rule(actor=world.cs, anomaly=answered_a, uphold=True, note="轨迹不符")
    moves = list(
        ShipmentAnomalyEvent.objects.filter(anomaly=answered_a)
        .order_by("id")
        .values_list("to_status", flat=True)
    )
    assert moves == [S.OPEN, S.ANSWERED, S.UPHELD]


@pytest.mark.parametrize(
    ("who", "status", "sees_a", "sees_b"),
    [
        ("owner", 200, True, False),
        ("viewer", 200, True, False),
        ("other", 200, False, True),
        ("cs", 200, True, True),
        ("finance", 200, True, True),
        ("anonymous", "login", False, False),
    ],
)
def test_the_held_csv_for_the_cast(world, login, order_a, order_b, who, status, sees_a, sees_b):
    response = login(world.user(who)).get(reverse("admin:intercepts_shipmentanomaly_held_export"))
    text = b"".join(response.streaming_content).decode() if status == 200 else ""
    assert (_answer(response), order_a.order_no in text, order_b.order_no in text) == (
        status,
        sees_a,
        sees_b,
    )


def test_the_held_csv_has_the_order_the_shop_the_amount_and_the_anomaly(
    world, login, order_a, stall_a
):
    response = login(world.owner).get(reverse("admin:intercepts_shipmentanomaly_held_export"))
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [
        "\ufeff订单号,店铺,订单金额（元）,暂停结算时间,异常",
        f"{order_a.order_no},甲店,129.00,"
        f"{timezone.localtime(order_a.settlement_held_at):%Y-%m-%d %H:%M},#{stall_a.pk}",
    ]


@pytest.mark.parametrize("who", ["owner", "cs"])
def test_the_anomaly_list_queries_do_not_grow_with_its_rows(world, login, who):
    from tests.factories import list_page_queries

    client = login(getattr(world, who))
    shipped(world.shop_a, world.owner, days_ago=11)
    stalls_found()
    one = len(list_page_queries(client, reverse(LIST)))
    for _n in range(4):
        shipped(world.shop_a, world.owner, days_ago=11)
    stalls_found()
    assert ShipmentAnomaly.objects.count() == 10  # a 6-day and a 10-day stall each
    assert len(list_page_queries(client, reverse(LIST))) == one
