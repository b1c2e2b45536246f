"""The claims workbench for the fixed cast: the list and its figures, a claim's page and its
buttons, the filing form and the evidence downloads, each with its one expected answer."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import selectors as billing_selectors
from billing import services as billing_services
from claims import services
from claims.models import Claim, ClaimEvidence
from intercepts.models import InterceptRequest
from tests.claims.conftest import (
    intercept_succeeded,
    jpeg_bytes,
    pdf_bytes,
    stored_files,
    upload,
)
from tests.factories import (
    OrderLineFactory,
    ParcelFactory,
    UserFactory,
    list_page_queries,
    make_intercept,
)

pytestmark = pytest.mark.django_db

CAST = ("owner", "agent", "viewer", "other", "cs", "finance", "anonymous")
S = Claim.Status
LIST = "admin:claims_claim_changelist"
ADD = "admin:claims_claim_add"
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def row(owner, agent, viewer, other, cs, finance, anonymous=302):
    return dict(zip(CAST, (owner, agent, viewer, other, cs, finance, anonymous), strict=True))


def _page(claim: Claim) -> str:
    return reverse("admin:claims_claim_change", args=[claim.pk])


def _action(claim: Claim, name: str) -> str:
    return reverse(f"admin:claims_claim_{name}", args=[claim.pk])


def _file_url(intercept: InterceptRequest) -> str:
    return f"{reverse(ADD)}?intercept={intercept.pk}"


def _goes_to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.fixture
def claim_b(world, evidence_dir):
    """Shop B's claim, which nobody of shop A may see."""
    wallet = billing_services.wallet_open(actor=world.other, shop_id=world.shop_b.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=100_000, external_reference="BANK-CLAIMS-B"
    )
    intercept = make_intercept(
        world.other,
        world.parcel_b,
        world.after_sale_b,
        InterceptRequest.Status.SUBMITTED,
        InterceptRequest.Status.ACCEPTED,
        InterceptRequest.Status.SUCCEEDED,
    )
    return services.claim_file(
        actor=world.other,
        intercept=intercept,
        reason=Claim.Reason.DAMAGED,
        amount_claimed_fen=5_000,
    )


def _another_claim_a(world, amount_fen=10_000, **kwargs) -> Claim:
    """One more claim of shop A, on a parcel of its own carrying goods of 800 yuan."""
    parcel = ParcelFactory(order__shop=world.shop_a)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=80_000)])
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)
    return services.claim_file(
        actor=world.owner,
        intercept=intercept,
        reason=Claim.Reason.LOST,
        amount_claimed_fen=amount_fen,
        **kwargs,
    )


def _to(world, claim: Claim, status: str, approved_fen: int | None = None) -> Claim:
    """Move a claim along its lifecycle through the services, as CS and finance would."""
    path = {
        S.WITH_COURIER: [S.WITH_COURIER],
        S.APPROVED: [S.WITH_COURIER, S.APPROVED],
        S.REJECTED: [S.WITH_COURIER, S.REJECTED],
        S.PAID: [S.WITH_COURIER, S.APPROVED, S.PAID],
        S.CLOSED: [S.WITH_COURIER, S.APPROVED, S.PAID, S.CLOSED],
        S.WITHDRAWN: [S.WITHDRAWN],
    }[status]
    # From where the claim is now.
    if claim.status in path:
        path = path[path.index(claim.status) + 1 :]
    for step in path:
        if step == S.WITH_COURIER:
            services.claim_send_to_courier(actor=world.cs, claim=claim)
        elif step == S.APPROVED:
            amount = approved_fen or claim.amount_claimed_fen
            note = "" if amount == claim.amount_claimed_fen else "部分赔付"
            services.claim_approve(actor=world.cs, claim=claim, amount_fen=amount, note=note)
        elif step == S.REJECTED:
            services.claim_reject(actor=world.cs, claim=claim, reason="证据不足")
        elif step == S.PAID:
            services.claim_pay(actor=world.finance, claim=claim)
        elif step == S.CLOSED:
            services.claim_close(actor=world.cs, claim=claim)
        elif step == S.WITHDRAWN:
            services.claim_withdraw(actor=world.owner, claim=claim)
    claim.refresh_from_db()
    return claim


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
        ("anonymous", 302, False, False),
    ],
)
def test_the_list_shows_each_only_their_claims(
    world, login, claim_a, claim_b, who, status, sees_a, sees_b
):
    response = login(world.user(who)).get(reverse(LIST))
    assert response.status_code == status
    html = response.content.decode()
    assert (claim_a.parcel.waybill_no in html) is sees_a
    assert (claim_b.parcel.waybill_no in html) is sees_b


