"""The limiter's algorithm, run on both backends with a controlled clock: the in-process one and the Redis Lua
script must make the same decisions, and neither may ever let a span of a window admit more than its limit."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limits_app.config import LimitProfileConfig
from limits_app.limiter import (
    MINUTE_SLOTS,
    REASON_REQUESTS,
    REASON_TOKENS,
    WINDOW_SLOTS,
    FailoverLimiter,
    LimitRule,
    MemoryBackend,
    rule_for,
)
from limits_app.redis_backend import RedisBackend

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000_000  # a whole second, in ms


def redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError):
        return False
    return True


needs_redis = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")


def profile(tpm: int = 1000, rpm: int | None = 60, window: int = 10, name: str = "p") -> LimitProfileConfig:
    return LimitProfileConfig(name, tpm, rpm if rpm is not None else max(1, tpm * 6 // 1000), window, 16, "reject", 0)


class RedisSync:
    """RedisBackend's synchronous path (the same Lua script as the async one), under a unique key prefix."""

    def __init__(self) -> None:
        self.prefix = f"test-limiter-{uuid.uuid4().hex}"
        self.backend = RedisBackend(REDIS_URL, key_prefix=self.prefix)
        self.client = redis.Redis.from_url(REDIS_URL)

    def admit_sync(self, key: str, rule: LimitRule, cost: int, now_ms: int | None = None, *, peek: bool = False):
        if peek:
            return self.backend.peek_sync(key, rule, now_ms)
        return self.backend.admit_sync(key, rule, cost, now_ms)

    def reset_sync(self, key: str) -> None:
        self.backend.reset_sync(key)

    def cleanup(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}:*"):
            self.client.delete(key)


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[MemoryBackend | RedisSync]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    shared = RedisSync()
    yield shared
    shared.cleanup()


# --- the rule ---------------------------------------------------------------------------------------------


def test_rule_splits_rpm_over_the_request_window() -> None:
    assert rule_for(profile(100_000, 600, 10)).window_requests == 100  # RPM/6 per 10 s
    assert rule_for(profile(100_000, 600, 1)).window_requests == 10  # RPM/60 per 1 s
    assert rule_for(profile(1000, 6, 1)).window_requests == 1  # never less than one
    assert rule_for(profile(100_000, 600, 10)).window_bucket_ms == 200
    assert rule_for(profile(100_000, 600, 1)).window_bucket_ms == 20


# --- decisions, on both backends --------------------------------------------------------------------------


def test_tokens_are_admitted_up_to_the_tpm_and_the_next_waits_for_the_oldest_to_leave(backend) -> None:
    rule = rule_for(profile(tpm=1000, rpm=600))
    decisions = [backend.admit_sync("d", rule, 300, T0 + i * 1000) for i in range(3)]
    assert [d.admitted for d in decisions] == [True, True, True]
    assert [d.remaining_tokens for d in decisions] == [700, 400, 100]
    refused = backend.admit_sync("d", rule, 300, T0 + 5_500)
    assert not refused.admitted and refused.reason == REASON_TOKENS
    assert refused.tokens_used == 900 and refused.remaining_tokens == 100
    # 200 must leave: the first request's second leaves the window at T0 + 61 s.
    assert refused.retry_after_ms == 61_000 - 5_500
    assert not backend.admit_sync("d", rule, 300, T0 + 60_999).admitted
    assert backend.admit_sync("d", rule, 300, T0 + 61_000).admitted


def test_a_small_request_still_fits_under_the_tpm(backend) -> None:
    rule = rule_for(profile(tpm=1000, rpm=600))
    assert backend.admit_sync("d", rule, 950, T0).admitted
    assert not backend.admit_sync("d", rule, 51, T0 + 10).admitted
    assert backend.admit_sync("d", rule, 50, T0 + 20).admitted


def test_the_request_window_admits_rpm_over_six_per_ten_seconds(backend) -> None:
    rule = rule_for(profile(tpm=1_000_000, rpm=60, window=10))
    admitted = [backend.admit_sync("d", rule, 1, T0 + i * 100).admitted for i in range(10)]
    assert all(admitted)
    refused = backend.admit_sync("d", rule, 1, T0 + 1_000)
    assert not refused.admitted and refused.reason == REASON_REQUESTS
    assert refused.remaining_requests == 50  # the headers count the minute, as AOAI's do
    # The first request's 200 ms bucket leaves after 51 buckets: T0 + 10.2 s.
    assert refused.retry_after_ms == 10_200 - 1_000
    assert not backend.admit_sync("d", rule, 1, T0 + 10_199).admitted
    assert backend.admit_sync("d", rule, 1, T0 + 10_200).admitted


def test_a_one_second_window_admits_rpm_over_sixty(backend) -> None:
    rule = rule_for(profile(tpm=1_000_000, rpm=120, window=1))
    assert backend.admit_sync("d", rule, 1, T0).admitted
    assert backend.admit_sync("d", rule, 1, T0 + 5).admitted
    refused = backend.admit_sync("d", rule, 1, T0 + 500)
    assert not refused.admitted and refused.reason == REASON_REQUESTS
    assert refused.retry_after_ms == 1_020 - 500  # 20 ms buckets: T0's leaves at T0 + 1.02 s
    assert backend.admit_sync("d", rule, 1, T0 + 1_020).admitted


