"""Eligibility: every named rule answers, each refusal with its Chinese reason; the platform's
policy decides which rules apply and their settings, and platform staff edit it."""

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from billing import services as billing_services
from couriers.models import Courier
from couriers.stages import ParcelStage
from intercepts.eligibility import RULE_CODES, intercept_eligibility, is_eligible
from intercepts.models import AfterSale, GoodsCategory, InterceptPolicy, InterceptRequest
from intercepts.services.intercept_requests import intercept_create
from shops.models import Shop
from tests.factories import ParcelFactory, sandbox_served
from tests.intercepts.readiness import grant_ewaybill


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def ready(world, sandbox):
    """Shop A's refund-only after-sale on a ZTO parcel in transit that passes every rule."""
    sandbox_served(sandbox, "kuaidi100", ["ZTO"])
    zto = Courier.objects.get(code="ZTO")
    shop = world.shop_a
    shop.intercept_agreement_version = InterceptPolicy.current().agreement_version
    shop.intercept_agreement_signed_at = timezone.now()
    shop.intercept_agreement_signed_by = world.owner
    shop.save()
    grant_ewaybill(shop, "ZTO")
    wallet = billing_services.wallet_open(actor=world.owner, shop_id=shop.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=1_000, external_reference="BANK-E-1"
    )
    after_sale = world.after_sale_a
    after_sale.kind, after_sale.status = AfterSale.Kind.REFUND_ONLY, AfterSale.Status.PENDING
    after_sale.save()
    parcel = world.parcel_a
    parcel.courier, parcel.stage, parcel.declared_value_fen = zto, ParcelStage.IN_TRANSIT, 5_000
    parcel.save()
    parcel.lines.update(category=GoodsCategory.NORMAL)
    return after_sale, parcel


def _check(after_sale, parcel, action="return"):
    results = intercept_eligibility(after_sale=after_sale, parcel=parcel, action=action)
    return {result.code: result for result in results}


def _refused(results) -> dict[str, str]:
    return {code: r.message for code, r in results.items() if r.passed is False}


def test_a_parcel_that_meets_every_rule(ready):
    results = _check(*ready)
    assert list(results) == list(RULE_CODES)
    assert _refused(results) == {}
    assert is_eligible(list(results.values()))


@pytest.mark.parametrize(
    ("rule", "spoil", "reason"),
    [
        (
            "not_cross_border",
            lambda w, a, p: Shop.objects.filter(pk=w.shop_a.pk).update(is_cross_border=True),
            "跨境",
        ),
        (
            "shop_operating",
            lambda w, a, p: Shop.objects.filter(pk=w.shop_a.pk).update(status="restricted"),
            "经营",
        ),
        (
            "agreement_signed",
            lambda w, a, p: Shop.objects.filter(pk=w.shop_a.pk).update(
                intercept_agreement_version="2025-01"
            ),
            "新版本",
        ),
        (
            "wallet_funds",
            lambda w, a, p: billing_services.wallet_hold(
                shop_id=w.shop_a.pk, reference="x:1", amount_fen=900, courier=p.courier
            ),
            "可用",
        ),
        ("ewaybill", lambda w, a, p: w.shop_a.ewaybill_accounts.all().delete(), "电子面单"),
        (
            "after_sale_state",
            lambda w, a, p: AfterSale.objects.filter(pk=a.pk).update(status="refunded"),
            "仅退款",
        ),
        ("goods_categories", lambda w, a, p: p.lines.update(category=GoodsCategory.TEA), "茶叶"),
        (
            "value_cap",
            lambda w, a, p: type(p).objects.filter(pk=p.pk).update(declared_value_fen=100_001),
            "1,000.00",
        ),
        (
            "courier_capable",
            lambda w, a, p: Courier.objects.filter(pk=p.courier_id).update(
                can_return_to_sender=False
            ),
            "不支持",
        ),
        (
            "stage_window",
            lambda w, a, p: type(p).objects.filter(pk=p.pk).update(stage=ParcelStage.DELIVERED),
            "已签收",
        ),
        (
            "multi_parcel",
            lambda w, a, p: ParcelFactory(order=p.order, courier=p.courier),
            "多个包裹",
        ),
    ],
)
def test_each_rule_refuses_with_its_reason(world, ready, rule, spoil, reason):
    after_sale, parcel = ready
    spoil(world, after_sale, parcel)
    after_sale.refresh_from_db()
    parcel = type(parcel).objects.get(pk=parcel.pk)
    refused = _refused(_check(after_sale, parcel))
    assert list(refused) == [rule]
    assert reason in refused[rule]