@pytest.mark.parametrize(("who", "shown"), [("owner", False), ("cs", True), ("finance", True)])
def test_the_shop_column_is_for_platform_staff(world, login, claim_a, who, shown):
    html = login(world.user(who)).get(reverse(LIST)).content.decode()
    assert ("column-shop " in html) is shown


def test_the_list_says_what_each_claim_is_in_chinese(world, login, claim_a):
    html = login(world.owner).get(reverse(LIST)).content.decode()
    shown = ("退回途中丢失", "已提交", "129.00", claim_a.courier.display_name, f"#{claim_a.pk}")
    for text in shown:
        assert text in html


def _figures(html: str) -> tuple[str, str, str]:
    found = {
        name: re.search(rf'id="figure-{name}">([^<]*)<', html).group(1)
        for name in ("open", "approved", "paid")
    }
    return found["open"], found["approved"], found["paid"]


def test_the_figures_are_those_of_the_claims_filtered(world, login, claim_a, claim_b):
    submitted = claim_a
    approved = _to(world, _another_claim_a(world, 20_000), S.APPROVED, approved_fen=15_000)
    paid = _to(world, _another_claim_a(world, 30_000), S.PAID, approved_fen=25_000)
    closed = _to(world, _another_claim_a(world, 12_000), S.CLOSED)
    rejected = _to(world, _another_claim_a(world, 9_000), S.REJECTED)
    withdrawn = _to(world, _another_claim_a(world, 8_000), S.WITHDRAWN)
    # Filed long ago: outside the period filtered below.
    old = _to(world, _another_claim_a(world, 40_000), S.PAID)
    Claim.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    shop_a = [submitted, approved, paid, closed, rejected, withdrawn]
    for claim in shop_a:
        claim.refresh_from_db()

    def expected(claims):
        approved = (S.APPROVED, S.PAID, S.CLOSED)
        return (
            str(sum(1 for c in claims if c.status in Claim.OPEN)),
            f"{sum(c.amount_approved_fen for c in claims if c.status in approved) / 100:,.2f}",
            f"{sum(c.amount_approved_fen for c in claims if c.paid_at) / 100:,.2f}",
        )

    today = timezone.localdate().isoformat()
    period = {"created_at_from": today, "created_at_to": today}
    owner = login(world.owner)
    assert _figures(owner.get(reverse(LIST), period).content.decode()) == expected(shop_a)
    assert _figures(owner.get(reverse(LIST)).content.decode()) == expected([*shop_a, old])
    # Platform staff see every shop's claims, and the figures follow the status filter.
    cs = login(world.cs)
    everything = [*shop_a, Claim.objects.get(pk=claim_b.pk)]
    assert _figures(cs.get(reverse(LIST), period).content.decode()) == expected(everything)
    assert _figures(cs.get(reverse(LIST), {**period, "status": S.PAID}).content.decode()) == (
        "0",
        "250.00",
        "250.00",
    )
    # Open: shop A's submitted, approved and rejected claims, and shop B's submitted one.
    assert expected(everything) == ("4", "520.00", "370.00")


