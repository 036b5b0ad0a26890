"""Latency profiles as a client measures them (SPEC §5): the official openai SDK against the real server.

Each check takes the median of several requests and allows 10 ms, the SPEC's target; the machine runs other
work at the same time, so single requests may be late, medians should not be.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import SimulatorServer

AZURE_API_VERSION = "2024-10-21"
TOLERANCE_MS = 10.0
SAMPLES = 7
TTFT_MS, ITL_MS = 250.0, 20.0
REQUEST_MS, PER_INPUT_TOKEN_MS = 150.0, 2.0
MESSAGES = [{"role": "user", "content": "Say something."}]

CONFIG = f"""\
latency_profiles:
  - name: steady-chat
    ttft_ms: {{mean: {TTFT_MS}, std: 0}}
    itl_ms: {{mean: {ITL_MS}, std: 0}}
  - name: steady-embeddings
    request_ms: {{mean: {REQUEST_MS}, std: 0}}
    per_input_token_ms: {PER_INPUT_TOKEN_MS}
deployments:
  - name: paced-chat
    model: gpt-4o-mini
    latency_profile: steady-chat
  - name: paced-embeddings
    model: text-embedding-3-small
    latency_profile: steady-embeddings
"""


@pytest.fixture(scope="module")
def paced_server(api_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    config = tmp_path_factory.mktemp("latency") / "latency.yaml"
    config.write_text(CONFIG)
    with SimulatorServer(api_key=api_key, extra_env={"SIMULATOR_CONFIG": str(config)}) as server:
        yield server


# When the SDK handed the last request to the network (httpx's request hook): client-side times count from
# there, as a client measures time to first token, not from when the SDK began building the request.
_sent_at = [0.0]


def _note_sent(_request: httpx.Request) -> None:
    _sent_at[0] = time.perf_counter()


def sdk_client(base_url: str, api_key: str) -> openai.AzureOpenAI:
    http = httpx.Client(event_hooks={"request": [_note_sent]})
    return openai.AzureOpenAI(azure_endpoint=base_url, api_key=api_key, api_version=AZURE_API_VERSION,
                              max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def client(paced_server: SimulatorServer, api_key: str) -> Iterator[openai.AzureOpenAI]:
    client = sdk_client(paced_server.base_url, api_key)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=1)  # warm the SDK and server
    yield client
    client.close()


def stream_timings(client: openai.AzureOpenAI, model: str, max_tokens: int,
                   headers: dict[str, str] | None = None) -> tuple[float, float, list[float]]:
    """(first chunk ms, first content chunk ms, gaps between content chunks ms), from the request's sending."""
    first_chunk = None
    content_at: list[float] = []
    stream = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=max_tokens, stream=True,
                                            extra_headers=headers)
    started = _sent_at[0]
    for chunk in stream:
        now = (time.perf_counter() - started) * 1000
        first_chunk = now if first_chunk is None else first_chunk
        if chunk.choices and chunk.choices[0].delta.content:
            content_at.append(now)
    assert first_chunk is not None and len(content_at) == max_tokens
    return first_chunk, content_at[0], [b - a for a, b in pairwise(content_at)]


def timed_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    """From the request's sending to the whole answer; ``call`` uses ``with_raw_response`` so that the SDK's own
    parsing (base64 vectors into 1,536 floats, pydantic models) is not counted, then the result is parsed."""
    raw = call()
    elapsed = (time.perf_counter() - _sent_at[0]) * 1000
    return elapsed, raw.parse()


def test_stream_sends_the_first_token_at_ttft_and_the_next_ones_by_itl(client: openai.AzureOpenAI) -> None:
    runs = [stream_timings(client, "paced-chat", 20) for _ in range(SAMPLES)]
    first_chunks = [run[0] for run in runs]
    ttfts = [run[1] for run in runs]
    gaps = [gap for run in runs for gap in run[2]]
    # The prompt-filter and role events go out at once, as AOAI sends them, long before the first token.
    assert statistics.median(first_chunks) < 50
    assert statistics.median(ttfts) == pytest.approx(TTFT_MS, abs=TOLERANCE_MS)
    assert statistics.median(gaps) == pytest.approx(ITL_MS, abs=TOLERANCE_MS)
    # The whole stream: TTFT + 19 gaps, whatever the jitter of single gaps.
    last_tokens = [run[1] + sum(run[2]) for run in runs]
    assert statistics.median(last_tokens) == pytest.approx(TTFT_MS + 19 * ITL_MS, abs=TOLERANCE_MS)


def test_non_streaming_answer_arrives_after_ttft_plus_tokens_times_itl(client: openai.AzureOpenAI) -> None:
    durations = []
    for _ in range(SAMPLES):
        elapsed, completion = timed_ms(lambda: client.chat.completions.with_raw_response.create(
            model="paced-chat", messages=MESSAGES, max_tokens=15))
        assert completion.usage.completion_tokens == 15
        durations.append(elapsed)
    assert statistics.median(durations) == pytest.approx(TTFT_MS + 15 * ITL_MS, abs=TOLERANCE_MS)


def test_embeddings_take_the_request_latency_plus_per_input_token(client: openai.AzureOpenAI) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 5
    durations, tokens = [], set()
    for _ in range(SAMPLES):
        elapsed, result = timed_ms(lambda: client.embeddings.with_raw_response.create(model="paced-embeddings",
                                                                                     input=text))
        durations.append(elapsed)
        tokens.add(result.usage.prompt_tokens)
    (prompt_tokens,) = tokens
    expected = REQUEST_MS + PER_INPUT_TOKEN_MS * prompt_tokens
    assert statistics.median(durations) == pytest.approx(expected, abs=TOLERANCE_MS)


def test_latency_header_sets_a_deterministic_delay(client: openai.AzureOpenAI) -> None:
    durations = [timed_ms(lambda: client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=5, extra_headers={"x-simulator-latency-ms": "300"}))[0]
        for _ in range(5)]
    assert statistics.median(durations) == pytest.approx(300, abs=TOLERANCE_MS)
    runs = [stream_timings(client, "gpt-4o-mini", 10, {"x-simulator-latency-ms": "120,15"}) for _ in range(5)]
    assert statistics.median(run[1] for run in runs) == pytest.approx(120, abs=TOLERANCE_MS)
    assert statistics.median(gap for run in runs for gap in run[2]) == pytest.approx(15, abs=TOLERANCE_MS)
    # The default deployments of the test server have the zero profile: no header, no delay.
    assert timed_ms(lambda: client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=5))[0] < 100


def test_a_fresh_install_is_realistic_and_overrides_can_be_turned_off(api_key: str) -> None:
    env = {"SIMULATOR_DEFAULT_LATENCY": "realistic", "SIMULATOR_ALLOW_OVERRIDES": "false"}
    with SimulatorServer(api_key=api_key, extra_env=env) as server:
        client = sdk_client(server.base_url, api_key)
        # gpt-4o-mini's preset: 350 ± 80 ms to the first token, 12 ± 3 ms per token.
        ttfts = [stream_timings(client, "gpt-4o-mini", 10)[1] for _ in range(SAMPLES)]
        assert 200 < statistics.median(ttfts) < 550
        # Overrides are off: neither header has any effect.
        elapsed, completion = timed_ms(lambda: client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=5,
            extra_headers={"x-simulator-latency-ms": "0", "x-simulator-fault": "500"}))
        assert completion.choices[0].finish_reason == "length"
        assert elapsed > 150
        embeddings = [timed_ms(lambda: client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="hi"))[0] for _ in range(SAMPLES)]
        assert 20 < statistics.median(embeddings) < 200  # 60 ± 15 ms
        client.close()