def test_an_open_intercept_is_its_own_refusal(world, ready):
    after_sale, parcel = ready
    intercept_create(
        actor=world.owner,
        parcel=parcel,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=after_sale,
    )
    refused = _refused(_check(after_sale, parcel))
    assert "no_open_intercept" in refused and "已有进行中的拦截" in refused["no_open_intercept"]


def test_the_policy_decides_which_rules_apply_and_their_settings(ready):
    after_sale, parcel = ready
    parcel.lines.update(category=GoodsCategory.TEA)
    policy = InterceptPolicy.current()
    policy.excluded_categories = [GoodsCategory.FRESH]
    policy.redirect_stages = []
    policy.rules = [code for code in RULE_CODES if code != "multi_parcel"]
    policy.save()
    results = _check(after_sale, parcel)
    assert results["goods_categories"].passed is True  # tea is allowed by this policy
    assert results["multi_parcel"].passed is None and results["multi_parcel"].message
    # No stage allows a change of address under this policy.
    assert _check(after_sale, parcel, action="redirect")["stage_window"].passed is False


def test_a_courier_without_intercepts_cannot_be_asked(world, ready, sandbox):
    after_sale, parcel = ready
    sandbox_served(sandbox, "kdniao", ["ZTO"])  # Kdniao tracks but cannot intercept
    parcel = type(parcel).objects.get(pk=parcel.pk)
    assert list(_refused(_check(after_sale, parcel))) == ["courier_capable"]


# --- The policy page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 403),
        ("agent", 403),
        ("other", 403),
        ("cs", 200),
        ("finance", 200),
        ("anonymous", 302),
    ],
)
def test_only_platform_staff_open_the_policy(world, login, who, status):
    policy = InterceptPolicy.current()
    client = login(world.user(who))
    response = client.get(reverse("admin:intercepts_interceptpolicy_change", args=[policy.pk]))
    assert response.status_code == status
    listing = client.get(reverse("admin:intercepts_interceptpolicy_changelist"))
    assert listing.status_code == (302 if status == 200 else status)
    # The one policy is edited, never added: nobody gets the add page.
    add = client.get(reverse("admin:intercepts_interceptpolicy_add"))
    assert add.status_code == (302 if who == "anonymous" else 403)


def test_platform_staff_edit_the_policy_and_bad_input_is_refused(world, login):
    policy = InterceptPolicy.current()
    url = reverse("admin:intercepts_interceptpolicy_change", args=[policy.pk])
    client = login(world.cs)
    form = {
        "rules": ["not_cross_border", "value_cap"],
        "excluded_categories": [GoodsCategory.FRESH],
        "value_cap_fen": "-5",
        "return_stages": [ParcelStage.IN_TRANSIT],
        "redirect_stages": [],
        "agreement_version": "2026-02",
        "claim_suggest_after_days": "5",
        "shipment_notice_days": "6",
        "shipment_hold_days": "10",
        "receipt_confirm_days": "15",
        "receipt_extend_days": "5",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200 and "不能为负" in refused.content.decode()
    policy.refresh_from_db()
    assert policy.value_cap_fen == 100_000  # nothing saved
    too_high = client.post(url, {**form, "value_cap_fen": "99999999999"})
    assert "金额不能超过 1,000,000.00 元。" in too_high.content.decode()
    policy.refresh_from_db()
    assert policy.value_cap_fen == 100_000
    assert client.post(url, {**form, "value_cap_fen": "800.00"}).status_code == 302
    policy.refresh_from_db()
    assert (
        policy.value_cap_fen,
        policy.rules,
        policy.agreement_version,
        policy.claim_suggest_after_days,
    ) == (80_000, ["not_cross_border", "value_cap"], "2026-02", 5)
    # A merchant's post changes nothing.
    assert login(world.owner).post(url, {**form, "value_cap_fen": "1.00"}).status_code == 403
    policy.refresh_from_db()
    assert policy.value_cap_fen == 80_000