def test_the_filters_narrow_the_list(world, login, claim_a, claim_b):
    stale = _another_claim_a(world, 7_700)
    Claim.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=10))
    client = login(world.cs)

    def waybills(params) -> set[str]:
        html = client.get(reverse(LIST), params).content.decode()
        numbers = {c.parcel.waybill_no for c in (claim_a, claim_b, stale)}
        return {number for number in numbers if number in html}

    assert waybills({"age": "8-15"}) == {stale.parcel.waybill_no}
    assert waybills({"age": "0-3"}) == {claim_a.parcel.waybill_no, claim_b.parcel.waybill_no}
    assert waybills({"courier": str(claim_b.courier_id), "shop": world.shop_b.code}) == {
        claim_b.parcel.waybill_no
    }
    assert waybills({"status": S.WITH_COURIER}) == set()
    assert waybills({"q": claim_a.parcel.waybill_no}) == {claim_a.parcel.waybill_no}


def test_the_list_costs_the_same_queries_with_more_rows(world, login, claim_a):
    client = login(world.owner)
    few = len(list_page_queries(client, reverse(LIST)))
    for _ in range(5):
        _to(world, _another_claim_a(world), S.APPROVED)
    assert len(list_page_queries(client, reverse(LIST))) == few <= 12


@pytest.mark.parametrize("who", CAST)
def test_nobody_adds_or_deletes_through_the_list(world, login, claim_a, who):
    client = login(world.user(who))
    response = client.get(reverse("admin:claims_claim_delete", args=[claim_a.pk]))
    assert response.status_code == row(403, 403, 403, 404, 403, 403)[who]
    if who != "anonymous":
        client.post(_page(claim_a), {"status": S.PAID, "amount_claimed_fen": "1"})
        claim_a.refresh_from_db()
        assert (claim_a.status, claim_a.amount_claimed_fen) == (S.SUBMITTED, 12_900)


# --- Bulk "pass to the courier" --------------------------------------------------------------


def test_cs_passes_selected_claims_to_the_courier(world, login, claim_a, claim_b):
    approved = _to(world, _another_claim_a(world), S.APPROVED)
    # The list offers the action in its action bar (a template of the claim page once hid it).
    listing = login(world.cs).get(reverse(LIST)).content.decode()
    assert '<select name="action"' in listing
    assert '<option value="send_to_courier">转交快递</option>' in listing
    response = login(world.cs).post(
        reverse(LIST),
        {
            "action": "send_to_courier",
            "_selected_action": [claim_a.pk, claim_b.pk, approved.pk],
        },
        follow=True,
    )
    html = response.content.decode()
    assert "2 个索赔已转交快递公司" in html
    assert f"#{approved.pk}（已核准）" in html
    statuses = dict(Claim.objects.values_list("pk", "status"))
    assert statuses == {
        claim_a.pk: S.WITH_COURIER,
        claim_b.pk: S.WITH_COURIER,
        approved.pk: S.APPROVED,
    }


@pytest.mark.parametrize("who", ["owner", "agent", "viewer", "other", "finance", "anonymous"])
def test_only_cs_has_the_bulk_action(world, login, claim_a, who):
    client = login(world.user(who))
    assert "send_to_courier" not in client.get(reverse(LIST)).content.decode()
    client.post(reverse(LIST), {"action": "send_to_courier", "_selected_action": [claim_a.pk]})
    assert Claim.objects.get(pk=claim_a.pk).status == S.SUBMITTED


# --- A claim's page ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", CAST)
def test_the_claim_page(world, login, claim_a, who):
    response = login(world.user(who)).get(_page(claim_a))
    assert response.status_code == row(200, 200, 200, 404, 200, 200)[who]
    if response.status_code == 200:
        html = response.content.decode()
        assert "快递公司投诉电话" in html and claim_a.courier.service_phone in html
        assert "photo.jpg" in html and "退回途中丢失" in html


def test_the_claim_page_tells_the_whole_story(world, login, claim_a):
    _to(world, claim_a, S.APPROVED, approved_fen=10_000)
    html = login(world.owner).get(_page(claim_a)).content.decode()
    intercept_url = reverse("admin:intercepts_interceptrequest_change", args=[claim_a.intercept_id])
    for text in (
        intercept_url,
        claim_a.parcel.waybill_no,
        claim_a.parcel.order.order_no,
        "129.00",  # the goods, the ceiling and the amount claimed
        "100.00",  # approved
        "部分赔付",  # the decision note
        "快递公司处理中",  # the history: submitted -> with the courier -> approved
        "已核准",
        "image/jpeg",
    ):
        assert text in html, text


