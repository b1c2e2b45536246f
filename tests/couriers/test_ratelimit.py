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


def _sent_in_one_second(rate: float, burst: float, send) -> int:
    """Requests four threads sharing one bucket send within a second; ``send(limiter, ok)``
    asks for tokens its own way and calls ``ok()`` for each request it may send."""
    if not getattr(settings, "REDIS_URL", None):
        pytest.skip("the shared bucket lives in Redis (REDIS_URL)")
    name = _name()
    granted = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 1.0

    def ok():
        if time.monotonic() < stop_at:
            with lock:
                granted.append(time.monotonic())

    def worker():
        limiter = RateLimiter(name, per_second=rate, burst=burst)
        while time.monotonic() < stop_at:
            send(limiter, ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(granted)


def test_threads_sharing_a_bucket_stay_within_the_rate():
    def send(limiter, ok):
        if limiter.acquire(max_wait_s=0.5):
            ok()

    # Never more than one second at 50/s plus the burst of 5 (a little slack for timing at the
    # edges). The lower bound only shows that waiting threads get served: on a busy machine a
    # waiter's sleep overshoots, so it asks for half the rate plus the burst, not all of it.
    assert 25 + 5 <= _sent_in_one_second(50, 5, send) <= 50 + 5 + 3


def test_grants_take_tokens_a_block_at_a_time():
    # At 200 a second a block is a tenth of a second's worth: 20 tokens. 45 requests take
    # three blocks (20, 20, 5), and the bucket holds what the blocks left.
    limiter = RateLimiter(_name(), per_second=200, burst=200)
    taken = []
    original = limiter.acquire

    def counting_acquire(tokens=1, **kwargs):
        taken.append(tokens)
        return original(tokens, **kwargs)

    limiter.acquire = counting_acquire
    assert list(limiter.grants(45)) == [True] * 45
    assert taken == [20, 20, 5]
    assert limiter.try_acquire(155) == 0  # 200 - 45 left (and a little refill)
    assert limiter.try_acquire(10) > 0


def test_slow_gateways_get_their_tokens_one_by_one():
    limiter = RateLimiter(_name(), per_second=5, burst=2)
    grants = limiter.grants(4, max_wait_s=0.05)
    assert [next(grants), next(grants)] == [True, True]  # the burst
    assert next(grants) is False  # the next token is 0.2 s away: longer than the wait allowed
    time.sleep(0.25)
    assert next(grants) is True


def test_threads_sharing_a_bucket_in_blocks_stay_within_the_rate():
    def send(limiter, ok):
        for granted in limiter.grants(25, max_wait_s=0.5):
            if granted:
                ok()

    # One second at 100/s plus the burst of 10: a token is still taken before each request.
    # The lower bound, as above, only shows the waiters are served.
    assert 50 + 10 <= _sent_in_one_second(100, 10, send) <= 100 + 10 + 3
