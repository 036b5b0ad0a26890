"""`/metrics` after a known mix of requests (ok, 429 by reason, injected fault, replay miss) served by two
worker processes: every count in the scrape equals what the clients saw, whichever process served what and
whichever process answers the scrape. Also the request log: one JSON line per request, no key, no prompt.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import SimulatorServer

API_VERSION = "2024-10-21"
PROMPT_MARKER = "zebra-quartz-prompt-marker"
OK, TOKENS, REQUESTS, FAULTY, REPLAY = "m-ok", "m-tokens", "m-requests", "m-faulty", "m-replay"
OURS = (OK, TOKENS, REQUESTS, FAULTY, REPLAY)

CONFIG = """
limit_profiles:
  - name: m-one-request-per-10s      # RPM 6: a 10 s window admits one request
    tokens_per_minute: 1000000
    requests_per_minute: 6
  - name: m-tiny-tpm                 # one request of max_tokens 600 fits, the next does not
    tokens_per_minute: 1000
    requests_per_minute: 600
fault_profiles:
  - name: m-always-500
    error_rate: 1.0
    kinds: {"500": 1}
recording_sets:
  - name: m-empty
deployments:
  - {name: m-ok, model: gpt-4o-mini}
  - {name: m-requests, model: gpt-4o-mini, limit_profile: m-one-request-per-10s}
  - {name: m-tokens, model: gpt-4o-mini, limit_profile: m-tiny-tpm}
  - {name: m-faulty, model: gpt-4o-mini, fault_profile: m-always-500}
  - {name: m-replay, model: gpt-4o-mini, mode: replay, recording_set: m-empty}