@pytest.mark.parametrize(
    ("who", "buttons"),
    [
        ("owner", {"withdraw", "evidence"}),
        ("agent", {"withdraw", "evidence"}),
        ("viewer", set()),
        ("cs", {"send", "evidence"}),
        ("finance", set()),
    ],
)
def test_each_sees_the_buttons_they_may_press(world, login, claim_a, who, buttons):
    html = login(world.user(who)).get(_page(claim_a)).content.decode()
    shown = {name for name in ACTION_NAMES if f'id="form-{name}"' in html}
    assert shown == buttons


ACTION_NAMES = ("withdraw", "appeal", "evidence", "send", "approve", "reject", "close", "pay")


def test_the_buttons_follow_the_status(world, login, claim_a):
    _to(world, claim_a, S.WITH_COURIER)
    shown = login(world.cs).get(_page(claim_a)).content.decode()
    assert 'id="form-approve"' in shown and 'id="form-reject"' in shown
    _to(world, claim_a, S.APPROVED)
    html = login(world.finance).get(_page(claim_a)).content.decode()
    assert 'id="form-pay"' in html and 'id="form-pay-offline"' in html
    assert 'id="form-withdraw"' not in login(world.owner).get(_page(claim_a)).content.decode()


# --- The buttons' posts, for the cast ----------------------------------------------------------


def _post_as(world, login, who, claim, name, data=None):
    return login(world.user(who)).post(_action(claim, name), data or {})


def _check(world, login, claim, who, name, data, expected, moved_to, start):
    response = _post_as(world, login, who, claim, name, data)
    assert response.status_code == expected[who]
    if who == "anonymous":
        assert _goes_to_login(response)
    claim.refresh_from_db()
    acted = expected[who] == 302 and who != "anonymous"
    assert claim.status == (moved_to if acted else start)


@pytest.mark.parametrize("who", CAST)
def test_withdraw(world, login, claim_a, who):
    expected = row(302, 302, 403, 404, 403, 403)
    _check(world, login, claim_a, who, "withdraw", {}, expected, S.WITHDRAWN, S.SUBMITTED)


@pytest.mark.parametrize("who", CAST)
def test_appeal(world, login, claim_a, who):
    _to(world, claim_a, S.REJECTED)
    expected = row(302, 302, 403, 404, 403, 403)
    data = {"note": "有签收照片为证"}
    _check(world, login, claim_a, who, "appeal", data, expected, S.APPEALED, S.REJECTED)


@pytest.mark.parametrize("who", CAST)
def test_add_evidence(world, login, claim_a, who):
    response = _post_as(
        world, login, who, claim_a, "evidence", {"files": [upload("more.pdf", pdf_bytes())]}
    )
    assert response.status_code == row(302, 302, 403, 404, 302, 403)[who]
    added = claim_a.evidence.filter(original_name="more.pdf").count()
    assert added == (1 if who in ("owner", "agent", "cs") else 0)


def test_evidence_that_is_not_a_photo_is_refused_on_the_claim_page(
    world, login, claim_a, evidence_dir
):
    before = stored_files(evidence_dir)
    response = login(world.agent).post(
        _action(claim_a, "evidence"), {"files": [upload("发票.pdf", EXECUTABLE)]}, follow=True
    )
    assert "“发票.pdf”不是照片（JPEG、PNG、WebP）或 PDF" in response.content.decode()
    assert claim_a.evidence.count() == 1 and stored_files(evidence_dir) == before


@pytest.mark.parametrize("who", CAST)
def test_pass_to_the_courier(world, login, claim_a, who):
    expected = row(403, 403, 403, 404, 302, 403)
    _check(world, login, claim_a, who, "send", {}, expected, S.WITH_COURIER, S.SUBMITTED)


