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
