"""Two-step sign-in: an authenticator code (TOTP) after the password, recovery codes, and who
must have one."""

import re

import pytest
from django.test import override_settings
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "pw-for-tests-123"
required = override_settings(WORKBENCH_REQUIRE_2FA=True)


def code_for(device) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def authenticator(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def sign_in(client, username, address="10.5.0.1"):
    client.post(
        reverse("admin:login"),
        {"username": username, "password": PASSWORD},
        REMOTE_ADDR=address,
    )
    return client


@required
@pytest.mark.parametrize("who", ["cs", "finance", "owner"])
def test_staff_and_owners_without_an_authenticator_are_sent_to_enrolment(world, login, who):
    response = login(world.user(who)).get(reverse("admin:intercepts_aftersale_changelist"))
    assert response["Location"].startswith(reverse("admin:two_factor_setup"))


@required
@pytest.mark.parametrize("who", ["agent", "viewer"])
def test_agents_and_viewers_may_go_without(world, login, who):
    response = login(world.user(who)).get(reverse("admin:intercepts_aftersale_changelist"))
    assert response.status_code == 200


def test_without_the_requirement_a_password_alone_signs_in(world, client):
    response = sign_in(client, "finance").get(reverse("admin:index"))
    assert response.status_code == 200


@required
def test_enrolment_confirms_with_a_code_and_shows_ten_recovery_codes_once(world, login):
    client = login(world.finance)
    page = client.get(reverse("admin:two_factor_setup"))
    device = TOTPDevice.objects.get(user=world.finance, confirmed=False)
    assert "<svg" in page.content.decode()
    response = client.post(reverse("admin:two_factor_setup"), {"code": code_for(device)})
    shown = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    stored = set(
        StaticToken.objects.filter(device__user=world.finance).values_list("token", flat=True)
    )
    assert (len(shown), set(shown) == stored) == (10, True)
    assert client.get(reverse("admin:index")).status_code == 200


@required
def test_a_wrong_enrolment_code_turns_nothing_on(world, login):
    client = login(world.finance)
    client.get(reverse("admin:two_factor_setup"))
    response = client.post(reverse("admin:two_factor_setup"), {"code": "000000"})
    assert (response.status_code, TOTPDevice.objects.filter(confirmed=True).count()) == (200, 0)


def test_an_enrolled_user_is_asked_for_the_code_after_the_password(world, client):
    authenticator(world.agent)  # enrolled by choice: asked even without the requirement
    response = sign_in(client, "agent").get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("admin:two_factor_verify"))


@required
def test_the_right_code_opens_the_workbench(world, client):
    device = authenticator(world.finance)
    sign_in(client, "finance")
    response = client.post(
        reverse("admin:two_factor_verify"), {"code": code_for(device), "next": "/admin/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.get(reverse("admin:index")).status_code == 200


@required
def test_a_wrong_code_is_refused(world, client):
    authenticator(world.finance)
    sign_in(client, "finance")
    response = client.post(reverse("admin:two_factor_verify"), {"code": "000000"})
    assert "验证码不正确" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


@required
def test_a_recovery_code_signs_in_once(world, client):
    from shops.two_factor import recovery_codes_issue

    authenticator(world.finance)
    code = recovery_codes_issue(user=world.finance)[0]
    sign_in(client, "finance")
    first = client.post(reverse("admin:two_factor_verify"), {"code": code})
    client.logout()
    sign_in(client, "finance", "10.5.0.2")
    second = client.post(reverse("admin:two_factor_verify"), {"code": code})
    assert (first.status_code, second.status_code) == (302, 200)


@required
def test_wrong_codes_lock_like_wrong_passwords(world, client, settings):
    authenticator(world.finance)
    sign_in(client, "finance")
    for _n in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(reverse("admin:two_factor_verify"), {"code": "000000"})
    assert (response.status_code, "_auth_user_id" in client.session) == (429, False)
    sign_in(client, "finance", "10.5.0.3")
    assert "_auth_user_id" not in client.session


@required
def test_enrolled_user_may_issue_new_recovery_codes(world, login):
    client = login(world.finance)
    device = TOTPDevice.objects.create(user=world.finance, name="a", confirmed=True)
    session = client.session  # as if the code had been entered
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    response = client.post(reverse("admin:two_factor_setup"), {"action": "recovery"})
    assert len(re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())) == 10


@required
def test_a_removed_authenticator_sends_the_user_to_set_up_a_new_one(world, client):
    authenticator(world.finance)
    sign_in(client, "finance")
    TOTPDevice.objects.filter(user=world.finance).delete()  # a superuser removed the lost one
    response = client.get(reverse("admin:two_factor_verify"))
    assert response["Location"] == reverse("admin:two_factor_setup")
