"""A sandbox courier on a near-frozen clock (one simulated second per real second), so its truth
about each parcel holds still while a test polls, refreshes or subscribes."""

import pytest

from couriers.sandbox import SandboxServer


@pytest.fixture(scope="session")
def sandbox():
    server = SandboxServer(speed=1.0, seed=7)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _live_server_needs_its_own_connection(request):
    """Django's live server shares the test thread's connection to an in-memory SQLite database
    (see LiveServerTestCase in Django's docs): the courier's callbacks reach it while the test
    queries, and two threads on one SQLite connection fail at random. On PostgreSQL each thread
    has its own connection."""
    if "live_server" in request.fixturenames:
        from django.db import connection

        if connection.vendor == "sqlite":
            pytest.skip("the live server would share the test's in-memory SQLite connection")
