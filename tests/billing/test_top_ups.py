"""Top-ups: bank serials kept in one form, so that each applies once in any letter case; large
top-ups wait for a second finance user; every refused top-up stays as a line with its reason."""

import pytest
from django.utils import translation

from billing import selectors, services
from billing.models import Account, LedgerTransaction, TopUp, TopUpEvent
from billing.posting import Transfer
from billing.services import BillingError

# 60,000 yuan: above the default threshold of 50,000 yuan.
LARGE = 6_000_000


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


def available(wallet) -> int:
    return selectors.wallet_balances(shop_id=wallet.shop_id).available_fen


def top_ups_posted(wallet) -> list[str]:
    return list(
        LedgerTransaction.objects.filter(wallet=wallet, kind="top_up").values_list(
            "reference", flat=True
        )
    )


def request(world, wallet, amount_fen, reference, actor=None):
    return services.top_up_request(
        actor=actor or world.finance,
        wallet=wallet,
        amount_fen=amount_fen,
        external_reference=reference,
    )


# --- Bank serials ----------------------------------------------------------------------------


def test_repeated_bank_serial_in_other_letter_case_is_refused(world, wallet_a):
    services.wallet_top_up(
        actor=world.finance, wallet=wallet_a, amount_fen=500, external_reference="BANK-77"
    )
    for typed in ("bank-77", "Bank-77", "bAnK-77"):
        with pytest.raises(BillingError) as exc:
            services.wallet_top_up(
                actor=world.finance, wallet=wallet_a, amount_fen=500, external_reference=typed
            )
        assert "已入账" in str(exc.value)
    assert available(wallet_a) == 500
    assert len(top_ups_posted(wallet_a)) == 1


def test_bank_serial_is_trimmed(world, wallet_a):
    services.wallet_top_up(
        actor=world.finance, wallet=wallet_a, amount_fen=500, external_reference=" \tBANK-9\u3000"
    )
    assert top_ups_posted(wallet_a) == ["BANK-9"]
    assert TopUp.objects.get().external_reference == "BANK-9"
    with pytest.raises(BillingError):
        request(world, wallet_a, 500, "BANK-9")
    assert available(wallet_a) == 500


def test_full_width_bank_serial_is_the_same_serial(world, wallet_a):
    request(world, wallet_a, 500, "BANK-10")
    with pytest.raises(BillingError, match="已入账"):
        request(world, wallet_a, 500, "ＢＡＮＫ－１０")
    assert available(wallet_a) == 500


def test_bank_serial_is_kept_in_upper_case(world, wallet_a):
    top_up = request(world, wallet_a, 500, "icbc-2024-abc")
    assert top_up.external_reference == "ICBC-2024-ABC"
    assert top_ups_posted(wallet_a) == ["ICBC-2024-ABC"]


def test_serial_filed_before_serials_were_kept_in_upper_case_is_found(world, wallet_a):
    # A top-up posted by the earlier code, which kept the serial as typed.
    services._transfer(
        wallet_id=wallet_a.pk,
        kind=LedgerTransaction.Kind.TOP_UP,
        reference="bank-legacy-1",
        amount_fen=700,
        transfer=Transfer(debit=Account.Kind.FUNDING, credit=Account.Kind.AVAILABLE),
        actor=world.finance,
    )
    with pytest.raises(BillingError, match="已入账"):
        request(world, wallet_a, 700, "BANK-LEGACY-1")
    assert available(wallet_a) == 700


def test_serial_awaiting_approval_cannot_be_filed_again(world, wallet_a):
    request(world, wallet_a, LARGE, "BANK-P1")
    with pytest.raises(BillingError, match="待审批"):
        request(world, wallet_a, 500, "bank-p1")
    assert available(wallet_a) == 0


def test_a_serial_applies_once_across_wallets(world, wallet_a, wallet_b):
    request(world, wallet_a, 500, "BANK-X")
    with pytest.raises(BillingError, match="已入账"):
        request(world, wallet_b, 500, "bank-x")
    assert (available(wallet_a), available(wallet_b)) == (500, 0)


# --- A second finance user above the threshold -----------------------------------------------


def test_top_up_above_threshold_waits_for_a_second_finance_user(world, wallet_a, finance2):
    top_up = request(world, wallet_a, LARGE, "BANK-BIG-1")
    assert top_up.status == TopUp.Status.PENDING
    assert available(wallet_a) == 0
    assert top_ups_posted(wallet_a) == []

    services.top_up_approve(actor=finance2, top_up=top_up, note="已核对银行回单")

    top_up.refresh_from_db()
    assert (top_up.status, top_up.decided_by) == (TopUp.Status.APPLIED, finance2)
    assert available(wallet_a) == LARGE
    assert top_ups_posted(wallet_a) == ["BANK-BIG-1"]
    history = list(top_up.events.values_list("from_status", "to_status", "actor__username", "note"))
    assert history == [
        ("", "pending", "finance", ""),
        ("pending", "applied", "finance2", "已核对银行回单"),
    ]
    assert not selectors.ledger_discrepancies()


