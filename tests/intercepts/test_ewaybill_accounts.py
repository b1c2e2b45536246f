"""A shop's e-waybill accounts are granted by the platform, not ticked by the merchant: the
e-waybill rule and the courier's own check read them."""

import pytest
from django.urls import reverse

from couriers.models import Courier
from shops.models import EwaybillAccount

ADD = "admin:shops_ewaybillaccount_add"


def _grant(world, **overrides):
    data = {
        "shop": world.shop_a.pk,
        "courier": Courier.objects.get(code="ZTO").pk,
        "account_no": "ZTO-0001 ",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("who", ["owner", "agent", "viewer", "finance"])
def test_only_platform_cs_grants_an_ewaybill_account(world, login, who):
    response = login(world.user(who)).post(reverse(ADD), _grant(world))
    assert response.status_code == 403
    assert not EwaybillAccount.objects.exists()


def test_owner_cannot_tick_an_ewaybill_courier_on_the_shop_page(world, login):
    url = reverse("admin:shops_shop_change", args=[world.shop_a.pk])
    form = login(world.owner).get(url).context["adminform"].form
    assert "ewaybill_couriers" not in form.fields
    assert "ewaybill_accounts" not in form.fields


def test_platform_cs_grants_an_ewaybill_account_with_who_and_when(world, login):
    response = login(world.cs).post(reverse(ADD), _grant(world))
    assert response.status_code == 302
    account = EwaybillAccount.objects.get()
    assert (account.shop, account.courier.code, account.account_no) == (
        world.shop_a,
        "ZTO",
        "ZTO-0001",
    )
    assert account.granted_by == world.cs and account.granted_at is not None


def test_one_courier_account_number_cannot_serve_two_shops(world, login):
    client = login(world.cs)
    assert client.post(reverse(ADD), _grant(world)).status_code == 302
    response = client.post(reverse(ADD), _grant(world, shop=world.shop_b.pk))
    assert response.status_code == 200
    assert list(EwaybillAccount.objects.values_list("shop_id", flat=True)) == [world.shop_a.pk]


def test_shop_page_lists_its_ewaybill_accounts_read_only(world, login):
    login(world.cs).post(reverse(ADD), _grant(world))
    url = reverse("admin:shops_shop_change", args=[world.shop_a.pk])
    body = login(world.owner).get(url).content.decode()
    assert "ZTO-0001" in body
