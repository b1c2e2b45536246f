"""Courier gateway accounts: platform staff only, and secrets never shown once saved."""

import pytest
from django.urls import reverse

from couriers.models import CourierAccount
from tests.factories import UserFactory

SECRET = "s3cr3t-check-word-value"


@pytest.fixture
def account(db):
    return CourierAccount.objects.create(
        name="SF direct",
        protocol=CourierAccount.Protocol.SF,
        base_url="https://sfapi.example.com",
        partner_id="PARTNER",
        check_word=SECRET,
    )


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True)


def _form(account, **overrides):
    data = {
        "name": account.name,
        "protocol": account.protocol,
        "base_url": account.base_url,
        "partner_id": account.partner_id,
        "requests_per_second": "10",
        "batch_size": "10",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def test_secret_is_never_rendered(account, root, login):
    body = login(root).get(reverse("admin:couriers_courieraccount_change", args=[account.pk]))
    assert SECRET not in body.content.decode()
    assert "已保存" in body.content.decode()


def test_blank_secret_keeps_the_saved_one_and_a_new_one_replaces_it(account, root, login):
    client = login(root)
    url = reverse("admin:couriers_courieraccount_change", args=[account.pk])
    assert client.post(url, _form(account)).status_code == 302
    account.refresh_from_db()
    assert account.check_word == SECRET
    assert client.post(url, _form(account, check_word="new-word")).status_code == 302
    account.refresh_from_db()
    assert account.check_word == "new-word"


@pytest.mark.parametrize(
    ("who", "status"), [("owner", 403), ("other", 403), ("cs", 200), ("finance", 200)]
)
def test_only_platform_staff_see_accounts(world, account, login, who, status):
    url = reverse("admin:couriers_courieraccount_change", args=[account.pk])
    response = login(world.user(who)).get(url)
    assert response.status_code == status
    if status == 200:
        assert SECRET not in response.content.decode()
        assert "校验码" in response.content.decode() or "check word" in response.content.decode()


def test_platform_staff_cannot_change_accounts(world, account, login):
    url = reverse("admin:couriers_courieraccount_change", args=[account.pk])
    response = login(world.cs).post(url, _form(account, check_word="hijack"))
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.check_word == SECRET
