"""Rate limits through the real server, driven by the official openai SDK (SPEC §4).

One server for the module, configured by a SIMULATOR_CONFIG file; each test has its own deployment so that
no test spends another's quota. With REDIS_URL in the environment the server limits through Redis (under a
key prefix of its own), otherwise in process: the tests hold for both.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import AZURE_API_VERSION
from tests.support.server import SimulatorServer

CONFIG = """\
limit_profiles:
  - {name: tokens-1k, tokens_per_minute: 1000, requests_per_minute: 600}
  - {name: calls-1s, tokens_per_minute: 100000, requests_per_minute: 60, request_window_s: 1}
  - {name: calls-2s, tokens_per_minute: 100000, requests_per_minute: 120, request_window_s: 1}
  - {name: roomy, tokens_per_minute: 100000, requests_per_minute: 600, default_max_tokens: 50}
  - name: queued
    tokens_per_minute: 100000
    requests_per_minute: 60
    request_window_s: 1
    on_limit: queue
    queue_max_wait_ms: 3000
  - name: queued-briefly
    tokens_per_minute: 100000
    requests_per_minute: 60
    request_window_s: 1
    on_limit: queue
    queue_max_wait_ms: 100
deployments:
  - {name: lim-tokens, model: gpt-4o-mini, limit_profile: tokens-1k}
  - {name: lim-tokens-v1, model: gpt-4o-mini, limit_profile: tokens-1k}
  - {name: lim-calls, model: gpt-4o-mini, limit_profile: calls-1s}
  - {name: lim-burst, model: gpt-4o-mini, limit_profile: calls-2s}
  - {name: lim-countdown, model: gpt-4o-mini, limit_profile: roomy}
  - {name: lim-stream, model: gpt-4o-mini, limit_profile: roomy}
  - {name: lim-errors, model: gpt-4o-mini, limit_profile: roomy}
  - {name: lim-embed, model: text-embedding-3-small, limit_profile: tokens-1k}
  - {name: lim-queue, model: gpt-4o-mini, limit_profile: queued}
  - {name: lim-queue-brief, model: gpt-4o-mini, limit_profile: queued-briefly}