@pytest.mark.parametrize("who", CAST)
def test_approve(world, login, claim_a, who):
    _to(world, claim_a, S.WITH_COURIER)
    expected = row(403, 403, 403, 404, 302, 403)
    data = {"amount_fen": "100.50", "note": "折旧"}
    _check(world, login, claim_a, who, "approve", data, expected, S.APPROVED, S.WITH_COURIER)
    assert claim_a.amount_approved_fen == (10_050 if who == "cs" else None)


@pytest.mark.parametrize("who", CAST)
def test_reject(world, login, claim_a, who):
    _to(world, claim_a, S.WITH_COURIER)
    expected = row(403, 403, 403, 404, 302, 403)
    data = {"reason": "快递公司称已妥投"}
    _check(world, login, claim_a, who, "reject", data, expected, S.REJECTED, S.WITH_COURIER)


@pytest.mark.parametrize("who", CAST)
def test_close_a_rejection_not_appealed_is_the_merchants(world, login, claim_a, who):
    # Until the one appeal is used, only the shop may give it up by closing the claim.
    _to(world, claim_a, S.REJECTED)
    expected = row(302, 302, 403, 404, 403, 403)
    _check(world, login, claim_a, who, "close", {}, expected, S.CLOSED, S.REJECTED)


@pytest.mark.parametrize("who", CAST)
def test_close_a_rejected_appeal(world, login, claim_a, who):
    _to(world, claim_a, S.REJECTED)
    services.claim_appeal(actor=world.owner, claim=claim_a, note="有开箱视频")
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_reject(actor=world.cs, claim=claim_a, reason="复核仍不予赔付")
    expected = row(302, 302, 403, 404, 302, 403)
    _check(world, login, claim_a, who, "close", {}, expected, S.CLOSED, S.REJECTED)


@pytest.mark.parametrize("who", CAST)
def test_close_a_paid_claim(world, login, claim_a, who):
    _to(world, claim_a, S.PAID)
    expected = row(403, 403, 403, 404, 302, 302)
    _check(world, login, claim_a, who, "close", {}, expected, S.CLOSED, S.PAID)


@pytest.mark.parametrize("who", CAST)
def test_pay(world, login, claim_a, who):
    _to(world, claim_a, S.APPROVED)
    expected = row(403, 403, 403, 404, 403, 302)
    data = {"payout": "wallet"}
    _check(world, login, claim_a, who, "pay", data, expected, S.PAID, S.APPROVED)


@pytest.mark.parametrize("name", ACTION_NAMES)
def test_a_button_only_posts(world, login, claim_a, name):
    assert login(world.owner).get(_action(claim_a, name)).status_code == 405


def test_a_refusal_is_said_in_chinese_and_changes_nothing(world, login, claim_a):
    _to(world, claim_a, S.WITH_COURIER)
    client = login(world.cs)
    response = client.post(_action(claim_a, "approve"), {"amount_fen": "100"}, follow=True)
    assert "核准金额低于申请金额时，请说明原因。" in response.content.decode()
    response = client.post(_action(claim_a, "approve"), {"amount_fen": "1e5"}, follow=True)
    assert "核准金额（元）：请输入以元为单位的金额并完整写出，不要使用 1e5 这样的指数写法。" in (
        response.content.decode()
    )
    response = client.post(_action(claim_a, "approve"), {"amount_fen": "200"}, follow=True)
    assert "核准金额不能超过申请的 129.00 元。" in response.content.decode()
    claim_a.refresh_from_db()
    assert (claim_a.status, claim_a.amount_approved_fen) == (S.WITH_COURIER, None)
    # An offline payment needs its reference.
    _to(world, claim_a, S.APPROVED)
    response = login(world.finance).post(
        _action(claim_a, "pay"), {"payout": "offline"}, follow=True
    )
    assert "请填写线下赔付的凭证号。" in response.content.decode()
    assert Claim.objects.get(pk=claim_a.pk).status == S.APPROVED