"""


@dataclass
class Observed:
    """What the clients saw: the ground truth the scrape must match exactly."""

    statuses: collections.Counter = field(default_factory=collections.Counter)  # (deployment, status)
    rate_limited: collections.Counter = field(default_factory=collections.Counter)  # (deployment, reason)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, deployment: str, response: httpx.Response, stream: bool) -> None:
        self.statuses[deployment, str(response.status_code)] += 1
        if response.status_code == 429:
            message = response.json()["error"]["message"]
            reason = "tokens" if "token rate limit" in message else "requests"
            self.rate_limited[deployment, reason] += 1
        if response.status_code == 200:
            usage = _usage(response, stream)
            self.prompt_tokens += usage["prompt_tokens"]
            self.completion_tokens += usage["completion_tokens"]

    def total(self, deployment: str) -> int:
        return sum(count for (name, _), count in self.statuses.items() if name == deployment)


def _usage(response: httpx.Response, stream: bool) -> dict:
    if not stream:
        return response.json()["usage"]
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return json.loads(events[-2])["usage"]


def _chat(base_url: str, api_key: str, deployment: str, *, stream: bool = False, max_tokens: int = 8) -> httpx.Response:
    body: dict = {"messages": [{"role": "user", "content": f"Say hi {PROMPT_MARKER}"}], "max_tokens": max_tokens}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    # A new connection per request, so both worker processes accept some.
    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        return client.post(
            f"{base_url}/openai/deployments/{deployment}/chat/completions",
            params={"api-version": API_VERSION}, headers={"api-key": api_key}, json=body,
        )


def _request_lines(server: SimulatorServer, deployments: tuple[str, ...] = (), at_least: int = 0) -> list[dict]:
    """The request log lines (of these deployments); each is written just after its answer is sent, so wait
    a moment for the last ones."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith('{"event":"request"')]
        if deployments:
            lines = [line for line in lines if line["deployment"] in deployments]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def scrape(base_url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    config = Path(tmp_path_factory.mktemp("metrics")) / "simulator.yaml"
    config.write_text(CONFIG)
    env = {"SIMULATOR_CONFIG": str(config), "SIMULATOR_METRICS_FLUSH_SECONDS": "0.2"}
    with SimulatorServer(workers=2, extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(server: SimulatorServer) -> tuple[Observed, dict]:
    """Send the mix, concurrently and on fresh connections, until both workers have served requests."""
    observed = Observed()
    base, key = server.base_url, server.api_key
    plan = [(OK, False)] * 12 + [(OK, True)] * 4 + [(REQUESTS, False)] * 4 + [(FAULTY, False)] * 3
    plan += [(REPLAY, False)] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(name, stream, pool.submit(_chat, base, key, name, stream=stream)) for name, stream in plan]
        for name, stream, future in futures:
            observed.add(name, future.result(), stream)
    for _ in range(3):  # one request of max_tokens 600 fits the 1000 TPM; later ones do not
        observed.add(TOKENS, _chat(base, key, TOKENS, max_tokens=600), False)
    for _ in range(10):  # the kernel spreads connections over the workers; make sure both served some
        if len({line["pid"] for line in _request_lines(server)}) >= 2:
            break
        with ThreadPoolExecutor(max_workers=8) as pool:
            for response in pool.map(lambda _: _chat(base, key, OK), range(8)):
                observed.add(OK, response, False)
    expected_total = sum(observed.statuses.values())
    deadline = time.monotonic() + 15
    while True:  # other processes move their counts into the shared files every 0.2 s
        samples = scrape(base)
        # A flush writes the counters and the histograms one after the other: wait for both.
        seen = min(sum(v for (name, labels), v in samples.items() if name == metric
                       and dict(labels)["deployment"] in OURS)
                   for metric in ("simulator_requests_total", "simulator_request_duration_seconds_count"))
        if seen >= expected_total or time.monotonic() > deadline:
            return observed, samples
        time.sleep(0.2)


def test_two_worker_processes_served_the_mix(server: SimulatorServer, traffic: tuple[Observed, dict]) -> None:
    _, samples = traffic
    pids = {line["pid"] for line in _request_lines(server)}
    assert len(pids) >= 2, f"all requests went to one worker: {pids}"
    live = {dict(labels)["pid"] for (name, labels) in samples if name == "simulator_process_resident_memory_bytes"}
    assert {str(pid) for pid in pids} <= live


def test_requests_by_deployment_status_and_mode_are_exact(traffic: tuple[Observed, dict]) -> None:
    observed, samples = traffic
    counted = collections.Counter()
    for (name, labels), count in samples.items():
        labels = dict(labels)
        if name == "simulator_requests_total" and labels["deployment"] in OURS:
            assert labels["operation"] == "chat"
            expected_mode = "replay" if labels["deployment"] == REPLAY else "generate"
            assert labels["mode"] == expected_mode
            counted[labels["deployment"], labels["status"]] += int(count)
    assert counted == observed.statuses
    assert observed.statuses[OK, "200"] >= 16


def test_tokens_and_latency_histograms_are_exact(traffic: tuple[Observed, dict]) -> None:
    observed, samples = traffic
    ok_labels = {"deployment": OK, "operation": "chat"}
    assert observed.prompt_tokens > 0 and observed.completion_tokens > 0
    served = {name: observed.statuses[name, "200"] for name in OURS}
    prompt = sum(value(samples, "simulator_prompt_tokens_total", deployment=name, operation="chat") for name in OURS)
    completion = sum(value(samples, "simulator_completion_tokens_total", deployment=name, operation="chat")
                     for name in OURS)
    assert prompt == observed.prompt_tokens
    assert completion == observed.completion_tokens
    for name in OURS:
        total = observed.total(name)
        labels = {"deployment": name, "operation": "chat"}
        assert value(samples, "simulator_request_duration_seconds_count", **labels) == total, name
        assert value(samples, "simulator_request_duration_seconds_bucket", **labels, le="+Inf") == total, name
        assert value(samples, "simulator_time_to_first_byte_seconds_count", **labels) == total, name
    buckets = sorted(
        (float(dict(labels)["le"]), count) for (name, labels), count in samples.items()
        if name == "simulator_request_duration_seconds_bucket" and dict(labels).items() >= ok_labels.items()
    )
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
    assert buckets[0][0] == 0.001 and buckets[-1] == (float("inf"), observed.total(OK))
    assert served[OK] == observed.total(OK)
    assert value(samples, "simulator_requests_in_flight") == 0


def test_rate_limited_by_reason(traffic: tuple[Observed, dict]) -> None:
    observed, samples = traffic
    if not observed.rate_limited:
        pytest.skip("the rate limiter has not landed: no request was answered 429")
    assert observed.rate_limited[REQUESTS, "requests"] >= 1  # one worker admits one per 10 s, the others 429
    assert observed.rate_limited[TOKENS, "tokens"] >= 1
    counted = collections.Counter({
        (dict(labels)["deployment"], dict(labels)["reason"]): int(count)
        for (name, labels), count in samples.items()
        if name == "simulator_rate_limited_total" and dict(labels)["deployment"] in OURS
    })
    assert counted == observed.rate_limited


def test_faults_by_kind(traffic: tuple[Observed, dict]) -> None:
    observed, samples = traffic
    if observed.statuses[FAULTY, "500"] == 0:
        pytest.skip("fault injection has not landed: the always-500 fault profile answered no 500")
    assert observed.statuses[FAULTY, "500"] == 3
    assert value(samples, "simulator_faults_injected_total", deployment=FAULTY, kind="500") == 3


def test_replay_misses(traffic: tuple[Observed, dict]) -> None:
    observed, samples = traffic
    if observed.statuses[REPLAY, "404"] == 0:
        pytest.skip("replay mode has not landed: the empty recording set answered no 404 miss")
    assert observed.statuses[REPLAY, "404"] == 2
    assert value(samples, "simulator_replay_lookups_total", deployment=REPLAY, result="miss") == 2
    assert value(samples, "simulator_replay_lookups_total", deployment=REPLAY, result="hit") == 0


def test_one_request_log_line_per_request_without_key_or_prompt(
    server: SimulatorServer, traffic: tuple[Observed, dict]
) -> None:
    observed, _ = traffic
    lines = _request_lines(server, OURS, at_least=sum(observed.statuses.values()))
    assert len(lines) == sum(observed.statuses.values())
    assert collections.Counter((line["deployment"], str(line["status"])) for line in lines) == observed.statuses
    for line in lines:
        assert {"request_id", "deployment", "operation", "status", "mode", "prompt_tokens", "completion_tokens",
                "ttfb_ms", "total_ms", "stream", "pid", "ts"} <= set(line)
        assert len(line["request_id"]) == 36
        assert line["total_ms"] >= line["ttfb_ms"] >= 0
    assert sum(line["prompt_tokens"] for line in lines if line["status"] == 200) == observed.prompt_tokens
    log = server.log_text()
    assert server.api_key not in log
    assert PROMPT_MARKER not in log


def test_prompts_are_logged_only_when_asked() -> None:
    with SimulatorServer(extra_env={"SIMULATOR_LOG_PROMPTS": "true"}) as server:
        response = _chat(server.base_url, server.api_key, "gpt-4o-mini")
        assert response.status_code == 200
        (line,) = _request_lines(server, ("gpt-4o-mini",), at_least=1)
        assert line["prompt"]["messages"][0]["content"] == f"Say hi {PROMPT_MARKER}"
        assert server.api_key not in server.log_text()
