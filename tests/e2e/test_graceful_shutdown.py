"""Stopping a server (SIGTERM, as `docker compose stop` does) lets in-flight requests and streams finish, up to
SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS; past that bound they are cut and the server exits anyway."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings

from tests.support.server import SimulatorServer

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
LATENCY_HEADER = "x-simulator-latency-ms"


@pytest.fixture(autouse=True)
def _needs_latency_overrides() -> None:
    if not hasattr(settings, "SIMULATOR_ALLOW_OVERRIDES"):
        pytest.skip("the x-simulator-latency-ms override has not landed: no slow request to interrupt")


def _slow_json(server: SimulatorServer, latency_ms: int) -> httpx.Response:
    return httpx.post(
        server.base_url + CHAT, timeout=60,
        headers={"api-key": server.api_key, LATENCY_HEADER: f"{latency_ms},0"},
        json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 5},
    )


def _slow_stream(server: SimulatorServer) -> list[str]:
    """20 tokens, 300 ms to the first and 150 ms between the others: about 3.2 s of stream."""
    events = []
    with httpx.stream(
        "POST", server.base_url + CHAT, timeout=60,
        headers={"api-key": server.api_key, LATENCY_HEADER: "300,150"},
        json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 20, "stream": True},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    return events


def _in_flight(server: SimulatorServer) -> float:
    for line in httpx.get(server.base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("simulator_requests_in_flight "):
            return float(line.split()[1])
    return 0.0


def _wait_in_flight(server: SimulatorServer, count: int, futures: list[Future]) -> None:
    deadline = time.monotonic() + 10
    while _in_flight(server) < count:
        assert not any(future.done() for future in futures), "a slow request finished before the stop"
        assert time.monotonic() < deadline, "the slow requests never showed up as in flight"
        time.sleep(0.05)


def test_sigterm_lets_in_flight_requests_and_streams_finish() -> None:
    env = {"SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS": "15", "SIMULATOR_METRICS_FLUSH_SECONDS": "0.05"}
    with SimulatorServer(workers=2, extra_env=env) as server, ThreadPoolExecutor(max_workers=2) as pool:
        _slow_json(server, 0)  # warm: the first request of a worker loads its configuration
        json_future = pool.submit(_slow_json, server, 4000)
        stream_future = pool.submit(_slow_stream, server)
        _wait_in_flight(server, 2, [json_future, stream_future])

        assert server.process is not None
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)

        answer = json_future.result(timeout=30)
        assert answer.status_code == 200
        assert answer.json()["usage"]["completion_tokens"] == 5
        events = stream_future.result(timeout=30)
        assert events[-1] == "[DONE]"
        content = [json.loads(e) for e in events[:-1] if json.loads(e).get("choices")]
        assert sum(1 for e in content if e["choices"][0]["delta"].get("content")) >= 1
        assert content[-1]["choices"][0]["finish_reason"] == "length"

        assert server.process.wait(timeout=20) == 0
        assert time.monotonic() - stopped_at < 15  # it left as soon as the work was done, not at the bound


def test_requests_past_the_bound_are_cut_and_the_server_exits() -> None:
    with SimulatorServer(extra_env={"SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS": "1",
                                    "SIMULATOR_METRICS_FLUSH_SECONDS": "0.05"}) as server, \
            ThreadPoolExecutor(max_workers=1) as pool:
        _slow_json(server, 0)
        future = pool.submit(_slow_json, server, 20_000)
        _wait_in_flight(server, 1, [future])
        assert server.process is not None
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=10)
        assert time.monotonic() - stopped_at < 10  # the 1 s bound (plus the shutdown itself), not 20 s
        with pytest.raises(httpx.HTTPError):
            future.result(timeout=10)