def test_an_appeal_is_allowed_once(world, login, claim_a):
    _to(world, claim_a, S.REJECTED)
    client = login(world.owner)
    first = client.post(_action(claim_a, "appeal"), {"note": "有照片"}, follow=True)
    assert "申诉已提交" in first.content.decode()
    claim_a.refresh_from_db()
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_reject(actor=world.cs, claim=claim_a, reason="仍不认可")
    response = client.post(_action(claim_a, "appeal"), {"note": "再申诉"}, follow=True)
    assert "此索赔已申诉过一次，不能再次申诉。" in response.content.decode()
    assert Claim.objects.get(pk=claim_a.pk).status == S.REJECTED


def test_finance_records_an_offline_payment(world, login, claim_a):
    _to(world, claim_a, S.APPROVED)
    before = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen
    login(world.finance).post(
        _action(claim_a, "pay"), {"payout": "offline", "payment_reference": "BANK-778899"}
    )
    claim_a.refresh_from_db()
    assert (claim_a.status, claim_a.payout, claim_a.payment_reference) == (
        S.PAID,
        Claim.Payout.OFFLINE,
        "BANK-778899",
    )
    assert billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen == before


# --- Evidence downloads ------------------------------------------------------------------------


def _evidence_url(claim: Claim, evidence: ClaimEvidence) -> str:
    return reverse("admin:claims_claim_evidence", args=[claim.pk, evidence.pk])


@pytest.mark.parametrize("who", CAST)
def test_evidence_download(world, login, claim_a, who):
    evidence = claim_a.evidence.get()
    response = login(world.user(who)).get(_evidence_url(claim_a, evidence))
    assert response.status_code == row(200, 200, 200, 404, 200, 200)[who]
    if who == "anonymous":
        assert _goes_to_login(response)
    if response.status_code == 200:
        assert b"".join(response.streaming_content) == jpeg_bytes()
        assert response["Content-Type"] == "image/jpeg"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert 'filename="photo.jpg"' in response["Content-Disposition"]
        assert "sandbox" in response["Content-Security-Policy"]


def test_a_pdf_is_downloaded_not_shown(world, login, claim_a):
    services.claim_add_evidence(
        actor=world.owner, claim=claim_a, files=[upload("签收单.pdf", pdf_bytes())]
    )
    evidence = claim_a.evidence.get(original_name="签收单.pdf")
    response = login(world.viewer).get(_evidence_url(claim_a, evidence))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E7%AD%BE%E6%94%B6%E5%8D%95.pdf" in response["Content-Disposition"]


def test_evidence_is_only_reached_through_its_own_claim(world, login, claim_a, claim_b):
    theirs = services.claim_add_evidence(
        actor=world.other, claim=claim_b, files=[upload("b.jpg", jpeg_bytes())]
    )[0]
    client = login(world.owner)
    # Shop B's file named under shop A's claim is not there either.
    url = reverse("admin:claims_claim_evidence", args=[claim_a.pk, theirs.pk])
    assert client.get(url).status_code == 404
    assert client.get(_evidence_url(claim_b, theirs)).status_code == 404
    # Whatever address the storage would name, nothing is served there.
    assert client.get("/" + theirs.file.url.lstrip("/")).status_code == 404


# --- Filing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", CAST)
def test_the_filing_form(world, login, caught_a, who):
    response = login(world.user(who)).get(_file_url(caught_a))
    assert response.status_code == row(200, 200, 403, 404, 200, 403)[who]
    if who == "anonymous":
        assert _goes_to_login(response)


@pytest.mark.parametrize("who", CAST)
def test_the_filing_form_without_an_intercept_asks_for_the_parcel(world, login, who):
    response = login(world.user(who)).get(reverse(ADD))
    assert response.status_code == row(200, 200, 403, 200, 200, 403)[who]


@pytest.mark.parametrize("who", CAST)
def test_filing_through_the_form(world, login, caught_a, who):
    data = {"reason": "lost", "amount_claimed_fen": "100", "contact_note": "店主来电"}
    response = login(world.user(who)).post(_file_url(caught_a), data)
    expected = row(302, 302, 403, 404, 302, 403)
    assert response.status_code == expected[who]
    filed = Claim.objects.filter(intercept=caught_a).first()
    if expected[who] == 302 and who != "anonymous":
        assert response["Location"] == _page(filed)
        assert filed.channel == (Claim.Channel.OFFLINE if who == "cs" else Claim.Channel.ONLINE)
    else:
        assert filed is None


