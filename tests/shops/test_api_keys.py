"""API keys: made and revoked by the shop's owner only, shown once, kept hashed, refused when
revoked, expired or used from an address their allow-list leaves out."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from shops.api_keys import api_key_create, api_key_revoke
from shops.models import ApiKey
from tests.api_client import call

pytestmark = pytest.mark.django_db

ME = "/api/v1/after-sales/"


def test_the_owner_makes_a_key_shown_once_and_kept_as_a_hash(world):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="聚水潭 ERP")

    prefix = raw.split("_")[1]
    secret = raw.split("_", 2)[2]
    assert raw.startswith(f"pik_{key.prefix}_")
    assert prefix == key.prefix
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.user.username == f"API:聚水潭 ERP#{key.prefix}"
    assert not key.user.has_usable_password() and not key.user.is_staff


@pytest.mark.parametrize("who", ["agent", "viewer", "other", "cs", "finance"])
def test_only_the_shop_owner_makes_keys(world, who):
    with pytest.raises(PermissionDenied):
        api_key_create(actor=world.user(who), shop=world.shop_a, name="ERP")


def test_a_key_needs_a_name_and_a_sane_allow_list(world):
    with pytest.raises(ValidationError):
        api_key_create(actor=world.owner, shop=world.shop_a, name="  ")
    with pytest.raises(ValidationError):
        api_key_create(actor=world.owner, shop=world.shop_a, name="ERP", allowed_ips=["1.2.3"])


def test_a_key_answers_for_its_own_shop(client, world):
    _key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")

    response = call(client, "GET", ME, raw)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [world.after_sale_a.pk]


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        pytest.param(None, 401, "not_authenticated", id="no-key"),
        pytest.param("Bearer pik_00000000_nothing", 401, "key_invalid", id="unknown-key"),
        pytest.param("Bearer", 401, "key_invalid", id="empty-bearer"),
        pytest.param("Token abc", 401, "not_authenticated", id="other-scheme"),
    ],
)
def test_requests_without_a_valid_key_are_refused(client, world, header, status, code):
    headers = {"Authorization": header} if header else {}

    response = client.get(ME, headers=headers)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_signed_in_browser_session_does_not_open_the_api(client, world):
    client.force_login(world.owner)

    response = client.get(ME)

    assert response.status_code == 401


def test_a_wrong_secret_with_a_real_prefix_is_refused(client, world):
    _key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")

    response = call(client, "GET", ME, raw[:-2] + ("AA" if raw[-2:] != "AA" else "BB"))

    assert (response.status_code, response.json()["code"]) == (401, "key_invalid")


def test_a_revoked_key_is_refused(client, world):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    api_key_revoke(actor=world.owner, key=key)

    response = call(client, "GET", ME, raw)

    assert (response.status_code, response.json()["code"]) == (401, "key_revoked")
    assert response.json()["message"] == "API 密钥已被吊销。"


def test_only_the_owner_revokes(world):
    key, _raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")

    with pytest.raises(PermissionDenied):
        api_key_revoke(actor=world.agent, key=key)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_an_expired_key_is_refused(client, world):
    key, raw = api_key_create(
        actor=world.owner, shop=world.shop_a, name="ERP", expires_at=timezone.now() + timedelta(1)
    )
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = call(client, "GET", ME, raw)

    assert (response.status_code, response.json()["code"]) == (401, "key_expired")


def test_a_key_from_an_address_outside_its_allow_list_is_refused(client, world):
    _key, raw = api_key_create(
        actor=world.owner, shop=world.shop_a, name="ERP", allowed_ips=["10.0.0.0/8"]
    )

    response = call(client, "GET", ME, raw)  # the test client comes from 127.0.0.1

    assert (response.status_code, response.json()["code"]) == (403, "ip_not_allowed")


def test_a_key_from_an_address_inside_its_allow_list_is_let_in(client, world):
    _key, raw = api_key_create(
        actor=world.owner, shop=world.shop_a, name="ERP", allowed_ips=["127.0.0.1"]
    )

    assert call(client, "GET", ME, raw).status_code == 200


def test_the_last_use_is_stamped(client, world):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")

    call(client, "GET", ME, raw)

    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


def test_errors_speak_english_when_asked(client, world):
    key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")
    api_key_revoke(actor=world.owner, key=key)

    response = call(client, "GET", ME, raw, **{"Accept-Language": "en"})

    assert response.json()["message"] == "The API key was revoked."


def test_requests_past_the_keys_rate_are_refused_with_retry_after(client, world, settings):
    rest = {**settings.REST_FRAMEWORK}
    rest["DEFAULT_THROTTLE_RATES"] = {"api_key": "3/min"}
    settings.REST_FRAMEWORK = rest
    _key, raw = api_key_create(actor=world.owner, shop=world.shop_a, name="ERP")

    answers = [call(client, "GET", ME, raw) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("proxies", "forwarded", "status"),
    [
        # Behind one proxy, the address it appended is the client's.
        pytest.param(1, "203.0.113.7", 200, id="one-proxy-allowed-client"),
        pytest.param(1, "198.51.100.9", 403, id="one-proxy-other-client"),
        # A client cannot slip an allowed address in front of what the proxy appended.
        pytest.param(1, "203.0.113.7, 198.51.100.9", 403, id="one-proxy-forged-entry"),
        pytest.param(2, "203.0.113.7, 10.0.0.5", 200, id="two-proxies"),
        # Without a proxy setting the header is ignored: the connection's own address counts.
        pytest.param(0, "203.0.113.7", 403, id="no-proxy-header-ignored"),
    ],
)
def test_the_allow_list_reads_the_client_behind_the_configured_proxies(
    client, world, settings, proxies, forwarded, status
):
    settings.SIGNIN_PROXY_COUNT = proxies
    _key, raw = api_key_create(
        actor=world.owner, shop=world.shop_a, name="ERP", allowed_ips=["203.0.113.7"]
    )

    response = call(client, "GET", ME, raw, **{"X-Forwarded-For": forwarded})

    assert response.status_code == status