def test_the_minute_never_admits_more_than_the_rpm(backend) -> None:
    rule = rule_for(profile(tpm=1_000_000, rpm=12, window=1))  # 1 per second, 12 per minute
    admitted = [backend.admit_sync("d", rule, 1, T0 + i * 1_100).admitted for i in range(13)]
    assert admitted == [True] * 12 + [False]
    refused = backend.admit_sync("d", rule, 1, T0 + 14_300)
    assert refused.reason == REASON_REQUESTS and refused.remaining_requests == 0
    assert refused.retry_after_ms == 61_000 - 14_300


def test_a_request_larger_than_the_tpm_never_fits(backend) -> None:
    rule = rule_for(profile(tpm=1000))
    refused = backend.admit_sync("d", rule, 1001, T0)
    assert not refused.admitted and refused.reason == REASON_TOKENS and refused.retry_after_ms == 60_000


def test_peek_consumes_nothing_and_reset_forgets(backend) -> None:
    rule = rule_for(profile(tpm=1000))
    assert backend.admit_sync("d", rule, 0, T0, peek=True).tokens_used == 0
    backend.admit_sync("d", rule, 400, T0)
    for _ in range(3):
        seen = backend.admit_sync("d", rule, 0, T0 + 10, peek=True)
        assert (seen.tokens_used, seen.requests_used, seen.window_requests_used) == (400, 1, 1)
    backend.reset_sync("d")
    assert backend.admit_sync("d", rule, 0, T0 + 20, peek=True).tokens_used == 0
    assert backend.admit_sync("d", rule, 1000, T0 + 30).admitted


def test_deployments_have_separate_quotas(backend) -> None:
    rule = rule_for(profile(tpm=1000))
    assert backend.admit_sync("a", rule, 1000, T0).admitted
    assert not backend.admit_sync("a", rule, 1, T0).admitted
    assert backend.admit_sync("b", rule, 1000, T0).admitted


def test_after_a_quiet_minute_everything_is_forgotten(backend) -> None:
    rule = rule_for(profile(tpm=1000))
    assert backend.admit_sync("d", rule, 1000, T0).admitted
    later = backend.admit_sync("d", rule, 1000, T0 + 61_000)
    assert later.admitted and later.tokens_used == 1000 and later.requests_used == 1


def test_changing_the_request_window_keeps_the_minute(backend) -> None:
    backend.admit_sync("d", rule_for(profile(tpm=1000, window=10)), 300, T0)
    after = backend.admit_sync("d", rule_for(profile(tpm=1000, window=1)), 300, T0 + 100)
    assert after.admitted and after.tokens_used == 600 and after.window_requests_used == 1


def test_the_clock_going_back_does_not_free_anything(backend) -> None:
    rule = rule_for(profile(tpm=1000))
    assert backend.admit_sync("d", rule, 1000, T0 + 30_000).admitted
    refused = backend.admit_sync("d", rule, 1, T0)
    assert not refused.admitted and refused.retry_after_ms > 0


# --- properties: the same decisions on both backends, no span over a limit, exact waits ------------------

arrivals = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4_000), st.integers(min_value=0, max_value=400)),
    min_size=1,
    max_size=120,
)


def _clone(memory: MemoryBackend) -> MemoryBackend:
    clone = MemoryBackend()
    clone._states = copy.deepcopy(memory._states)
    return clone


def _check_spans(admitted: list[tuple[int, int]], rule: LimitRule) -> None:
    """Brute force over every span starting at an admitted request."""
    for start, _ in admitted:
        minute = [cost for t, cost in admitted if start <= t < start + 60_000]
        assert sum(minute) <= rule.tokens_per_minute
        assert len(minute) <= rule.requests_per_minute
        window = [t for t, _ in admitted if start <= t < start + rule.window_s * 1000]
        assert len(window) <= rule.window_requests


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=arrivals,
    tpm=st.integers(min_value=200, max_value=3_000),
    rpm=st.integers(min_value=6, max_value=200),
    window=st.sampled_from([1, 10]),
)
def test_backends_agree_and_no_span_exceeds_a_limit(gaps, tpm, rpm, window) -> None:
    rule = rule_for(profile(tpm=tpm, rpm=rpm, window=window))
    memory = MemoryBackend()
    shared = RedisSync() if redis_available() else None
    now = T0 + 123
    admitted: list[tuple[int, int]] = []
    try:
        for gap, cost in gaps:
            now += gap
            before = _clone(memory)
            decision = memory.admit_sync("d", rule, cost, now)
            if shared is not None:
                assert shared.admit_sync("d", rule, cost, now) == decision
            if decision.admitted:
                admitted.append((now, cost))
                assert decision.tokens_used <= tpm and decision.requests_used <= rpm
                continue
            if cost > tpm:
                continue
            # The wait is exact: one ms earlier it is still refused, at the wait it is admitted.
            early, on_time = _clone(before), _clone(before)
            assert not early.admit_sync("d", rule, cost, now + decision.retry_after_ms - 1).admitted
            assert on_time.admit_sync("d", rule, cost, now + decision.retry_after_ms).admitted
    finally:
        if shared is not None:
            shared.cleanup()
    _check_spans(admitted, rule)