def test_top_up_at_the_threshold_applies_at_once(world, wallet_a):
    top_up = request(world, wallet_a, 5_000_000, "BANK-50K")
    assert top_up.status == TopUp.Status.APPLIED
    assert top_up.decided_by == world.finance
    assert available(wallet_a) == 5_000_000


def test_threshold_is_a_setting(world, wallet_a, settings):
    settings.BILLING_TOP_UP_APPROVAL_FEN = 10_000
    assert request(world, wallet_a, 10_000, "BANK-S1").status == TopUp.Status.APPLIED
    assert request(world, wallet_a, 10_001, "BANK-S2").status == TopUp.Status.PENDING
    assert available(wallet_a) == 10_000


def test_requester_cannot_approve_own_top_up(world, wallet_a):
    top_up = request(world, wallet_a, LARGE, "BANK-OWN")
    with pytest.raises(BillingError, match="另一位财务人员"):
        services.top_up_approve(actor=world.finance, top_up=top_up)
    top_up.refresh_from_db()
    assert top_up.status == TopUp.Status.PENDING
    assert available(wallet_a) == 0


@pytest.mark.parametrize("who", ["owner", "agent", "cs"])
def test_only_finance_approves_or_rejects(world, wallet_a, who):
    top_up = request(world, wallet_a, LARGE, "BANK-ROLE")
    for decide in (services.top_up_approve, services.top_up_reject):
        with pytest.raises(BillingError, match="财务"):
            decide(actor=world.user(who), top_up=top_up)
    top_up.refresh_from_db()
    assert top_up.status == TopUp.Status.PENDING


def test_approving_again_credits_nothing_more(world, wallet_a, finance2):
    top_up = request(world, wallet_a, LARGE, "BANK-TWICE")
    services.top_up_approve(actor=finance2, top_up=top_up)
    again = TopUp.objects.get(pk=top_up.pk)  # as another page would load it
    services.top_up_approve(actor=finance2, top_up=again)
    assert available(wallet_a) == LARGE
    assert TopUpEvent.objects.filter(top_up=top_up, to_status="applied").count() == 1


def test_rejected_top_up_moves_no_money_and_frees_its_serial(world, wallet_a, finance2):
    top_up = request(world, wallet_a, LARGE, "BANK-R1")
    services.top_up_reject(actor=finance2, top_up=top_up, note="金额与回单不符")
    top_up.refresh_from_db()
    assert (top_up.status, top_up.reason) == (TopUp.Status.REJECTED, "金额与回单不符")
    with pytest.raises(BillingError, match="已驳回"):
        services.top_up_approve(actor=finance2, top_up=top_up)
    assert available(wallet_a) == 0
    # The corrected request under the same serial is a new top-up.
    corrected = request(world, wallet_a, 600_000, "bank-r1")
    assert corrected.status == TopUp.Status.APPLIED
    assert available(wallet_a) == 600_000


def test_requester_may_withdraw_own_top_up(world, wallet_a):
    top_up = request(world, wallet_a, LARGE, "BANK-W")
    services.top_up_reject(actor=world.finance, top_up=top_up, note="录错了")
    top_up.refresh_from_db()
    assert top_up.status == TopUp.Status.REJECTED


def test_wallet_top_up_refuses_an_amount_that_needs_approval(world, wallet_a):
    with pytest.raises(BillingError, match=r"50,000\.00"):
        services.wallet_top_up(
            actor=world.finance, wallet=wallet_a, amount_fen=LARGE, external_reference="B-L"
        )
    assert available(wallet_a) == 0


# --- Refusals leave a line -------------------------------------------------------------------


def test_refused_top_up_leaves_an_audit_line(world, wallet_a):
    request(world, wallet_a, 500, "BANK-A1")
    with pytest.raises(BillingError) as exc:
        request(world, wallet_a, 800, " bank-a1 ")
    line = TopUp.objects.get(status=TopUp.Status.REFUSED)
    assert line.reason == str(exc.value)
    assert "已入账" in line.reason
    assert (line.wallet, line.amount_fen, line.external_reference, line.requested_by) == (
        wallet_a,
        800,
        "BANK-A1",
        world.finance,
    )
    assert list(line.events.values_list("from_status", "to_status", "note")) == [
        ("", "refused", line.reason)
    ]
    assert available(wallet_a) == 500


@pytest.mark.parametrize(("amount", "typed"), [(0, "0"), (-100, "-100")])
def test_refused_amount_leaves_an_audit_line(world, wallet_a, amount, typed):
    with pytest.raises(BillingError, match="大于零"):
        request(world, wallet_a, amount, "BANK-Z")
    line = TopUp.objects.get()
    assert (line.status, line.amount_fen, line.amount_typed) == ("refused", None, typed)
    # A refused line holds no serial: the serial is still free.
    assert request(world, wallet_a, 100, "BANK-Z").status == TopUp.Status.APPLIED


def test_a_refusal_by_someone_not_in_finance_writes_nothing(world, wallet_a):
    with pytest.raises(BillingError):
        request(world, wallet_a, 500, "BANK-N", actor=world.owner)
    assert not TopUp.objects.exists()
