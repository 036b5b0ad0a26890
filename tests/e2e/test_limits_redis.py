"""Limits shared through Redis by several worker processes, and what happens when Redis is not there.

Redis is shared with whoever else runs tests on this machine, so every server here limits under a key prefix
of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import AZURE_API_VERSION
from tests.support.server import SimulatorServer, free_port

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
BODY = {"messages": [{"role": "user", "content": "What is 4200 + 42?"}], "max_tokens": 5}

CONFIG = """\
limit_profiles:
  - {name: ten-per-window, tokens_per_minute: 1000000, requests_per_minute: 60, request_window_s: 10}
  - {name: tokens-1k, tokens_per_minute: 1000, requests_per_minute: 6000, request_window_s: 1}
deployments:
  - {name: shared-quota, model: gpt-4o-mini, limit_profile: ten-per-window}
  - {name: small-quota, model: gpt-4o-mini, limit_profile: tokens-1k}
"""


def _redis_up() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError):
        return False
    return True


def _config(tmp_path: Path) -> str:
    path = tmp_path / "limits.yaml"
    path.write_text(CONFIG)
    return str(path)


def _url(server: SimulatorServer, deployment: str) -> str:
    return f"{server.base_url}/openai/deployments/{deployment}/chat/completions?api-version={AZURE_API_VERSION}"


def _post_fresh_connection(url: str, api_key: str) -> httpx.Response:
    # A new connection per request, so the kernel hands requests to either worker.
    return httpx.post(url, json=BODY, headers={"api-key": api_key, "connection": "close"}, timeout=30)


@pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")
def test_two_worker_processes_admit_the_quota_once_not_twice(tmp_path: Path, api_key: str) -> None:
    prefix = f"test-e2e-shared-{uuid.uuid4().hex}"
    env = {"REDIS_URL": REDIS_URL, "SIMULATOR_CONFIG": _config(tmp_path), "SIMULATOR_LIMITER_KEY_PREFIX": prefix}
    with SimulatorServer(api_key=api_key, workers=2, extra_env=env) as server:
        url = _url(server, "shared-quota")
        # Warm both workers (snapshot, tokenizer) on another deployment, so the burst lands inside one window.
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: _post_fresh_connection(_url(server, "small-quota"), api_key), range(16)))
        with ThreadPoolExecutor(max_workers=8) as pool:  # 8 clients, 40 requests in a burst
            responses = list(pool.map(lambda _: _post_fresh_connection(url, api_key), range(40)))
        assert len(server.process_ids()) >= 3  # uvicorn's supervisor and its two workers (and helpers)

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 30  # RPM 60: 10 per 10 s, for both workers
    # One counter for both processes: every admitted request saw a different count.
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(50, 60))
    refused = next(r for r in responses if r.status_code == 429)
    assert "exceeded call rate limit" in refused.json()["error"]["message"]
    state = redis.Redis.from_url(REDIS_URL).hgetall(f"{prefix}:shared-quota")
    assert int(state[b"rs"]) == 10


def test_with_redis_unreachable_the_simulator_keeps_answering_and_limiting(tmp_path: Path, api_key: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {"REDIS_URL": dead, "SIMULATOR_CONFIG": _config(tmp_path), "SIMULATOR_LIMITER_PROBE_SECONDS": "0.5"}
    with SimulatorServer(api_key=api_key, extra_env=env) as server, httpx.Client(
        headers={"api-key": api_key}, timeout=30
    ) as http:
        url = _url(server, "small-quota")
        first = [http.post(url, json={**BODY, "max_tokens": 300}) for _ in range(4)]
        time.sleep(1.2)  # a couple of probes go by, and fail
        log = server.log_text()

    assert [r.status_code for r in first] == [200, 200, 200, 429]  # 3 x 316 tokens of 1000, in process
    assert first[0].headers["x-ratelimit-remaining-tokens"] == str(1000 - 316)
    assert "exceeded token rate limit" in first[3].json()["error"]["message"]
    assert log.count("Redis is unreachable") == 1 and "Traceback" not in log


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_redis_stopped_mid_run_then_back(tmp_path: Path, api_key: str) -> None:
    port = free_port()
    url_env = f"redis://127.0.0.1:{port}/0"
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]

    def start_redis() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url_env).ping()
                return process
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)

    own_redis = start_redis()
    env = {"REDIS_URL": url_env, "SIMULATOR_CONFIG": _config(tmp_path), "SIMULATOR_LIMITER_PROBE_SECONDS": "0.3"}
    try:
        with SimulatorServer(api_key=api_key, extra_env=env) as server, httpx.Client(
            headers={"api-key": api_key}, timeout=30
        ) as http:
            url = _url(server, "shared-quota")
            before = [http.post(url, json=BODY).status_code for _ in range(3)]
            assert int(redis.Redis.from_url(url_env).hget("simulator:limits:shared-quota", "rs")) == 3

            own_redis.terminate()
            own_redis.wait(timeout=10)
            during = [http.post(url, json=BODY) for _ in range(3)]

            own_redis = start_redis()
            deadline = time.monotonic() + 20  # the next probe finds it (0.3 s; longer on a busy machine)
            while "Redis answers again" not in server.log_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            after = [http.post(url, json=BODY).status_code for _ in range(2)]
            back_in_redis = int(redis.Redis.from_url(url_env).hget("simulator:limits:shared-quota", "rs"))
            log = server.log_text()
    finally:
        own_redis.terminate()
        own_redis.wait(timeout=10)

    assert before == [200, 200, 200]
    assert [r.status_code for r in during] == [200, 200, 200]  # served, limited in process meanwhile
    assert during[-1].headers["x-ratelimit-remaining-requests"] == "57"
    assert after == [200, 200] and back_in_redis == 2  # counting in Redis again (a fresh count after restart)
    assert log.count("Redis is unreachable") == 1 and log.count("Redis answers again") == 1