"""

QUESTION = [{"role": "user", "content": "What is 4200 + 42?"}]  # 16 prompt tokens
PROMPT_TOKENS = 16


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[SimulatorServer]:
    config = Path(tmp_path_factory.mktemp("limits")) / "limits.yaml"
    config.write_text(CONFIG)
    env = {"SIMULATOR_CONFIG": str(config), "SIMULATOR_LIMITER_KEY_PREFIX": f"test-e2e-{uuid.uuid4().hex}"}
    with SimulatorServer(api_key=api_key, extra_env=env) as server:
        yield server


def _azure(server: SimulatorServer, max_retries: int = 0, **kwargs) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key,
                              api_version=AZURE_API_VERSION, max_retries=max_retries, **kwargs)


def _limits(response: httpx.Response | object) -> dict[str, int]:
    headers = response.headers
    return {name.removeprefix("x-ratelimit-"): int(headers[name]) for name in (
        "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
    )}


def test_remaining_headers_count_down(limited_server: SimulatorServer) -> None:
    client = _azure(limited_server)
    seen = []
    for max_tokens in (10, 20, 30):
        raw = client.chat.completions.with_raw_response.create(model="lim-countdown", messages=QUESTION,
                                                               max_tokens=max_tokens)
        assert raw.parse().usage.completion_tokens == max_tokens
        seen.append(_limits(raw))
    # Without max_tokens the profile's default (50) is what counts.
    raw = client.chat.completions.with_raw_response.create(model="lim-countdown", messages=QUESTION)
    seen.append(_limits(raw))
    assert {s["limit-requests"] for s in seen} == {600} and {s["limit-tokens"] for s in seen} == {100000}
    assert [s["remaining-requests"] for s in seen] == [599, 598, 597, 596]
    spent = [PROMPT_TOKENS + 10, PROMPT_TOKENS + 20, PROMPT_TOKENS + 30, PROMPT_TOKENS + 50]
    assert [s["remaining-tokens"] for s in seen] == [100000 - sum(spent[: i + 1]) for i in range(4)]


def test_the_request_crossing_the_token_limit_gets_aoai_token_429(limited_server: SimulatorServer) -> None:
    client = _azure(limited_server)
    cost = PROMPT_TOKENS + 300
    for _ in range(3):
        client.chat.completions.create(model="lim-tokens", messages=QUESTION, max_tokens=300)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="lim-tokens", messages=QUESTION, max_tokens=300)
    response = caught.value.response
    assert response.status_code == 429
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "429"
    assert message.startswith(
        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {AZURE_API_VERSION} "
        "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
    )
    retry_after, retry_after_ms = int(response.headers["retry-after"]), int(response.headers["retry-after-ms"])
    assert 55_000 < retry_after_ms <= 61_000  # the first request's tokens leave the minute
    assert retry_after == -(-retry_after_ms // 1000) and f"retry after {retry_after} seconds." in message
    assert _limits(response) == {"limit-requests": 600, "limit-tokens": 1000, "remaining-requests": 597,
                                 "remaining-tokens": 1000 - 3 * cost}
    # A smaller request still fits in what is left.
    raw = client.chat.completions.with_raw_response.create(model="lim-tokens", messages=QUESTION, max_tokens=10)
    assert _limits(raw)["remaining-tokens"] == 1000 - 3 * cost - (PROMPT_TOKENS + 10)


def test_the_request_crossing_the_call_limit_gets_aoai_call_429_and_succeeds_after_retry_after(
    limited_server: SimulatorServer,
) -> None:
    client = _azure(limited_server)
    client.chat.completions.create(model="lim-calls", messages=QUESTION, max_tokens=5)  # 1 per second
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="lim-calls", messages=QUESTION, max_tokens=5)
    response = caught.value.response
    message = response.json()["error"]["message"]
    assert "ChatCompletions_Create" in message and "have exceeded call rate limit" in message
    retry_after_ms = int(response.headers["retry-after-ms"])
    assert 0 < retry_after_ms <= 1_020  # the first request's 20 ms bucket leaves the 1 s window
    retry_after = int(response.headers["retry-after"])
    assert retry_after == -(-retry_after_ms // 1000)  # whole seconds, rounded up
    assert f"Please retry after {retry_after} second{'' if retry_after == 1 else 's'}." in message
    assert _limits(response)["remaining-requests"] == 59

    time.sleep(retry_after_ms / 1000)
    raw = client.chat.completions.with_raw_response.create(model="lim-calls", messages=QUESTION, max_tokens=5)
    assert raw.http_response.status_code == 200 and _limits(raw)["remaining-requests"] == 58


def test_an_sdk_with_retries_gets_a_burst_through_the_limit(limited_server: SimulatorServer) -> None:
    statuses: list[int] = []
    http_client = httpx.Client(event_hooks={"response": [lambda response: statuses.append(response.status_code)]})
    client = _azure(limited_server, max_retries=5, http_client=http_client)

    def ask(_: int) -> int:
        return client.chat.completions.create(model="lim-burst", messages=QUESTION, max_tokens=5).usage.total_tokens

    # 2 admitted per second: 4 of the 6 must wait their turn. Every wake-up admits at least one of the waiters,
    # so no client needs more than 4 retries.
    with ThreadPoolExecutor(max_workers=6) as pool:
        totals = list(pool.map(ask, range(6)))
    assert totals == [PROMPT_TOKENS + 5] * 6
    assert statuses.count(200) == 6 and statuses.count(429) >= 4  # it did hit the limit, and got through


def test_openai_surface_gets_openai_429(limited_server: SimulatorServer) -> None:
    client = openai.OpenAI(base_url=f"{limited_server.base_url}/v1", api_key=limited_server.api_key, max_retries=0)
    client.chat.completions.create(model="lim-tokens-v1", messages=QUESTION, max_tokens=900)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="lim-tokens-v1", messages=QUESTION, max_tokens=900)
    body = caught.value.body
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "tokens"
    assert "Rate limit reached for lim-tokens-v1" in body["message"]
    assert f"Limit 1000, Used {PROMPT_TOKENS + 900}, Requested {PROMPT_TOKENS + 900}" in body["message"]


def test_streams_carry_the_headers_and_embeddings_count_their_input(limited_server: SimulatorServer) -> None:
    client = _azure(limited_server)
    with client.chat.completions.with_streaming_response.create(
        model="lim-stream", messages=QUESTION, max_tokens=7, stream=True
    ) as stream:
        assert _limits(stream)["remaining-tokens"] == 100000 - PROMPT_TOKENS - 7
        assert sum(1 for line in stream.iter_lines() if line.startswith("data: ")) > 7

    raw = client.embeddings.with_raw_response.create(model="lim-embed", input=["hello world", "again"])
    assert raw.parse().usage.prompt_tokens == 3
    assert _limits(raw)["remaining-tokens"] == 1000 - 3


def test_errors_of_a_limited_deployment_carry_the_headers_and_cost_nothing(
    limited_server: SimulatorServer, api_key: str
) -> None:
    url = f"{limited_server.base_url}/openai/deployments/lim-errors/chat/completions?api-version={AZURE_API_VERSION}"
    with httpx.Client(headers={"api-key": api_key}) as http:
        for body in (b"{not json", b'{"messages": "nope"}'):
            response = http.post(url, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400
            assert _limits(response) == {"limit-requests": 600, "limit-tokens": 100000,
                                         "remaining-requests": 600, "remaining-tokens": 100000}
        unlimited = http.post(url.replace("lim-errors", "gpt-4o-mini"), json={"messages": QUESTION})
        assert unlimited.status_code == 200 and "x-ratelimit-limit-tokens" not in unlimited.headers


def test_queue_mode_waits_for_admission_within_its_bound(limited_server: SimulatorServer) -> None:
    client = _azure(limited_server)

    def ask(model: str) -> int:
        try:
            client.chat.completions.create(model=model, messages=QUESTION, max_tokens=5)
        except openai.RateLimitError:
            return 429
        return 200

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        queued = list(pool.map(ask, ["lim-queue"] * 3))  # 1 per second, waiting up to 3 s
    assert queued == [200, 200, 200] and time.monotonic() - started >= 1.5

    with ThreadPoolExecutor(max_workers=2) as pool:
        brief = sorted(pool.map(ask, ["lim-queue-brief"] * 2))  # waiting up to 0.1 s is not enough
    assert brief == [200, 429]
