"""The rate limiter: one interface, two backends (in process, and Redis shared by every process and replica).

How a deployment is limited (SPEC §4): at arrival a request's estimated cost is checked against

* the tokens of the last minute (no 60 s span admits more than the TPM),
* the requests of the last minute (no 60 s span admits more than the RPM), and
* the requests of a short window of ``request_window_s`` (10 s: RPM/6, 1 s: RPM/60), as AOAI does.

Each window is a ring of fixed buckets (1 s for the minute, window/50 for the short window) with a running
total: admitting a request touches the current bucket and the totals, and moving time forward empties the
buckets that fell out (each bucket once), so the work per request is O(1) whatever the traffic -- never a
scan of the requests in the window. A window counts the current bucket in full plus all buckets of the
span before it, so it can only err on the strict side: no span of the window's length ever admits more
than the limit (a steady overload gets about 60/61 of the TPM through).

Both backends run the same algorithm: ``MemoryBackend`` here, ``RedisBackend`` as one Lua script
(limits_app/redis_backend.py), so one round trip per request and atomic across processes.
``FailoverLimiter`` uses Redis and falls back to the in-process backend while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import redis.exceptions

from limits_app.config import LimitProfileConfig

if TYPE_CHECKING:
    from limits_app.redis_backend import RedisBackend

logger = logging.getLogger(__name__)

MINUTE_BUCKET_MS = 1_000
MINUTE_SLOTS = 61  # the current second and the 60 before it
WINDOW_BUCKETS = 50
WINDOW_SLOTS = WINDOW_BUCKETS + 1
# Whatever cannot fit in an empty minute waits a whole minute (and, realistically, never gets in).
NEVER_MS = 60_000

# What "Redis is unreachable" looks like (timeouts included); a script error is a RedisError too.
REDIS_ERRORS = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)

REASON_TOKENS = "tokens"
REASON_REQUESTS = "requests"


@dataclass(frozen=True, slots=True)
class LimitRule:
    """What the limiter enforces for a profile, in its own units."""

    tokens_per_minute: int
    requests_per_minute: int
    window_requests: int  # requests admitted per short window
    window_s: int
    window_bucket_ms: int


@functools.lru_cache(maxsize=1024)
def rule_for(profile: LimitProfileConfig) -> LimitRule:
    """The rule of a profile (cached: profiles are frozen, so this is a dict lookup per request)."""
    window_s = profile.request_window_s if profile.request_window_s in (1, 10) else 10
    rpm = max(1, profile.requests_per_minute)
    return LimitRule(
        tokens_per_minute=max(1, profile.tokens_per_minute),
        requests_per_minute=rpm,
        window_requests=max(1, rpm * window_s // 60),
        window_s=window_s,
        window_bucket_ms=window_s * 1000 // WINDOW_BUCKETS,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request: admitted or not, the usage it leaves, and how long to wait if refused."""

    admitted: bool
    rule: LimitRule
    tokens_used: int  # in the last minute, this request included when admitted
    requests_used: int  # in the last minute
    window_requests_used: int  # in the short window
    retry_after_ms: int = 0
    reason: str | None = None  # REASON_TOKENS or REASON_REQUESTS when refused

    @property
    def remaining_tokens(self) -> int:
        return max(0, self.rule.tokens_per_minute - self.tokens_used)

    @property
    def remaining_requests(self) -> int:
        return max(0, self.rule.requests_per_minute - self.requests_used)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """AOAI's four headers: limits and what is left of them over the minute."""
        rule = self.rule
        return [
            (b"x-ratelimit-limit-requests", str(rule.requests_per_minute).encode()),
            (b"x-ratelimit-limit-tokens", str(rule.tokens_per_minute).encode()),
            (b"x-ratelimit-remaining-requests", str(self.remaining_requests).encode()),
            (b"x-ratelimit-remaining-tokens", str(self.remaining_tokens).encode()),
        ]


def decide(
    rule: LimitRule,
    cost: int,
    tokens_used: int,
    requests_used: int,
    window_used: int,
) -> tuple[bool, bool, bool]:
    """Which limits a request of ``cost`` would cross: (tokens, minute requests, window requests)."""
    return (
        tokens_used + cost > rule.tokens_per_minute,
        requests_used + 1 > rule.requests_per_minute,
        window_used + 1 > rule.window_requests,
    )


