"""A claim's life: passed to the courier, approved (perhaps for less) or rejected, appealed
once, paid into the wallet exactly once or offline, withdrawn before approval, closed; each
move with its history row, each by the role it belongs to."""

import re

import pytest

from billing import selectors as billing_selectors
from billing.models import LedgerTransaction
from claims import services
from claims.models import Claim
from claims.services import ClaimError

pytestmark = pytest.mark.django_db

S = Claim.Status


def _history(claim) -> list[tuple[str, str]]:
    return list(claim.events.values_list("from_status", "to_status"))


def _approved(world, claim, amount_fen=None, note=""):
    services.claim_send_to_courier(actor=world.cs, claim=claim)
    services.claim_approve(
        actor=world.cs, claim=claim, amount_fen=amount_fen or claim.amount_claimed_fen, note=note
    )
    return claim


def test_the_whole_way_to_a_wallet_payment_writes_one_history_row_per_move(world, claim_a):
    available_before = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen
    _approved(world, claim_a, 10_000, note="按实际损失核定")
    services.claim_pay(actor=world.finance, claim=claim_a)
    services.claim_close(actor=world.cs, claim=claim_a)

    claim_a.refresh_from_db()
    assert (claim_a.status, claim_a.amount_approved_fen, claim_a.payout) == (
        S.CLOSED,
        10_000,
        Claim.Payout.WALLET,
    )
    assert claim_a.decision_note == "按实际损失核定"
    assert _history(claim_a) == [
        ("", "submitted"),
        ("submitted", "with_courier"),
        ("with_courier", "approved"),
        ("approved", "paid"),
        ("paid", "closed"),
    ]
    available = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen
    assert available - available_before == 10_000
    payment = LedgerTransaction.objects.get(kind=LedgerTransaction.Kind.COMPENSATION)
    assert (payment.reference, payment.courier_id) == (f"claim:{claim_a.pk}", claim_a.courier_id)
    assert claim_a.payment_reference == f"ledger:{payment.pk}"


def test_paying_twice_credits_once(world, claim_a):
    _approved(world, claim_a)
    assert services.claim_pay(actor=world.finance, claim=claim_a) is True
    assert services.claim_pay(actor=world.finance, claim=claim_a) is False
    assert LedgerTransaction.objects.filter(kind="compensation").count() == 1


def test_an_offline_payment_records_its_reference_and_moves_no_money(world, claim_a):
    _approved(world, claim_a)
    with pytest.raises(ClaimError, match="线下赔付的凭证号"):
        services.claim_pay(actor=world.finance, claim=claim_a, offline=True)
    services.claim_pay(
        actor=world.finance, claim=claim_a, offline=True, payment_reference="ZTO-PAY-778"
    )
    claim_a.refresh_from_db()
    assert (claim_a.status, claim_a.payout, claim_a.payment_reference) == (
        S.PAID,
        Claim.Payout.OFFLINE,
        "ZTO-PAY-778",
    )
    assert not LedgerTransaction.objects.filter(kind="compensation").exists()


def test_a_lower_amount_needs_a_note_and_never_more_than_claimed(world, claim_a):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    with pytest.raises(ClaimError, match="请说明原因"):
        services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=5_000)
    with pytest.raises(ClaimError, match=re.escape("不能超过申请的 129.00 元")):
        services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=12_901)
    with pytest.raises(ClaimError, match="须大于 0 元"):
        services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=0)
    claim_a.refresh_from_db()
    assert (claim_a.status, claim_a.amount_approved_fen) == (S.WITH_COURIER, None)


def test_a_claim_not_with_the_courier_cannot_be_approved(world, claim_a):
    with pytest.raises(ClaimError, match="不能从“已提交”变为“已核准”"):
        services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=12_900)


def test_an_unapproved_claim_cannot_be_paid(world, claim_a):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    with pytest.raises(ClaimError, match="只有已核准的索赔才能赔付"):
        services.claim_pay(actor=world.finance, claim=claim_a)
    assert not LedgerTransaction.objects.filter(kind="compensation").exists()


def test_a_rejection_is_appealed_once(world, claim_a):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    with pytest.raises(ClaimError, match="驳回索赔的理由"):
        services.claim_reject(actor=world.cs, claim=claim_a, reason=" ")
    services.claim_reject(actor=world.cs, claim=claim_a, reason="签收时未注明破损")
    services.claim_appeal(actor=world.owner, claim=claim_a, note="有开箱视频为证")
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_reject(actor=world.cs, claim=claim_a, reason="复核仍不予赔付")

    with pytest.raises(ClaimError, match="已申诉过一次"):
        services.claim_appeal(actor=world.owner, claim=claim_a, note="再申诉")
    services.claim_close(actor=world.cs, claim=claim_a)
    claim_a.refresh_from_db()
    assert claim_a.status == S.CLOSED
    assert claim_a.appeal_note == "有开箱视频为证"
    assert [to for _from, to in _history(claim_a)] == [
        "submitted",
        "with_courier",
        "rejected",
        "appealed",
        "with_courier",
        "rejected",
        "closed",
    ]


@pytest.mark.parametrize("moves", [0, 1], ids=["submitted", "with-courier"])
def test_the_merchant_withdraws_before_approval(world, claim_a, moves):
    if moves:
        services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_withdraw(actor=world.agent, claim=claim_a)
    claim_a.refresh_from_db()
    assert claim_a.status == S.WITHDRAWN


def test_an_approved_claim_cannot_be_withdrawn(world, claim_a):
    _approved(world, claim_a)
    with pytest.raises(ClaimError, match="“已核准”的索赔不能再撤回"):
        services.claim_withdraw(actor=world.owner, claim=claim_a)


@pytest.mark.parametrize(
    ("name", "step"),
    [
        ("owner", "send"),
        ("finance", "send"),
        ("agent", "approve"),
        ("finance", "approve"),
        ("owner", "reject"),
        ("cs", "pay"),
        ("owner", "pay"),
        ("viewer", "withdraw"),
        ("other", "withdraw"),
        ("cs", "withdraw"),
        ("viewer", "appeal"),
        ("other", "appeal"),
        ("owner", "close"),
    ],
)
def test_each_move_belongs_to_its_role(world, claim_a, name, step):
    actor = world.user(name)
    calls = {
        "send": lambda: services.claim_send_to_courier(actor=actor, claim=claim_a),
        "approve": lambda: services.claim_approve(actor=actor, claim=claim_a, amount_fen=100),
        "reject": lambda: services.claim_reject(actor=actor, claim=claim_a, reason="x"),
        "pay": lambda: services.claim_pay(actor=actor, claim=claim_a),
        "withdraw": lambda: services.claim_withdraw(actor=actor, claim=claim_a),
        "appeal": lambda: services.claim_appeal(actor=actor, claim=claim_a, note="x"),
        "close": lambda: services.claim_close(actor=actor, claim=claim_a),
    }
    with pytest.raises(ClaimError, match="您无权"):
        calls[step]()
    assert _history(claim_a) == [("", "submitted")]
