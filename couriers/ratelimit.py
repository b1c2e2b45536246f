"""Requests-per-second limits per courier account, shared by every worker.

A token bucket kept in Redis (one hash per bucket, updated atomically by a Lua script) so that
all Celery workers together stay within a gateway's limit. Without Redis (the embedded
defaults) the bucket lives in the process, which is right for a single worker.
"""

import threading
import time
from collections.abc import Iterator

import redis
from django.conf import settings

# Refill by elapsed time, then take ``n`` tokens if there are enough. Returns 0 when taken,
# else the milliseconds to wait before enough tokens are there. Redis's clock is used so that
# workers on different machines agree.
_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now_ms
tokens = math.min(capacity, tokens + (now_ms - at) * rate / 1000)
local wait = 0
if tokens >= wanted then
  tokens = tokens - wanted
else
  wait = math.ceil((wanted - tokens) * 1000 / rate)
end
redis.call('HSET', key, 'tokens', tokens, 'at', now_ms)
redis.call('PEXPIRE', key, math.ceil(capacity * 1000 / rate) + 1000)
return wait
"""


class _LocalBucket:
    def __init__(self):
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def try_take(self, key: str, rate: float, capacity: float, wanted: float) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, at = self._state.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens >= wanted:
                self._state[key] = (tokens - wanted, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (wanted - tokens) / rate


_local = _LocalBucket()
_client_lock = threading.Lock()
_client: redis.Redis | None = None


def redis_client() -> redis.Redis | None:
    """The process's shared Redis client (``REDIS_URL``), or None when Redis is not set up."""
    return _redis()


def _redis() -> redis.Redis | None:
    global _client
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return None
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(url)
        return _client


class RateLimiter:
    """``acquire()`` blocks until the bucket grants the tokens or ``max_wait_s`` would pass."""

    def __init__(self, name: str, *, per_second: float, burst: float | None = None):
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.key = f"ratelimit:{name}"
        self.rate = float(per_second)
        self.capacity = float(burst if burst is not None else max(1.0, per_second))
        client = _redis()
        self._script = client.register_script(_LUA) if client is not None else None

    def try_acquire(self, tokens: float = 1) -> float:
        """Take the tokens now and return 0, or return the seconds to wait (nothing taken)."""
        if self._script is not None:
            wait_ms = self._script(keys=[self.key], args=[self.rate, self.capacity, tokens])
            return int(wait_ms) / 1000
        return _local.try_take(self.key, self.rate, self.capacity, tokens)

    def acquire(self, tokens: float = 1, *, max_wait_s: float = 30.0) -> bool:
        deadline = time.monotonic() + max_wait_s
        while True:
            wait = self.try_acquire(tokens)
            if wait <= 0:
                return True
            if time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)

    def grants(self, count: int, *, max_wait_s: float = 30.0) -> Iterator[bool]:
        """For each of ``count`` requests in turn: True if it may be sent now, False if its
        token did not come within ``max_wait_s``.

        Tokens are taken a block at a time (a tenth of a second's worth at most, and no more
        than are still to be sent), so a poll of many batches makes a few round trips to the
        bucket rather than one per request. A request still goes only with a token taken
        before it; taking a block early can at most bring a tenth of a second's requests
        forward, and at ten requests a second or less every token is taken alone.
        """
        held = 0
        for remaining in range(count, 0, -1):
            if held == 0:
                block = max(1, min(remaining, int(self.rate // 10), int(self.capacity)))
                if not self.acquire(block, max_wait_s=max_wait_s):
                    yield False
                    continue
                held = block
            held -= 1
            yield True