class Limiter(Protocol):
    """What the pipeline and the services use; ``now_ms`` is for tests (None: the backend's clock)."""

    name: str

    async def admit(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None) -> Decision: ...

    async def peek(self, key: str, rule: LimitRule, now_ms: int | None = None) -> Decision: ...

    async def reset(self, key: str) -> None: ...


# --- in process ---------------------------------------------------------------------------------------------


class _Ring:
    """Fixed buckets with a running total; ``index`` is the bucket number of the newest one."""

    __slots__ = ("buckets", "index", "total")

    def __init__(self, slots: int, index: int) -> None:
        self.buckets = [0] * slots
        self.index = index
        self.total = 0

    def advance(self, index: int) -> int:
        """Move to bucket ``index`` (never backwards), emptying what fell out; returns the current index."""
        gap = index - self.index
        if gap <= 0:
            return self.index
        slots = len(self.buckets)
        if gap >= slots:
            self.buckets = [0] * slots
            self.total = 0
        else:
            for i in range(self.index + 1, index + 1):
                slot = i % slots
                self.total -= self.buckets[slot]
                self.buckets[slot] = 0
        self.index = index
        return index

    def add(self, amount: int) -> None:
        self.buckets[self.index % len(self.buckets)] += amount
        self.total += amount

    def wait_ms(self, need: int, bucket_ms: int, now_ms: int) -> int:
        """How long until at least ``need`` leaves the window (oldest buckets leave first)."""
        slots = len(self.buckets)
        freed = 0
        for i in range(self.index - slots + 1, self.index + 1):
            freed += self.buckets[i % slots]
            if freed >= need:
                return max(1, (i + slots) * bucket_ms - now_ms)
        return slots * bucket_ms


