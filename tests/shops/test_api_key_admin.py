"""The shop owner makes and revokes API keys in the workbench; the key is shown once; nobody
else in the shop, and no other shop, sees them."""

import re

import pytest
from django.contrib.messages import get_messages

from shops.api_keys import api_key_create
from shops.models import ApiKey
from tests.api_client import call

pytestmark = pytest.mark.django_db

ADD = "/admin/shops/apikey/add/"
LIST = "/admin/shops/apikey/"


def test_the_owner_makes_a_key_and_sees_it_once(login, world):
    client = login(world.owner)

    response = client.post(
        ADD,
        {"shop": world.shop_a.pk, "name": "ERP", "allowed_ips": "127.0.0.1\n10.0.0.0/8"},
        follow=True,
    )

    # The page the save answers with shows the key, once, and is never stored.
    assert "no-store" in response.headers["Cache-Control"]
    [raw] = re.findall(r"pik_[0-9a-f]{8}_[A-Za-z0-9_-]+", response.content.decode())
    # Not in a message (the messages travel in a cookie or the session).
    assert raw not in str(response.cookies) and not list(get_messages(response.wsgi_request))
    key = ApiKey.objects.get(shop=world.shop_a)
    assert key.allowed_ips == ["127.0.0.1/32", "10.0.0.0/8"]
    assert call(client, "GET", "/api/v1/after-sales/", raw).status_code == 200
    page = client.get(f"/admin/shops/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and key.prefix in page


@pytest.mark.parametrize("who", ["agent", "viewer"])
def test_agents_and_viewers_neither_see_nor_make_keys(login, world, who):
    api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    client = login(world.user(who))

    assert client.get(LIST).status_code == 403
    assert client.post(ADD, {"shop": world.shop_a.pk, "name": "x"}).status_code == 403


def test_another_shops_owner_cannot_see_or_make_our_keys(login, world):
    key, _raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    client = login(world.other)

    assert client.get(f"/admin/shops/apikey/{key.pk}/change/").status_code == 404
    assert key.name not in client.get(LIST).content.decode()
    client.post(ADD, {"shop": world.shop_a.pk, "name": "intruder"})
    assert not ApiKey.objects.filter(name="intruder").exists()


def test_the_owner_revokes_a_key(login, world):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    client = login(world.owner)

    client.post(LIST, {"action": "revoke", "_selected_action": [key.pk]})

    assert ApiKey.objects.get(pk=key.pk).revoked_by == world.owner
    assert call(client, "GET", "/api/v1/after-sales/", raw).status_code == 401


def test_platform_staff_read_keys_but_cannot_revoke_them(login, world):
    key, _raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    client = login(world.cs)

    assert key.name in client.get(LIST).content.decode()
    client.post(LIST, {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_reposting_the_new_key_form_makes_no_second_key(login, world):
    client = login(world.owner)
    form = {"shop": world.shop_a.pk, "name": "ERP", "allowed_ips": ""}

    client.post(ADD, form)
    again = client.post(ADD, form)  # the browser's "reload" of the page that showed the key

    assert again.status_code == 200
    assert "已有一个同名的有效密钥" in again.content.decode()
    assert ApiKey.objects.filter(shop=world.shop_a).count() == 1