@needs_redis
def test_redis_state_stays_small_whatever_the_traffic() -> None:
    shared = RedisSync()
    rule = rule_for(profile(tpm=10_000_000, rpm=1_000_000, window=1))
    try:
        for i in range(3_000):
            shared.admit_sync("d", rule, 5, T0 + i * 37)
        fields = shared.client.hlen(f"{shared.prefix}:d")
        assert fields <= 2 * MINUTE_SLOTS + WINDOW_SLOTS + 6
        assert 0 < shared.client.pttl(f"{shared.prefix}:d") <= 62_000
    finally:
        shared.cleanup()


@needs_redis
def test_the_async_path_shares_state_with_the_sync_one() -> None:
    shared = RedisSync()
    rule = rule_for(profile(tpm=1000))

    async def scenario() -> None:
        first = await shared.backend.admit("d", rule, 600)
        second = await shared.backend.admit("d", rule, 600)
        assert first.admitted and not second.admitted and second.reason == REASON_TOKENS
        assert (await shared.backend.peek("d", rule)).tokens_used == 600
        await shared.backend.close()

    try:
        asyncio.run(scenario())
        assert shared.backend.peek_sync("d", rule).tokens_used == 600
    finally:
        shared.cleanup()


# --- falling back while Redis is away ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_redis_falls_back_in_process_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisBackend(f"redis://127.0.0.1:{_free_port()}/0", timeout_s=0.5)
    limiter = FailoverLimiter(dead, MemoryBackend(), probe_interval_s=60)
    rule = rule_for(profile(tpm=1000))

    async def scenario() -> list[bool]:
        results = [(await limiter.admit("d", rule, 400)).admitted for _ in range(3)]
        assert limiter.redis_down
        await limiter.close()
        return results

    with caplog.at_level(logging.WARNING, logger="limits_app.limiter"):
        assert asyncio.run(scenario()) == [True, True, False]  # still limited, in process
    assert sum("Redis is unreachable" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_the_limiter_returns_to_redis_when_it_answers_again(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    limiter = FailoverLimiter(RedisBackend(url, timeout_s=0.5), MemoryBackend(), probe_interval_s=0.1)
    rule = rule_for(profile(tpm=1000))

    async def scenario() -> None:
        assert (await limiter.admit("d", rule, 100)).admitted  # nobody listens yet: in process
        assert limiter.redis_down
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while limiter.redis_down and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not limiter.redis_down
            decision = await limiter.admit("d", rule, 100)
            assert decision.tokens_used == 100  # a fresh count, kept in Redis from now on
            assert int(redis.Redis.from_url(url).hget("simulator:limits:d", "ts")) == 100
        finally:
            await limiter.close()
            server.terminate()
            server.wait(timeout=10)

    with caplog.at_level(logging.WARNING, logger="limits_app.limiter"):
        asyncio.run(scenario())
    messages = [record.getMessage() for record in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1 and sum("Redis answers again;" in m for m in messages) == 1


@needs_redis
def test_concurrent_requests_are_batched_and_each_decided_atomically() -> None:
    shared = RedisSync()
    rule = rule_for(profile(tpm=3_000, rpm=1_000_000, window=1))

    async def scenario() -> list:
        decisions = await asyncio.gather(*(shared.backend.admit("d", rule, 100) for _ in range(50)))
        await shared.backend.close()
        return decisions

    try:
        decisions = asyncio.run(scenario())
    finally:
        shared.cleanup()
    admitted = [d for d in decisions if d.admitted]
    assert len(admitted) == 30  # 3,000 tokens of 100 each, whatever the batching
    assert sorted(d.tokens_used for d in admitted) == list(range(100, 3_001, 100))
    assert all(d.reason == REASON_TOKENS and d.retry_after_ms > 0 for d in decisions if not d.admitted)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_a_batch_reloads_the_script_when_redis_forgot_it(tmp_path) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    backend = RedisBackend(url)
    rule = rule_for(profile(tpm=1_000_000, rpm=1_000_000))

    async def scenario() -> list:
        deadline = time.monotonic() + 10
        while True:
            try:
                await backend.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        await asyncio.gather(*(backend.admit("d", rule, 1) for _ in range(5)))
        redis.Redis.from_url(url).script_flush()  # as after a restart
        decisions = await asyncio.gather(*(backend.admit("d", rule, 1) for _ in range(5)))
        await backend.close()
        return decisions

    try:
        decisions = asyncio.run(scenario())
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert sorted(d.requests_used for d in decisions) == [6, 7, 8, 9, 10]