class _State:
    __slots__ = ("requests", "tokens", "window", "window_bucket_ms")

    def __init__(self, now_ms: int, window_bucket_ms: int) -> None:
        minute = now_ms // MINUTE_BUCKET_MS
        self.tokens = _Ring(MINUTE_SLOTS, minute)
        self.requests = _Ring(MINUTE_SLOTS, minute)
        self.window = _Ring(WINDOW_SLOTS, now_ms // window_bucket_ms)
        self.window_bucket_ms = window_bucket_ms


def retry_after(
    rule: LimitRule,
    cost: int,
    crossed: tuple[bool, bool, bool],
    waits: tuple[Callable[[], int], Callable[[], int], Callable[[], int]],
) -> tuple[int, str]:
    """The longest wait among the crossed limits, and whether it is about tokens or requests."""
    over_tokens, over_requests, over_window = crossed
    token_wait = request_wait = 0
    if over_tokens:
        token_wait = NEVER_MS if cost > rule.tokens_per_minute else waits[0]()
    if over_requests:
        request_wait = waits[1]()
    if over_window:
        request_wait = max(request_wait, waits[2]())
    if request_wait >= token_wait:
        return request_wait, REASON_REQUESTS
    return token_wait, REASON_TOKENS


class MemoryBackend:
    """The limiter for one process (the embedded default, and the fallback while Redis is away)."""

    name = "memory"

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}
        # The event loop and admin threads (read/reset) may both touch the states.
        self._lock = threading.Lock()

    @staticmethod
    def _now_ms() -> int:
        return time.monotonic_ns() // 1_000_000

    def _state(self, key: str, rule: LimitRule, now_ms: int) -> _State:
        state = self._states.get(key)
        if state is None or state.window_bucket_ms != rule.window_bucket_ms:
            fresh = _State(now_ms, rule.window_bucket_ms)
            if state is not None:  # the window length changed: keep the minute, restart the window
                fresh.tokens, fresh.requests = state.tokens, state.requests
            state = self._states[key] = fresh
        return state

    def admit_sync(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None, *, peek: bool = False
                   ) -> Decision:
        now_ms = self._now_ms() if now_ms is None else now_ms
        with self._lock:
            if peek and key not in self._states:
                return Decision(True, rule, 0, 0, 0)
            state = self._state(key, rule, now_ms)
            minute = state.tokens.advance(now_ms // MINUTE_BUCKET_MS)
            state.requests.advance(minute)
            state.window.advance(now_ms // rule.window_bucket_ms)
            tokens, requests, window = state.tokens, state.requests, state.window
            crossed = decide(rule, cost, tokens.total, requests.total, window.total)
            if peek:
                return Decision(True, rule, tokens.total, requests.total, window.total)
            if not any(crossed):
                tokens.add(cost)
                requests.add(1)
                window.add(1)
                return Decision(True, rule, tokens.total, requests.total, window.total)
            # Waits are measured against the clock the buckets use (which never moves backwards).
            minute_now = max(now_ms, minute * MINUTE_BUCKET_MS)
            window_now = max(now_ms, window.index * rule.window_bucket_ms)
            wait_ms, reason = retry_after(rule, cost, crossed, (
                lambda: tokens.wait_ms(tokens.total + cost - rule.tokens_per_minute, MINUTE_BUCKET_MS, minute_now),
                lambda: requests.wait_ms(requests.total + 1 - rule.requests_per_minute, MINUTE_BUCKET_MS, minute_now),
                lambda: window.wait_ms(window.total + 1 - rule.window_requests, rule.window_bucket_ms, window_now),
            ))
            return Decision(False, rule, tokens.total, requests.total, window.total, wait_ms, reason)

    def reset_sync(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)

    def reset_all(self) -> None:
        with self._lock:
            self._states.clear()

    async def admit(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None) -> Decision:
        return self.admit_sync(key, rule, cost, now_ms)

    async def peek(self, key: str, rule: LimitRule, now_ms: int | None = None) -> Decision:
        return self.admit_sync(key, rule, 0, now_ms, peek=True)

    async def reset(self, key: str) -> None:
        self.reset_sync(key)


# --- Redis with in-process fallback ---------------------------------------------------------------------------


class FailoverLimiter:
    """Redis while it answers; the in-process backend while it does not, probed in the background.

    Once Redis is known to be down no request waits for it: a single probe task pings it every
    ``probe_interval_s`` and switches back when it answers. Each outage is logged once, and the return.
    """

    def __init__(self, redis_backend: RedisBackend, memory: MemoryBackend, probe_interval_s: float = 5.0) -> None:
        self.redis = redis_backend
        self.memory = memory
        self.probe_interval_s = probe_interval_s
        self.redis_down = False
        self._probe: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return f"redis (down: using {self.memory.name})" if self.redis_down else "redis"

    def _mark_down(self, error: BaseException) -> None:
        if self.redis_down:
            return
        self.redis_down = True
        logger.warning(
            "rate limiter: Redis is unreachable (%s: %s); limiting in process until it answers again "
            "(probing every %g s)", type(error).__name__, error, self.probe_interval_s,
        )
        self._probe = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            try:
                await self.redis.ping()
            except Exception:  # still down (any failure of the probe means the same)
                continue
            self.redis_down = False
            # State counted in process during the outage is not carried over: Redis is the shared truth.
            self.memory.reset_all()
            logger.warning("rate limiter: Redis answers again; limits are shared through it once more")
            return

    async def admit(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None) -> Decision:
        if not self.redis_down:
            try:
                return await self.redis.admit(key, rule, cost, now_ms)
            except REDIS_ERRORS as error:
                self._mark_down(error)
        return await self.memory.admit(key, rule, cost, now_ms)

    async def peek(self, key: str, rule: LimitRule, now_ms: int | None = None) -> Decision:
        if not self.redis_down:
            try:
                return await self.redis.peek(key, rule, now_ms)
            except REDIS_ERRORS as error:
                self._mark_down(error)
        return await self.memory.peek(key, rule, now_ms)

    async def reset(self, key: str) -> None:
        await self.memory.reset(key)
        if not self.redis_down:
            try:
                await self.redis.reset(key)
            except REDIS_ERRORS as error:
                self._mark_down(error)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
        await self.redis.close()


# --- the process's limiter ----------------------------------------------------------------------------------

_limiter: MemoryBackend | FailoverLimiter | None = None


def get_limiter() -> MemoryBackend | FailoverLimiter:
    """The process's limiter: Redis (with fallback) when REDIS_URL is set, in process otherwise."""
    global _limiter
    if _limiter is None:
        from django.conf import settings

        if settings.REDIS_URL:
            from limits_app.redis_backend import RedisBackend

            shared = RedisBackend(
                settings.REDIS_URL,
                key_prefix=settings.SIMULATOR_LIMITER_KEY_PREFIX,
                timeout_s=settings.SIMULATOR_LIMITER_REDIS_TIMEOUT_SECONDS,
            )
            _limiter = FailoverLimiter(shared, MemoryBackend(), settings.SIMULATOR_LIMITER_PROBE_SECONDS)
        else:
            _limiter = MemoryBackend()
    return _limiter


def set_limiter(limiter: MemoryBackend | FailoverLimiter | None) -> None:
    """Replace the process's limiter (tests; None: rebuild from settings on next use)."""
    global _limiter
    _limiter = limiter