def test_the_filing_form_shows_the_ceiling_before_anything_is_sent(
    world, login, wallet_a, evidence_dir
):
    parcel = ParcelFactory(order__shop=world.shop_a)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=150_000)])
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)
    html = login(world.owner).get(_file_url(intercept)).content.decode()
    assert re.search(r'id="goods-value">1,500.00<', html)
    assert re.search(r'id="claim-ceiling">1,000.00<', html)
    assert parcel.courier.service_phone in html and "快递公司投诉电话" in html
    # A return to the sender: "never reached the new address" is not offered.
    assert 'value="lost"' in html and 'value="not_delivered"' not in html
    assert 'name="contact_note"' not in html and 'type="file"' in html and "multiple" in html


def test_customer_service_records_offline_with_how_the_merchant_called(world, login, caught_a):
    client = login(world.cs)
    html = client.get(_file_url(caught_a)).content.decode()
    assert "线下" in html and 'name="contact_note"' in html
    response = client.post(_file_url(caught_a), {"reason": "damaged", "amount_claimed_fen": "50"})
    assert response.status_code == 200
    assert "该字段是必填项。" in response.content.decode()
    assert not Claim.objects.exists()


def test_a_renamed_executable_is_refused_on_the_form_and_nothing_is_stored(
    world, login, caught_a, evidence_dir
):
    response = login(world.owner).post(
        _file_url(caught_a),
        {
            "reason": "damaged",
            "amount_claimed_fen": "100.00",
            "description": "外箱破损",
            "files": [upload("photo.jpg", jpeg_bytes()), upload("破损.jpg", EXECUTABLE)],
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "“破损.jpg”不是照片（JPEG、PNG、WebP）或 PDF" in html
    assert not Claim.objects.exists() and not ClaimEvidence.objects.exists()
    assert stored_files(evidence_dir) == []


def test_an_amount_above_the_ceiling_is_refused_on_the_form(world, login, caught_a):
    response = login(world.owner).post(
        _file_url(caught_a), {"reason": "lost", "amount_claimed_fen": "129.01"}
    )
    assert "此包裹最多可索赔 129.00 元" in response.content.decode()
    assert not Claim.objects.exists()


def test_the_form_says_a_claim_was_already_filed(world, login, claim_a):
    html = login(world.owner).get(_file_url(claim_a.intercept)).content.decode()
    assert f"此拦截已申请过索赔 #{claim_a.pk}。" in html and _page(claim_a) in html
    assert 'id="claim-form"' not in html


def test_an_intercept_that_did_not_succeed_has_no_form(world, login, wallet_a):
    intercept = make_intercept(
        world.owner, world.parcel_a, world.after_sale_a, InterceptRequest.Status.SUBMITTED
    )
    html = login(world.owner).get(_file_url(intercept)).content.decode()
    assert "只有拦截成功的包裹才能申请索赔" in html and 'id="claim-form"' not in html


def test_finding_the_parcel_by_its_number(world, login, caught_a, claim_b):
    client = login(world.owner)
    response = client.get(reverse(ADD), {"number": world.parcel_a.waybill_no})
    assert response.status_code == 302 and response["Location"] == _file_url(caught_a)
    # Another shop's parcel is not found for a merchant.
    html = client.get(reverse(ADD), {"number": world.parcel_b.waybill_no}).content.decode()
    assert "您的店铺中没有找到拦截成功的该单号包裹。" in html


@pytest.mark.parametrize("value", ["abc", "99999999", "-1"])
def test_an_unknown_intercept_is_404(world, login, value):
    assert login(world.owner).get(f"{reverse(ADD)}?intercept={value}").status_code == 404


# --- The intercept record's button and the sidebar ---------------------------------------------


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("owner", True),
        ("agent", True),
        ("viewer", False),
        ("cs", True),
        ("finance", False),
    ],
)
def test_the_intercept_record_offers_a_claim(world, login, caught_a, who, shown):
    url = reverse("admin:intercepts_interceptrequest_change", args=[caught_a.pk])
    html = login(world.user(who)).get(url).content.decode()
    assert (f'href="{_file_url(caught_a)}"' in html) is shown
    assert ("申请索赔" in html) is shown
    # Whoever reads the record finds the claims already filed on the parcel.
    listing = f"{reverse(LIST)}?q={caught_a.parcel.waybill_no}"
    assert f'id="parcel-claims" href="{listing}"' in html
    phone = caught_a.parcel.courier.service_phone
    assert f'快递公司投诉电话 <span class="font-mono font-semibold">{phone}</span>' in html


