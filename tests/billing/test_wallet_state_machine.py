"""A hypothesis state machine of one wallet: random top-ups, holds, captures, releases and
repeats, checked against a plain Python model and the ledger's invariants after every step."""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from billing import selectors, services
from billing.models import Hold, LedgerTransaction
from billing.services import BillingError
from couriers.models import Courier
from tests.factories import ShopFactory

amounts = st.integers(min_value=1, max_value=5_000)


class WalletMachine(RuleBasedStateMachine):
    # Set by the test: the cast's finance user.
    finance = None

    holds = Bundle("holds")
    top_up_refs = Bundle("top_up_refs")

    def __init__(self):
        super().__init__()
        self.shop = ShopFactory()
        self.wallet = services.wallet_open(actor=self.finance, shop_id=self.shop.pk)
        self.courier = Courier.objects.get(code="ZTO")
        self.available = 0
        self.held = 0
        self.status: dict[str, str] = {}
        self.amount: dict[str, int] = {}
        self.serial = 0

    def _next(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}:{self.wallet.pk}-{self.serial}"

    @rule(target=top_up_refs, amount=amounts)
    def top_up(self, amount):
        reference = self._next("bank")
        services.wallet_top_up(
            actor=self.finance, wallet=self.wallet, amount_fen=amount, external_reference=reference
        )
        self.available += amount
        return reference

    @rule(reference=top_up_refs, amount=amounts)
    def top_up_again_is_refused(self, reference, amount):
        with pytest.raises(BillingError):
            services.wallet_top_up(
                actor=self.finance,
                wallet=self.wallet,
                amount_fen=amount,
                external_reference=reference,
            )

    @rule(target=holds, amount=amounts)
    def hold(self, amount):
        reference = self._next("intercept")
        if amount > self.available:
            with pytest.raises(BillingError):
                services.wallet_hold(
                    shop_id=self.shop.pk,
                    reference=reference,
                    amount_fen=amount,
                    courier=self.courier,
                )
            assert not Hold.objects.filter(reference=reference).exists()
            return multiple()
        services.wallet_hold(
            shop_id=self.shop.pk, reference=reference, amount_fen=amount, courier=self.courier
        )
        self.available -= amount
        self.held += amount
        self.status[reference] = Hold.Status.HELD
        self.amount[reference] = amount
        return reference

    @rule(reference=holds)
    def hold_again_returns_the_first(self, reference):
        hold = services.wallet_hold(
            shop_id=self.shop.pk,
            reference=reference,
            amount_fen=self.amount[reference],
            courier=self.courier,
        )
        assert hold.status == self.status[reference]

    @rule(reference=holds)
    def capture(self, reference):
        self._settle(reference, Hold.Status.CAPTURED, services.wallet_capture)

    @rule(reference=holds)
    def release(self, reference):
        self._settle(reference, Hold.Status.RELEASED, services.wallet_release)

    @rule(reference=consumes(holds))
    def capture_and_retire(self, reference):
        # Consuming some references keeps the bundle from filling with settled holds only.
        self._settle(reference, Hold.Status.CAPTURED, services.wallet_capture)

    def _settle(self, reference, target, service):
        current = self.status[reference]
        if current not in (Hold.Status.HELD, target):
            with pytest.raises(BillingError):
                service(reference=reference)
            return
        assert service(reference=reference).status == target
        if current == Hold.Status.HELD:
            self.held -= self.amount[reference]
            if target == Hold.Status.RELEASED:
                self.available += self.amount[reference]
            self.status[reference] = target

    @invariant()
    def ledger_is_sound(self):
        assert selectors.ledger_discrepancies(wallet_id=self.wallet.pk) == {}

    @invariant()
    def balances_match_the_model(self):
        balances = selectors.wallet_balances(shop_id=self.shop.pk)
        assert (balances.available_fen, balances.held_fen) == (self.available, self.held)
        assert balances.available_fen >= 0

    @invariant()
    def each_settled_hold_posted_once(self):
        posted = LedgerTransaction.objects.filter(wallet=self.wallet).exclude(
            kind__in=[LedgerTransaction.Kind.TOP_UP]
        )
        counts = {}
        for kind, reference in posted.values_list("kind", "reference"):
            counts[(kind, reference)] = counts.get((kind, reference), 0) + 1
        assert all(times == 1 for times in counts.values())
        captured = {r for r, s in self.status.items() if s == Hold.Status.CAPTURED}
        assert {r for (k, r) in counts if k == "capture"} == captured


def test_wallet_state_machine(world):
    WalletMachine.finance = world.finance
    WalletMachine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    WalletMachine.TestCase().runTest()
