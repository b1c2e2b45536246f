"""Demo data: safe to run twice, and covers every stage, status and kind."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from billing import selectors as billing_selectors
from billing import services as billing_services
from couriers.stages import ParcelStage
from intercepts.models import AfterSale, Order, Parcel
from shops.models import Shop, ShopMembership


def _counts():
    return (
        Shop.objects.count(),
        Order.objects.count(),
        Parcel.objects.count(),
        AfterSale.objects.count(),
        User.objects.count(),
        ShopMembership.objects.count(),
    )


@pytest.mark.django_db
def test_seed_demo_is_safe_to_run_twice_and_covers_every_state(capsys):
    # Tests run with debug off, as a deployment does: the demo needs --force there.
    call_command("seed_demo", force=True)
    first = _counts()
    call_command("seed_demo", force=True)
    assert _counts() == first
    shops, orders, *_ = first
    assert shops == 2 and orders == 300
    assert set(Parcel.objects.values_list("stage", flat=True)) == set(ParcelStage)
    assert set(AfterSale.objects.values_list("status", flat=True)) == set(AfterSale.Status)
    assert set(AfterSale.objects.values_list("kind", flat=True)) == set(AfterSale.Kind)
    assert set(AfterSale.objects.values_list("arbitration", flat=True)) == set(
        AfterSale.Arbitration
    )
    printed = capsys.readouterr().out
    for username in ("owner", "agent", "viewer", "owner2", "cs", "finance"):
        assert username in printed
    assert User.objects.get(username="agent").check_password("demo-agent-123")
    # Each shop can pay for intercepts at once: funded once, with a payment password.
    for shop in Shop.objects.all():
        balances = billing_selectors.wallet_balances(shop_id=shop.pk)
        assert balances.available_fen == 500_00
        billing_services.payment_password_check(shop_id=shop.pk, pin="123456")


@pytest.mark.django_db
def test_seed_demo_refuses_with_debug_off_unless_forced():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")
    assert not User.objects.filter(username="owner").exists()
