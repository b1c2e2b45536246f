"""The session's user is read back from its session; the Redis cache shares its client."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.test import RequestFactory

from tests.factories import UserFactory


@pytest.mark.django_db
def test_a_signed_in_request_carries_its_user(client):
    user = UserFactory(username="session-user")
    client.force_login(user)
    request = RequestFactory().get("/")
    request.session = client.session
    assert get_user(request).pk == user.pk
    user.is_active = False
    user.save()
    assert not get_user(request).is_authenticated


def test_the_redis_cache_shares_one_client():
    if not getattr(settings, "REDIS_URL", None):
        pytest.skip("the cache is Redis only with REDIS_URL")
    cache.set("shared-client-check", {"n": 1}, 30)
    assert cache.get("shared-client-check") == {"n": 1}
    assert cache._cache.get_client() is cache._cache.get_client()
    assert cache._cache.get_client(write=True) is cache._cache.get_client()
    cache.delete("shared-client-check")


@pytest.mark.django_db
def test_a_session_signed_in_by_djangos_own_backend_stays_signed_in(client):
    user = UserFactory(username="earlier-session")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    request = RequestFactory().get("/")
    request.session = client.session
    assert get_user(request).pk == user.pk
