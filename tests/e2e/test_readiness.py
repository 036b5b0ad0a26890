"""`/healthz` and `/readyz` against real outages: a Redis we stop and start, and PostgreSQL behind a TCP passage
we cut and restore (the shared services themselves are never touched)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.outage import TcpPassage, ThrowawayRedis
from tests.support.server import SimulatorServer, _FreshPostgresDatabase, is_postgres_url

FAST_PROBES = {"SIMULATOR_READY_TIMEOUT_SECONDS": "1"}
CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"


def wait_for_readyz(base_url: str, status: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{base_url}/readyz", timeout=10)
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/json"
            return answer.json()
        time.sleep(0.2)


def test_healthz_is_liveness_only_and_probes_reject_other_methods(tmp_path: Path) -> None:
    with SimulatorServer() as server:
        answer = httpx.get(f"{server.base_url}/healthz")
        assert (answer.status_code, answer.text) == (200, "ok\n")
        assert httpx.post(f"{server.base_url}/readyz").status_code == 405
        expected = {"database": "ok", **({"redis": "ok"} if os.environ.get("REDIS_URL") else {})}
        assert wait_for_readyz(server.base_url, 200) == {"status": "ready", "checks": expected}


def test_readyz_follows_redis_going_away_and_coming_back(tmp_path: Path) -> None:
    try:
        redis = ThrowawayRedis(tmp_path)
    except FileNotFoundError:
        pytest.skip("redis-server is not installed here")
    with redis, SimulatorServer(extra_env={"REDIS_URL": redis.url, **FAST_PROBES}) as server:
        body = wait_for_readyz(server.base_url, 200)
        assert body["checks"] == {"database": "ok", "redis": "ok"}

        redis.stop()
        body = wait_for_readyz(server.base_url, 503)
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("unreachable")
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200  # alive, just not ready

        redis.start()
        body = wait_for_readyz(server.base_url, 200)
        assert body["checks"]["redis"] == "ok"


def test_readyz_follows_postgresql_going_away_and_coming_back() -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if not is_postgres_url(database_url):
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI's second pass does)")
    database = _FreshPostgresDatabase(database_url)
    database.create()
    parts = urlsplit(database.url)
    try:
        with TcpPassage(parts.hostname or "127.0.0.1", parts.port or 5432) as passage:
            netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
            proxied = urlunsplit((parts.scheme, f"{netloc}127.0.0.1:{passage.port}", parts.path, "", ""))
            with SimulatorServer(extra_env={"DATABASE_URL": proxied, **FAST_PROBES}) as server:
                headers = {"api-key": server.api_key}
                chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
                assert wait_for_readyz(server.base_url, 200)["checks"]["database"] == "ok"
                assert httpx.post(server.base_url + CHAT, headers=headers, json=chat, timeout=30).status_code == 200

                passage.cut()
                body = wait_for_readyz(server.base_url, 503)
                assert body["checks"]["database"].startswith("unreachable")
                # The data plane answers from its in-process configuration snapshot meanwhile.
                assert httpx.post(server.base_url + CHAT, headers=headers, json=chat, timeout=30).status_code == 200

                passage.restore()
                assert wait_for_readyz(server.base_url, 200)["checks"]["database"] == "ok"
    finally:
        database.drop()