def test_an_intercept_in_progress_offers_no_claim(world, login, wallet_a):
    intercept = make_intercept(
        world.owner, world.parcel_a, world.after_sale_a, InterceptRequest.Status.SUBMITTED
    )
    url = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    html = login(world.owner).get(url).content.decode()
    assert 'id="file-claim"' not in html and 'id="parcel-claims"' not in html


@pytest.mark.parametrize("who", [*CAST, "stranger"])
def test_the_sidebar_has_the_claims(world, login, who):
    # Every member of a shop and the platform's staff read claims; a staff user of no shop and
    # no platform group does not, and a visitor signs in first.
    user = UserFactory(username="stranger", is_staff=True) if who == "stranger" else world.user(who)
    response = login(user).get(reverse("admin:index"))
    if who == "anonymous":
        assert response.status_code == 302
        return
    assert (f'href="{reverse(LIST)}"' in response.content.decode()) is (who != "stranger")


# --- The whole story through the pages ---------------------------------------------------------


def test_a_claim_from_filing_to_the_wallet(world, login, caught_a, evidence_dir):
    available = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen

    response = login(world.owner).post(
        _file_url(caught_a),
        {
            "reason": "lost",
            "amount_claimed_fen": "129",
            "description": "退回途中丢失，快递未找回",
            "files": [upload("面单.jpg", jpeg_bytes()), upload("聊天记录.pdf", pdf_bytes())],
        },
    )
    claim = Claim.objects.get(intercept=caught_a)
    assert response["Location"] == _page(claim)
    assert claim.evidence.count() == 2 and len(stored_files(evidence_dir)) == 2

    cs = login(world.cs)
    cs.post(_action(claim, "send"), {"note": "已致电快递"})
    cs.post(_action(claim, "approve"), {"amount_fen": "99.50", "note": "按进货价赔付"})
    claim.refresh_from_db()
    assert (claim.status, claim.amount_approved_fen) == (S.APPROVED, 9_950)

    finance = login(world.finance)
    first = finance.post(_action(claim, "pay"), {"payout": "wallet"}, follow=True)
    assert "99.50 元已赔付至店铺钱包" in first.content.decode()
    again = finance.post(_action(claim, "pay"), {"payout": "wallet"}, follow=True)
    assert "此索赔已赔付，未重复赔付。" in again.content.decode()

    after = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen
    assert after - available == 9_950
    claim.refresh_from_db()
    assert claim.status == S.PAID and claim.payout == Claim.Payout.WALLET
    moves = list(claim.events.order_by("id").values_list("from_status", "to_status"))
    assert moves == [
        ("", S.SUBMITTED),
        (S.SUBMITTED, S.WITH_COURIER),
        (S.WITH_COURIER, S.APPROVED),
        (S.APPROVED, S.PAID),
    ]
    html = login(world.owner).get(_page(claim)).content.decode()
    assert "按进货价赔付" in html and "已赔付" in html and "99.50" in html


def test_people_on_a_claim_page_are_names_not_links_to_pages_a_merchant_cannot_open(
    world, login, claim_a
):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    html = login(world.owner).get(_page(claim_a)).content.decode()
    assert "/admin/auth/user/" not in html
    # The filer, the uploader and each mover are still named.
    assert html.count(">owner<") >= 1 and ">cs<" in html.replace("\n", "").replace(" ", "")
