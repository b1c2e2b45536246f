"""The fixed cast for permission tests and a small world of two shops.

Cast: ``owner`` and ``agent`` and ``viewer`` of shop A, ``other`` (owner of shop B), ``cs``
(platform customer service), ``finance`` (platform finance) and the anonymous visitor; and
``finance2``, a second finance user, for what two of them must decide.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from shops.models import PLATFORM_CS, PLATFORM_FINANCE, ShopMembership
from tests.factories import (
    MembershipFactory,
    ShopFactory,
    UserFactory,
    make_after_sale,
)


@dataclass
class World:
    shop_a: object
    shop_b: object
    owner: object
    agent: object
    viewer: object
    other: object
    cs: object
    finance: object
    after_sale_a: object
    after_sale_b: object
    parcel_a: object
    parcel_b: object

    def user(self, name: str):
        return None if name == "anonymous" else getattr(self, name)


@pytest.fixture(autouse=True)
def _own_cache_without_redis(settings):
    # Without Redis the cache is files shared with the demo, and SQLite hands the same ids to
    # every test, so counts keyed by id would carry over: each test gets a cache of its own.
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request the test client made in English
    leaves English active in the thread (LocaleMiddleware activates, nothing resets)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The cast logs in hundreds of times; real hashing would make that minutes of CPU.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db) -> World:
    shop_a = ShopFactory(name="甲店", code="shop-a")
    shop_b = ShopFactory(name="乙店", code="shop-b")
    owner = MembershipFactory(user__username="owner", shop=shop_a).user
    agent = MembershipFactory(
        user__username="agent", shop=shop_a, role=ShopMembership.Role.AGENT
    ).user
    viewer = MembershipFactory(
        user__username="viewer", shop=shop_a, role=ShopMembership.Role.VIEWER
    ).user
    other = MembershipFactory(user__username="other", shop=shop_b).user
    cs = UserFactory(username="cs")
    cs.groups.add(Group.objects.get(name=PLATFORM_CS))
    finance = UserFactory(username="finance")
    finance.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    after_sale_a, parcel_a = make_after_sale(shop_a)
    after_sale_b, parcel_b = make_after_sale(shop_b)
    return World(
        shop_a=shop_a,
        shop_b=shop_b,
        owner=owner,
        agent=agent,
        viewer=viewer,
        other=other,
        cs=cs,
        finance=finance,
        after_sale_a=after_sale_a,
        after_sale_b=after_sale_b,
        parcel_a=parcel_a,
        parcel_b=parcel_b,
    )


@pytest.fixture
def finance2(world):
    """A second platform finance user: a large top-up or adjustment needs two."""
    user = UserFactory(username="finance2")
    user.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    return user


@pytest.fixture
def login(client):
    """Log the client in as one of the cast (or stay anonymous) and return it."""

    def _login(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return _login


@pytest.fixture(autouse=True)
def celery_eager():
    """Run queued tasks in the calling thread (the tasks' own code, not a stand-in), so no test
    leaves messages on a real broker."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` need PostgreSQL's row locks, triggers or COPY: on the embedded
    SQLite they are skipped, and the run ends by saying how many."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL")
    marked = [item for item in items if "postgres" in item.keywords]
    for item in marked:
        item.add_marker(skip)
    config._postgres_skipped = len(marked)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = getattr(config, "_postgres_skipped", 0)
    if skipped:
        terminalreporter.write_line(
            f"{skipped} tests need PostgreSQL and were skipped on SQLite "
            "(row locks, triggers, COPY); set DATABASE_URL=postgres://... to run them."
        )
