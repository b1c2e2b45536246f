"""Failed sign-ins are limited per user and per address (django-axes), and leave lines that
platform staff read."""

import re
from datetime import datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

PASSWORD = "pw-for-tests-123"


def _sign_in(client, username, password, address="10.0.0.1"):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
    )


def _fail(client, username, times, *, address=None):
    for n in range(times):
        _sign_in(client, username, "wrong-guess", address or f"10.1.0.{n + 1}")


def test_repeated_wrong_passwords_lock_the_account(world, client, settings):
    # Five wrong passwords from five addresses lock the user, not only an address.
    _fail(client, "finance", settings.AXES_FAILURE_LIMIT)
    # Each refused try starts the cool-off again: the page names the minute it ends.
    asked_at = timezone.localtime(timezone.now()).replace(second=0, microsecond=0)
    response = _sign_in(client, "finance", PASSWORD, "10.9.9.9")
    answered_at = timezone.localtime(timezone.now())
    page = response.content.decode()
    assert (response.status_code, "_auth_user_id" in client.session, "登录已锁定" in page) == (
        429,
        False,
        True,
    )
    shown = re.search(r"请于 (\d{4}-\d\d-\d\d \d\d:\d\d) 后再试", page).group(1)
    retry_at = timezone.make_aware(datetime.strptime(shown, "%Y-%m-%d %H:%M"))
    cooloff = settings.AXES_COOLOFF_TIME
    assert asked_at + cooloff <= retry_at <= answered_at + cooloff


def test_an_address_with_many_failures_is_locked_for_every_user(world, client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"nobody-{n}", "wrong-guess", "10.2.0.7")
    response = _sign_in(client, "cs", PASSWORD, "10.2.0.7")
    assert (response.status_code, "_auth_user_id" in client.session) == (429, False)


def test_the_same_user_signs_in_from_another_address_after_an_address_lock(world, client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"nobody-{n}", "wrong-guess", "10.2.0.8")
    response = _sign_in(client, "cs", PASSWORD, "10.2.0.9")
    assert (response.status_code, "_auth_user_id" in client.session) == (302, True)


def test_the_lock_ends_after_the_cool_off(world, client, settings):
    _fail(client, "finance", settings.AXES_FAILURE_LIMIT)
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = _sign_in(client, "finance", PASSWORD, "10.9.9.9")
    assert (response.status_code, "_auth_user_id" in client.session) == (302, True)


def test_fewer_failures_than_the_limit_do_not_lock(world, client, settings):
    _fail(client, "finance", settings.AXES_FAILURE_LIMIT - 1)
    response = _sign_in(client, "finance", PASSWORD, "10.9.9.9")
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("who", "expected"),
    [("cs", 200), ("finance", 200), ("owner", 403), ("agent", 403), ("viewer", 403)],
)
def test_a_locked_sign_in_leaves_an_audit_line_platform_staff_read(
    world, client, login, settings, who, expected
):
    _fail(client, "owner", settings.AXES_FAILURE_LIMIT + 1, address="10.3.0.1")
    response = login(world.user(who)).get(reverse("admin:axes_accessfailurelog_changelist"))
    shown = response.status_code == 200 and "10.3.0.1" in response.content.decode()
    assert (response.status_code, shown) == (expected, expected == 200)


def test_the_lock_is_listed_for_platform_staff(world, client, login, settings):
    _fail(client, "owner", settings.AXES_FAILURE_LIMIT, address="10.3.0.2")
    response = login(world.cs).get(reverse("admin:axes_accessattempt_changelist"))
    assert "10.3.0.2" in response.content.decode()


def test_pin_reset_password_guesses_are_locked(world, login, settings):
    from billing import services

    shop_id = world.shop_a.pk
    wallet = services.wallet_open(actor=world.owner, shop_id=shop_id)
    services.payment_password_set(actor=world.owner, shop_id=shop_id, pin="123456")
    url = reverse("admin:billing_wallet_payment_password", args=[wallet.pk])
    client = login(world.owner)
    for _n in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"login_password": "wrong-guess", "pin": "654321", "pin_again": "654321"})
    response = client.post(
        url, {"login_password": PASSWORD, "pin": "654321", "pin_again": "654321"}
    )
    services.payment_password_check(shop_id=shop_id, pin="123456")  # the old PIN still holds
    assert (response.status_code, "登录已锁定" in response.content.decode()) == (429, True)


def test_pin_reset_guesses_lock_the_sign_in_too(world, client, login, settings):
    from billing import services

    shop_id = world.shop_a.pk
    wallet = services.wallet_open(actor=world.owner, shop_id=shop_id)
    services.payment_password_set(actor=world.owner, shop_id=shop_id, pin="123456")
    url = reverse("admin:billing_wallet_payment_password", args=[wallet.pk])
    login(world.owner)
    for _n in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"login_password": "wrong-guess", "pin": "654321", "pin_again": "654321"})
    client.logout()
    response = _sign_in(client, "owner", PASSWORD, "10.9.9.8")
    assert (response.status_code, "_auth_user_id" in client.session) == (429, False)
