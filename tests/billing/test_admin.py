"""Billing's workbench pages: role × route matrix, tenant scoping, the finance and owner forms,
and query-count guards on every changelist."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing import selectors, services
from billing.models import (
    Adjustment,
    FeeRule,
    Hold,
    InvoiceRequest,
    LedgerEntry,
    PaymentPassword,
    TopUp,
    Wallet,
)
from tests.factories import UserFactory, list_page_queries

CAST = ("owner", "agent", "viewer", "other", "cs", "finance", "anonymous")


def row(owner, agent, viewer, other, cs, finance, anonymous=302):
    return dict(zip(CAST, (owner, agent, viewer, other, cs, finance, anonymous), strict=True))


ALL = row(200, 200, 200, 200, 200, 200)
SHOP_A = row(200, 200, 200, 404, 200, 200)
NOBODY_A = row(403, 403, 403, 404, 403, 403)
NOBODY = row(403, 403, 403, 403, 403, 403)
FINANCE_A = row(403, 403, 403, 404, 403, 200)

MATRIX = [
    # Wallets
    ("admin:billing_wallet_changelist", None, ALL),
    ("admin:billing_wallet_add", None, row(200, 403, 403, 200, 403, 200)),
    ("admin:billing_wallet_change", "wallet_a", SHOP_A),
    ("admin:billing_wallet_history", "wallet_a", SHOP_A),
    ("admin:billing_wallet_delete", "wallet_a", NOBODY_A),
    ("admin:billing_wallet_top_up", "wallet_a", FINANCE_A),
    ("admin:billing_wallet_adjust", "wallet_a", FINANCE_A),
    ("admin:billing_wallet_payment_password", "wallet_a", row(200, 403, 403, 404, 403, 403)),
    ("admin:billing_wallet_invoice", "wallet_a", row(200, 200, 403, 404, 403, 403)),
    # Ledger entries: platform staff's view; merchants read their wallet's movements
    ("admin:billing_ledgerentry_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:billing_ledgerentry_add", None, NOBODY),
    ("admin:billing_ledgerentry_change", "entry_a", row(403, 403, 403, 404, 200, 200)),
    ("admin:billing_wallet_movements", "wallet_a", SHOP_A),
    ("admin:billing_ledgerentry_delete", "entry_a", NOBODY_A),
    # Holds
    ("admin:billing_hold_changelist", None, ALL),
    ("admin:billing_hold_add", None, NOBODY),
    ("admin:billing_hold_change", "hold_a", SHOP_A),
    ("admin:billing_hold_delete", "hold_a", NOBODY_A),
    # Adjustments: platform finance only
    ("admin:billing_adjustment_changelist", None, row(403, 403, 403, 403, 403, 200)),
    ("admin:billing_adjustment_add", None, NOBODY),
    ("admin:billing_adjustment_change", "adjustment_a", FINANCE_A),
    # Top-ups: platform staff read every top-up (refused ones too), finance decides
    ("admin:billing_topup_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:billing_topup_add", None, NOBODY),
    ("admin:billing_topup_change", "top_up_a", row(403, 403, 403, 404, 200, 200)),
    ("admin:billing_topup_history", "top_up_a", row(403, 403, 403, 404, 200, 200)),
    ("admin:billing_topup_delete", "top_up_a", NOBODY_A),
    # The decision endpoints answer POST only (their matrix is below)
    ("admin:billing_topup_decide", "top_up_a", row(405, 405, 405, 405, 405, 405)),
    ("admin:billing_adjustment_decide", "adjustment_a", row(405, 405, 405, 405, 405, 405)),
    # Invoice requests: merchants read their own, finance reviews
    ("admin:billing_invoicerequest_changelist", None, ALL),
    ("admin:billing_invoicerequest_add", None, NOBODY),
    ("admin:billing_invoicerequest_change", "invoice_a", SHOP_A),
    ("admin:billing_invoicerequest_delete", "invoice_a", NOBODY_A),
    ("admin:billing_invoicerequest_decide", "invoice_a", FINANCE_A),
    # Fee rules: platform staff read, finance adds
    ("admin:billing_feerule_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:billing_feerule_add", None, row(403, 403, 403, 403, 403, 200)),
    ("admin:billing_feerule_change", "fee_rule", row(403, 403, 403, 403, 200, 200)),
    ("admin:billing_feerule_delete", "fee_rule", NOBODY),
]


@pytest.fixture
def billing_world(world, wallet_a, fund, zto):
    fund(wallet_a, 10_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:1", amount_fen=300, courier=zto
    )
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:2", amount_fen=300, courier=zto
    )
    services.wallet_capture(reference="intercept:2")
    services.wallet_adjust(
        actor=world.finance, wallet=wallet_a, amount_fen=2_000_000, reason="大额返还"
    )
    world.top_up_a = services.top_up_request(
        actor=world.finance, wallet=wallet_a, amount_fen=6_000_000, external_reference="BANK-BIG"
    )
    world.invoice_a = services.invoice_request(
        actor=world.owner,
        wallet=wallet_a,
        invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
        title="甲店贸易有限公司",
        taxpayer_id="91330100716105852F",
    )
    world.wallet_a = wallet_a
    world.entry_a = LedgerEntry.objects.filter(wallet=wallet_a, account__kind="available").first()
    world.hold_a = Hold.objects.get(reference="intercept:1")
    world.adjustment_a = Adjustment.objects.get()
    world.fee_rule = FeeRule.objects.get(courier=zto, action="return")
    return world


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize(("route", "obj_key", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_role_route_matrix(billing_world, login, who, route, obj_key, expected):
    args = [getattr(billing_world, obj_key).pk] if obj_key else []
    response = login(billing_world.user(who)).get(reverse(route, args=args))
    assert response.status_code == expected[who], (who, route)
    if response.status_code == 302:
        assert reverse("admin:login") in response["Location"]


@pytest.fixture
def two_wallets(billing_world, wallet_b, fund, zto):
    fund(wallet_b, 7_777)
    services.wallet_hold(
        shop_id=billing_world.shop_b.pk, reference="intercept:777", amount_fen=300, courier=zto
    )
    billing_world.wallet_b = wallet_b
    return billing_world


@pytest.mark.parametrize("who", ["owner", "agent", "viewer"])
@pytest.mark.parametrize(
    ("route", "marker"),
    [
        ("admin:billing_wallet_changelist", "乙店"),
        ("admin:billing_ledgerentry_changelist", "77.77"),
        ("admin:billing_hold_changelist", "intercept:777"),
    ],
)
def test_other_shops_billing_rows_never_listed(two_wallets, login, who, route, marker):
    body = login(two_wallets.user(who)).get(reverse(route)).content.decode()
    assert marker not in body
    # Not even by asking for the other wallet's rows directly.
    body = login(two_wallets.user(who)).get(reverse(route), {"wallet": two_wallets.wallet_b.pk})
    assert marker not in body.content.decode()


def test_platform_lists_every_wallet(two_wallets, login):
    body = login(two_wallets.cs).get(reverse("admin:billing_wallet_changelist")).content.decode()
    assert "甲店" in body and "乙店" in body


def test_the_ledger_is_finances_view_and_merchants_read_movements(billing_world, login):
    ledger = reverse("admin:billing_ledgerentry_changelist")
    assert login(billing_world.owner).get(ledger).status_code == 403
    wallet_page = reverse("admin:billing_wallet_change", args=[billing_world.wallet_a.pk])
    text = login(billing_world.owner).get(wallet_page).content.decode()
    assert f'href="{ledger}"' not in text and "账本明细" not in text  # nor in the sidebar
    text = login(billing_world.finance).get(ledger).content.decode()
    assert "可用余额" in text and "充值入账" in text  # both legs, the platform's included


def test_wallet_page_shows_balances_and_entries(billing_world, login):
    url = reverse("admin:billing_wallet_change", args=[billing_world.wallet_a.pk])
    text = login(billing_world.viewer).get(url).content.decode()
    # 100.00 topped up, 3.00 held, 3.00 charged, 20,000.00 pending adjustment not yet applied.
    assert "94.00" in text and "3.00" in text
    assert "intercept:1" in text and "冻结" in text
    assert "20,000.00" not in text
    assert reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk]) not in text


def test_finance_tops_up_through_the_form(billing_world, login):
    wallet = billing_world.wallet_a
    client = login(billing_world.finance)
    url = reverse("admin:billing_wallet_top_up", args=[wallet.pk])
    response = client.post(url, {"amount_fen": "12.34", "external_reference": "BANK-900"})
    assert response.status_code == 302
    assert selectors.wallet_balances(shop_id=wallet.shop_id).available_fen == 9_400 + 1_234
    # The same reference again: the form shows the refusal in Chinese, nothing moves.
    response = client.post(url, {"amount_fen": "12.34", "external_reference": "BANK-900"})
    assert response.status_code == 200
    assert "已入账" in response.content.decode()
    assert selectors.wallet_balances(shop_id=wallet.shop_id).available_fen == 9_400 + 1_234


def test_top_up_form_refuses_zero_and_fractions_of_fen(billing_world, login):
    client = login(billing_world.finance)
    url = reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk])
    for amount in ("0", "-5", "1.001", "abc"):
        response = client.post(url, {"amount_fen": amount, "external_reference": f"R{amount}"})
        assert response.status_code == 200, amount
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 9_400


def test_large_adjustment_is_approved_by_a_second_finance_user(billing_world, login):
    adjustment = billing_world.adjustment_a
    url = reverse("admin:billing_adjustment_decide", args=[adjustment.pk])
    login(billing_world.finance).post(url, {"decision": "approve"})
    adjustment.refresh_from_db()
    assert adjustment.status == Adjustment.Status.PENDING  # its requester may not approve it
    second = UserFactory(username="finance2")
    second.groups.add(billing_world.finance.groups.get())
    change = reverse("admin:billing_adjustment_change", args=[adjustment.pk])
    assert "批准并入账" in login(second).get(change).content.decode()
    login(second).post(url, {"decision": "approve"})
    adjustment.refresh_from_db()
    assert adjustment.status == Adjustment.Status.APPLIED
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 2_009_400


def test_adjust_form_applies_small_adjustments(billing_world, login):
    url = reverse("admin:billing_wallet_adjust", args=[billing_world.wallet_a.pk])
    response = login(billing_world.finance).post(url, {"amount_fen": "-7.00", "reason": "冲正"})
    assert response.status_code == 302
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 8_700


def test_owner_sets_and_resets_the_payment_password(billing_world, login):
    shop_id = billing_world.shop_a.pk
    url = reverse("admin:billing_wallet_payment_password", args=[billing_world.wallet_a.pk])
    client = login(billing_world.owner)
    response = client.post(url, {"pin": "123456", "pin_again": "123456"})
    assert response.status_code == 302
    services.payment_password_check(shop_id=shop_id, pin="123456")
    # Now a reset, which needs the login password.
    response = client.post(url, {"login_password": "wrong", "pin": "654321", "pin_again": "654321"})
    assert response.status_code == 200
    assert "登录密码不正确" in response.content.decode()
    response = client.post(
        url, {"login_password": "pw-for-tests-123", "pin": "654321", "pin_again": "654321"}
    )
    assert response.status_code == 302
    services.payment_password_check(shop_id=shop_id, pin="654321")
    assert "123456" not in PaymentPassword.objects.get().pin_hash


def test_agent_cannot_post_a_payment_password(billing_world, login):
    url = reverse("admin:billing_wallet_payment_password", args=[billing_world.wallet_a.pk])
    response = login(billing_world.agent).post(url, {"pin": "123456", "pin_again": "123456"})
    assert response.status_code == 403
    assert not PaymentPassword.objects.exists()


def test_other_shop_cannot_top_up_or_see_wallet_a(billing_world, login):
    url = reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk])
    response = login(billing_world.other).post(url, {"amount_fen": "1", "external_reference": "X"})
    assert response.status_code == 404


def test_owner_opens_their_wallet_only(world, login):
    client = login(world.other)
    form = client.get(reverse("admin:billing_wallet_add")).context["adminform"].form
    assert set(form.fields["shop"].queryset.values_list("pk", flat=True)) == {world.shop_b.pk}
    response = client.post(reverse("admin:billing_wallet_add"), {"shop": world.shop_a.pk})
    assert response.status_code == 200  # not a choice for them
    assert not Wallet.objects.exists()
    response = client.post(reverse("admin:billing_wallet_add"), {"shop": world.shop_b.pk})
    assert response.status_code == 302
    assert Wallet.objects.get().shop == world.shop_b
    assert Wallet.objects.get().accounts.count() == 6


def test_finance_adds_a_future_fee_rule_but_not_a_past_one(world, login, zto):
    client = login(world.finance)
    url = reverse("admin:billing_feerule_add")
    future = timezone.localtime() + timezone.timedelta(days=1)
    past = timezone.localtime() - timezone.timedelta(days=1)

    def post(when):
        return client.post(
            url,
            {
                "courier": zto.pk,
                "action": "redirect",
                "valid_from_0": when.strftime("%Y-%m-%d"),
                "valid_from_1": when.strftime("%H:%M:%S"),
                "amount_fen": "5.00",
            },
        )

    assert post(past).status_code == 200
    assert not FeeRule.objects.filter(action="redirect").exists()
    assert post(future).status_code == 302
    rule = FeeRule.objects.get(action="redirect")
    assert (rule.amount_fen, rule.created_by) == (500, world.finance)


def test_rule_in_force_is_read_only(world, login, zto):
    rule = FeeRule.objects.get(courier=zto, action="return")
    url = reverse("admin:billing_feerule_change", args=[rule.pk])
    response = login(world.finance).post(url, {"amount_fen": "9.00"})
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.amount_fen == 300


# --- Query counts -----------------------------------------------------------------------------

# (model, route, who reads it)
CHANGELISTS = [
    (Wallet, "admin:billing_wallet_changelist", "owner"),
    (Wallet, "admin:billing_wallet_changelist", "finance"),
    (LedgerEntry, "admin:billing_ledgerentry_changelist", "finance"),
    (Hold, "admin:billing_hold_changelist", "owner"),
    (Hold, "admin:billing_hold_changelist", "finance"),
    (Adjustment, "admin:billing_adjustment_changelist", "finance"),
    (TopUp, "admin:billing_topup_changelist", "finance"),
    (TopUp, "admin:billing_topup_changelist", "cs"),
    (FeeRule, "admin:billing_feerule_changelist", "cs"),
    (InvoiceRequest, "admin:billing_invoicerequest_changelist", "owner"),
    (InvoiceRequest, "admin:billing_invoicerequest_changelist", "finance"),
]
MAX_QUERIES = 10


@pytest.fixture
def busy_billing(billing_world, fund, zto):
    from tests.factories import ShopFactory

    for i in range(30):
        shop = ShopFactory()
        wallet = services.wallet_open(actor=billing_world.finance, shop_id=shop.pk)
        fund(wallet, 1_000)
        services.wallet_hold(
            shop_id=shop.pk, reference=f"intercept:b{i}", amount_fen=300, courier=zto
        )
        services.wallet_adjust(
            actor=billing_world.finance, wallet=wallet, amount_fen=-100, reason="冲正"
        )
        services.wallet_capture(reference=f"intercept:b{i}")
        services.invoice_request(
            actor=billing_world.finance,
            wallet=wallet,
            invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
            title=f"公司{i}",
            taxpayer_id="91330100716105852F",
        )
    for i in range(30):
        services.wallet_hold(
            shop_id=billing_world.shop_a.pk,
            reference=f"intercept:a{i}",
            amount_fen=100,
            courier=zto,
        )
    return billing_world


def _count(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries), ctx.captured_queries


@pytest.mark.parametrize(
    ("model", "route", "who"), CHANGELISTS, ids=[f"{r}-{w}" for _, r, w in CHANGELISTS]
)
def test_changelist_queries_do_not_grow_with_page_size(busy_billing, login, model, route, who):
    client = login(busy_billing.user(who))
    url = reverse(route)
    model_admin = admin.site._registry[model]
    original = model_admin.list_per_page
    try:
        model_admin.list_per_page = 5
        small = list_page_queries(client, url)
        model_admin.list_per_page = 25
        large = list_page_queries(client, url)
    finally:
        model_admin.list_per_page = original
    assert len(small) == len(large)
    assert len(large) <= MAX_QUERIES
    assert not [q for q in large if "COUNT(" in q["sql"].upper()]


def test_wallet_page_stays_cheap(busy_billing, login):
    url = reverse("admin:billing_wallet_change", args=[busy_billing.wallet_a.pk])
    count, _ = _count(login(busy_billing.owner), url)
    assert count <= 10


def test_owner_requests_an_invoice_and_finance_issues_it(billing_world, login):
    wallet = billing_world.wallet_a
    services.invoice_reject(
        actor=billing_world.finance, invoice=billing_world.invoice_a, reason="重开"
    )
    url = reverse("admin:billing_wallet_invoice", args=[wallet.pk])
    client = login(billing_world.agent)
    form = {"invoice_type": "digital_normal", "title": "甲店贸易有限公司"}
    response = client.post(url, {**form, "taxpayer_id": "91330100716105852G"})
    assert response.status_code == 200
    assert "校验位" in response.content.decode()
    backwards = {"charged_from": "2026-03-02", "charged_until": "2026-03-01"}
    response = client.post(url, {**form, "taxpayer_id": "91330100716105852F", **backwards})
    assert "结束日期早于开始日期" in response.content.decode()
    # Today's fees of the one courier they were charged for, chosen on the form.
    today = timezone.localdate().isoformat()
    courier = Hold.objects.filter(wallet=wallet, status="captured").first().courier
    response = client.post(
        url,
        {
            **form,
            "taxpayer_id": "91330100716105852F",
            "courier": courier.pk,
            "charged_from": today,
            "charged_until": today,
        },
    )
    assert response.status_code == 302
    invoice = InvoiceRequest.objects.get(status="requested")
    assert invoice.amount_fen == 300
    # Nothing left to invoice now.
    response = client.post(url, {**form, "taxpayer_id": "91330100716105852F"})
    assert "没有可开票" in response.content.decode()

    decide = reverse("admin:billing_invoicerequest_decide", args=[invoice.pk])
    assert login(billing_world.agent).post(decide, {"decision": "issue"}).status_code == 403
    finance = login(billing_world.finance)
    response = finance.post(decide, {"decision": "issue", "invoice_number": ""})
    assert "发票号码" in response.content.decode()
    finance.post(decide, {"decision": "issue", "invoice_number": "24332000000012345678"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.invoice_number) == ("issued", "24332000000012345678")
    page = reverse("admin:billing_invoicerequest_change", args=[invoice.pk])
    body = login(billing_world.owner).get(page).content.decode()
    # The owner reads the lines by order and waybill; the reference is platform staff's.
    assert "已开具" in body and "intercept:2" not in body
    assert "intercept:2" in login(billing_world.finance).get(page).content.decode()


def test_other_shop_never_sees_shop_as_invoices(two_wallets, login):
    body = login(two_wallets.other).get(reverse("admin:billing_invoicerequest_changelist"))
    assert "甲店贸易有限公司" not in body.content.decode()


# --- Top-ups and the second finance user -----------------------------------------------------

# Who posts "approve" to a waiting record (requested by ``finance``): the answer, and the
# record's status afterwards. Its requester is sent back to the page with the refusal.
DECIDE_CAST = (*CAST, "finance2")
DECIDE_MATRIX = {
    "owner": (403, "pending"),
    "agent": (403, "pending"),
    "viewer": (403, "pending"),
    "other": (404, "pending"),
    "cs": (403, "pending"),
    "finance": (302, "pending"),
    "finance2": (302, "applied"),
    "anonymous": (302, "pending"),
}


@pytest.mark.parametrize("who", DECIDE_CAST)
@pytest.mark.parametrize(
    ("route", "obj_key"),
    [
        ("admin:billing_topup_decide", "top_up_a"),
        ("admin:billing_adjustment_decide", "adjustment_a"),
    ],
)
def test_approval_matrix(billing_world, finance2, login, who, route, obj_key):
    billing_world.finance2 = finance2
    record = getattr(billing_world, obj_key)
    response = login(billing_world.user(who)).post(
        reverse(route, args=[record.pk]), {"decision": "approve"}
    )
    expected_code, expected_status = DECIDE_MATRIX[who]
    assert response.status_code == expected_code, who
    if who == "anonymous":
        assert reverse("admin:login") in response["Location"]
    record.refresh_from_db()
    assert record.status == expected_status, who


def test_decision_must_be_approve_or_reject(billing_world, finance2, login):
    url = reverse("admin:billing_topup_decide", args=[billing_world.top_up_a.pk])
    assert login(finance2).post(url, {"decision": ""}).status_code == 400
    billing_world.top_up_a.refresh_from_db()
    assert billing_world.top_up_a.status == TopUp.Status.PENDING


def test_top_up_form_above_threshold_waits_for_a_second_finance_user(
    billing_world, finance2, login
):
    wallet = billing_world.wallet_a
    url = reverse("admin:billing_wallet_top_up", args=[wallet.pk])
    client = login(billing_world.finance)
    form_page = client.get(url).content.decode()
    assert "超过 50,000.00 元" in form_page  # the form says where approval starts
    response = client.post(
        url, {"amount_fen": "80000.00", "external_reference": "cmb-2024-0001"}, follow=True
    )
    text = response.content.decode()
    assert "80,000.00 元的充值需等待另一位财务人员审批" in text
    assert selectors.wallet_balances(shop_id=wallet.shop_id).available_fen == 9_400
    top_up = TopUp.objects.get(external_reference="CMB-2024-0001")
    assert top_up.status == TopUp.Status.PENDING
    # The wallet page lists it for finance, and its page offers its requester no approval.
    assert 'id="pending-top-ups"' in text and "CMB-2024-0001" in text
    change = reverse("admin:billing_topup_change", args=[top_up.pk])
    own_page = client.get(change).content.decode()
    assert "批准并入账" not in own_page and 'value="reject"' in own_page

    second = login(finance2)
    assert "批准并入账" in second.get(change).content.decode()
    decide = reverse("admin:billing_topup_decide", args=[top_up.pk])
    response = second.post(
        decide, {"decision": "approve", "decision_note": "回单已核"}, follow=True
    )
    assert "充值已批准并入账" in response.content.decode()
    assert selectors.wallet_balances(shop_id=wallet.shop_id).available_fen == 9_400 + 8_000_000
    assert top_up.events.last().note == "回单已核"


def test_top_up_form_at_the_threshold_credits_at_once(billing_world, login):
    url = reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk])
    response = login(billing_world.finance).post(
        url, {"amount_fen": "50000", "external_reference": "BANK-50K"}, follow=True
    )
    assert "已充值 50,000.00 元" in response.content.decode()
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 5_009_400


@pytest.mark.parametrize("typed", ["1e5", "１００", "1,000", "+100"])
def test_top_up_form_refuses_amounts_that_are_not_plain_and_keeps_a_line(
    billing_world, login, typed
):
    url = reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk])
    response = login(billing_world.finance).post(
        url, {"amount_fen": typed, "external_reference": "BANK-TYPO"}
    )
    assert response.status_code == 200
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 9_400
    line = TopUp.objects.get(status=TopUp.Status.REFUSED)
    assert (line.amount_fen, line.amount_typed, line.external_reference) == (
        None,
        typed,
        "BANK-TYPO",
    )
    assert line.reason and line.reason in response.content.decode()


def test_refused_top_ups_are_listed_for_platform_staff_with_their_reason(billing_world, login):
    url = reverse("admin:billing_wallet_top_up", args=[billing_world.wallet_a.pk])
    client = login(billing_world.finance)
    client.post(url, {"amount_fen": "12.34", "external_reference": "BANK-900"})
    client.post(url, {"amount_fen": "12.34", "external_reference": " bank-900 "})  # again
    client.post(url, {"amount_fen": "1e5", "external_reference": "BANK-901"})
    for who in ("finance", "cs"):
        text = login(billing_world.user(who)).get(reverse("admin:billing_topup_changelist"))
        text = text.content.decode()
        assert "外部流水号 BANK-900 已入账，不能重复充值。" in text
        assert "1e5" in text and "指数" in text
        # The repeated serial and the exponent, each refused at input and listed.
        refused = TopUp.objects.filter(status=TopUp.Status.REFUSED)
        assert refused.count() == 2
        assert all(escape(top_up.reason) in text for top_up in refused), who
    # Merchants read their money in the ledger entries, never the top-up records.
    for who in ("owner", "agent", "viewer", "other"):
        response = login(billing_world.user(who)).get(reverse("admin:billing_topup_changelist"))
        assert response.status_code == 403


def test_rejected_top_up_is_listed_with_its_reason(billing_world, finance2, login):
    decide = reverse("admin:billing_topup_decide", args=[billing_world.top_up_a.pk])
    login(finance2).post(decide, {"decision": "reject", "decision_note": "回单金额不符"})
    billing_world.top_up_a.refresh_from_db()
    assert billing_world.top_up_a.status == TopUp.Status.REJECTED
    text = login(billing_world.cs).get(reverse("admin:billing_topup_changelist")).content
    assert "回单金额不符" in text.decode()
    assert selectors.wallet_balances(shop_id=billing_world.shop_a.pk).available_fen == 9_400


def test_top_up_list_searches_a_whole_serial_in_any_case(billing_world, login):
    url = reverse("admin:billing_topup_changelist")
    text = login(billing_world.finance).get(url, {"q": " bank-big "}).content.decode()
    assert "BANK-BIG" in text
    text = login(billing_world.finance).get(url, {"q": "BANK"}).content.decode()
    assert "BANK-BIG" not in text


def test_wallet_page_shows_pending_top_ups_to_finance_only(billing_world, login):
    url = reverse("admin:billing_wallet_change", args=[billing_world.wallet_a.pk])
    records = reverse("admin:billing_topup_changelist")
    finance_page = login(billing_world.finance).get(url).content.decode()
    assert 'id="pending-top-ups"' in finance_page and "60,000.00" in finance_page
    cs_page = login(billing_world.cs).get(url).content.decode()
    assert records in cs_page and 'id="pending-top-ups"' not in cs_page
    for who in ("owner", "agent", "viewer"):
        page = login(billing_world.user(who)).get(url).content.decode()
        assert records not in page and "BANK-BIG" not in page, who


def test_wallet_page_stays_cheap_for_finance(busy_billing, login):
    url = reverse("admin:billing_wallet_change", args=[busy_billing.wallet_a.pk])
    count, _ = _count(login(busy_billing.finance), url)
    assert count <= 12


def test_no_add_button_where_every_shop_has_its_wallet(world, login, wallet_a):
    """An owner whose shop has its wallet is offered no "add" leading to an empty choice."""
    add = reverse("admin:billing_wallet_add")
    page = login(world.owner).get(reverse("admin:billing_wallet_changelist")).content.decode()
    assert f'href="{add}"' not in page
    # The other shop's owner has no wallet yet: the button is there for them.
    page = login(world.other).get(reverse("admin:billing_wallet_changelist")).content.decode()
    assert f'href="{add}"' in page
