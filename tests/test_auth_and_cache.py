"""The session's user is read by the workbench backend; the Redis cache shares its client."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone

from intercepts.auth import WorkbenchBackend
from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_backend_reads_the_user_as_the_orm_would():
    user = UserFactory(username="reader", first_name="阿", last_name="明")
    user.last_login = timezone.now()
    user.save()
    read = WorkbenchBackend().get_user(user.pk)
    assert read.pk == user.pk
    assert (read.username, read.get_full_name(), read.email) == ("reader", "阿 明", user.email)
    assert read.last_login == user.last_login
    assert timezone.is_aware(read.last_login) and timezone.is_aware(read.date_joined)
    assert read.password == user.password


@pytest.mark.django_db
def test_an_inactive_or_missing_user_is_no_user():
    user = UserFactory(is_active=False)
    assert WorkbenchBackend().get_user(user.pk) is None
    assert WorkbenchBackend().get_user(user.pk + 1000) is None


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
