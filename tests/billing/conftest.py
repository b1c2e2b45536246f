"""Wallets for the fixed cast: shop A's wallet, opened by its owner, and helpers to fund it."""

import pytest

from billing import services
from billing.models import Wallet
from couriers.models import Courier


@pytest.fixture
def zto(db):
    return Courier.objects.get(code="ZTO")


@pytest.fixture
def wallet_a(world) -> Wallet:
    return services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)


@pytest.fixture
def wallet_b(world) -> Wallet:
    return services.wallet_open(actor=world.other, shop_id=world.shop_b.pk)


@pytest.fixture
def fund(world):
    """Top a wallet up as finance with a fresh external reference each time."""
    counter = iter(range(1, 1_000_000))

    def _fund(wallet: Wallet, amount_fen: int):
        return services.wallet_top_up(
            actor=world.finance,
            wallet=wallet,
            amount_fen=amount_fen,
            external_reference=f"BANK-{wallet.pk}-{next(counter)}",
        )

    return _fund
