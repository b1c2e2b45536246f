"""The shared token bucket: several workers together stay within one gateway's rate."""

import threading
import time
import uuid

import pytest
from django.conf import settings

from couriers.ratelimit import RateLimiter


def _name():
    return f"test-{uuid.uuid4().hex}"


def test_burst_is_granted_then_the_rate_applies():
    limiter = RateLimiter(_name(), per_second=20, burst=5)
    assert [limiter.try_acquire() for _ in range(5)] == [0, 0, 0, 0, 0]
    wait = limiter.try_acquire()
    assert 0 < wait <= 0.06


def test_rejects_a_non_positive_rate():
    with pytest.raises(ValueError):
        RateLimiter(_name(), per_second=0)


def test_threads_sharing_a_bucket_stay_within_the_rate():
    if not getattr(settings, "REDIS_URL", None):
        pytest.skip("the shared bucket lives in Redis (REDIS_URL)")
    name = _name()
    rate = 50
    granted = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 1.0

    def worker():
        limiter = RateLimiter(name, per_second=rate, burst=5)
        while time.monotonic() < stop_at:
            if limiter.acquire(max_wait_s=0.5) and time.monotonic() < stop_at:
                with lock:
                    granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One second at 50/s plus the burst of 5, with a little slack for timing at the edges.
    assert 40 <= len(granted) <= rate + 5 + 3
