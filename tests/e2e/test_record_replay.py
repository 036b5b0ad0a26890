"""Record and replay with two real simulators: A (generate mode, paced by a latency profile) stands in for
the real service; B records what A answers, then replays it with A stopped.

One module-scoped scenario, in order, because each phase needs the previous one's recordings:
record through B (AOAI and OpenAI surfaces, plain and streaming) -> A stops -> B in record mode answers 502
-> B switched to strict replay by its config file -> the same requests get identical answers, streams at the
recorded pace -> a changed request gets the 404 miss naming the differing field -> the upstream key is in
neither B's database nor its log.
"""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import SimulatorServer
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
API_VERSION = "2024-10-21"
UPSTREAM_KEY = "sim-upstream-secret-7Q4xK9wZ"  # A's data-plane key: what B must never store or log
B_KEY = "sim-recorder-client-key-0123"
QUESTION = [{"role": "user", "content": "What is 4200 + 42?"}]
STORY = [{"role": "user", "content": "Tell me a short story about a lighthouse."}]
# A's pacing: the stream takes about TTFT + 24 x ITL = 0.7 s, so replayed timing is measurable.
A_CONFIG = """\
latency_profiles:
  - name: paced
    ttft_ms: {mean: 120, std: 0}
    itl_ms: {mean: 25, std: 0}
    request_ms: {mean: 40, std: 0}
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    latency_profile: paced
  - name: text-embedding-3-small
    model: text-embedding-3-small
    latency_profile: paced
"""
B_CONFIG = """\
recording_sets:
  - name: golden
    description: recorded from A
    timing_factor: {factor}
  - name: flaky
latency_profiles:
  - name: slow
    ttft_ms: {{mean: 1500, std: 0}}
    itl_ms: {{mean: 40, std: 0}}
limit_profiles:
  - name: one-per-10s
    tokens_per_minute: 1000
    requests_per_minute: 6
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    mode: {mode}
    recording_set: golden
    latency_profile: slow             # never applied to a recorded or replayed answer
    upstream_endpoint: {upstream}
    upstream_key_env: SIM_TEST_UPSTREAM_KEY
  - name: text-embedding-3-small
    model: text-embedding-3-small
    mode: {mode}
    recording_set: golden
    upstream_endpoint: {upstream}
    upstream_key_env: SIM_TEST_UPSTREAM_KEY
  - name: openai-style
    model: gpt-4o-mini
    mode: record
    recording_set: golden
    upstream_endpoint: {upstream}/v1
    upstream_key_env: SIM_TEST_UPSTREAM_KEY
  - name: fill                        # replay what is recorded, forward and record the rest
    model: gpt-4o-mini
    mode: replay_or_record
    recording_set: golden
    upstream_endpoint: {upstream}/v1
    upstream_key_env: SIM_TEST_UPSTREAM_KEY
  - name: fallback                    # replay what is recorded, generate the rest
    model: gpt-4o-mini
    mode: replay_or_generate
    recording_set: golden
  - name: limited
    model: gpt-4o-mini
    mode: replay
    recording_set: golden
    limit_profile: one-per-10s
  - name: flaky
    model: gpt-4o-mini
    mode: record
    recording_set: flaky
    upstream_endpoint: {resetting}
    upstream_key_env: SIM_TEST_UPSTREAM_KEY
  - name: loop                        # a mistake: its upstream is B itself, under the same name
    model: gpt-4o-mini
    mode: record
    recording_set: flaky
    upstream_endpoint: {itself}
    upstream_key_env: SIM_TEST_B_KEY
"""


class ResettingUpstream:
    """A misbehaving upstream: a JSON request gets its connection reset before any answer; a stream request
    gets the status, headers and two SSE events, then a reset."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                while len(body) < length:
                    body += conn.recv(65536)
                if b'"stream":true' in body.replace(b" ", b""):
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
                    for event in (b'data: {"choices":[],"id":"","object":"","created":0,"model":""}\n\n',
                                  b'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}],"id":"c1",'
                                  b'"object":"chat.completion.chunk","created":1,"model":"m"}\n\n'):
                        conn.sendall(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    time.sleep(0.05)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def close(self) -> None:
        self._listener.close()


def _b_config(upstream: str, resetting: str, itself: str, mode: str, factor: float = 1.0) -> str:
    return B_CONFIG.format(upstream=upstream, resetting=resetting, itself=itself, mode=mode, factor=factor)


def _manage(server: SimulatorServer, *args: str) -> str:
    """A manage.py command on the server's own database."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=server.child_env, check=True,
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def _count_recordings(server: SimulatorServer, set_name: str) -> int:
    code = ("from recordings_app.models import Recording; "
            f"print(Recording.objects.filter(recording_set__name={set_name!r}).count())")
    return int(_manage(server, "shell", "-c", code).strip().splitlines()[-1])


_eventually = functools.partial(eventually, timeout=15.0, interval=0.2)


def _timed_stream(client: openai.AzureOpenAI, **kwargs: Any) -> tuple[list[dict], list[float]]:
    """Every chunk (as a dict) and when it arrived, in seconds from the request."""
    started = time.monotonic()
    chunks, arrivals = [], []
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        arrivals.append(time.monotonic() - started)
        chunks.append(chunk.model_dump())
    return chunks, arrivals


REQUESTS: dict[str, dict[str, Any]] = {
    "plain": {"model": "gpt-4o-mini", "messages": QUESTION, "max_tokens": 12},
    "stream": {"model": "gpt-4o-mini", "messages": STORY, "max_tokens": 24,
               "stream_options": {"include_usage": True}},
    "openai-surface": {"model": "gpt-4o-mini", "messages": STORY, "max_tokens": 6},
    "openai-style-upstream": {"model": "openai-style", "messages": QUESTION, "max_tokens": 5},
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("record-replay")
    resetting = ResettingUpstream()
    (tmp / "a.yaml").write_text(A_CONFIG)
    upstream = SimulatorServer(api_key=UPSTREAM_KEY, extra_env={"SIMULATOR_CONFIG": str(tmp / "a.yaml")})
    upstream.start()
    recorder = SimulatorServer(api_key=B_KEY, keep_data_dir=True, extra_env={
        "SIMULATOR_CONFIG": str(tmp / "b.yaml"), "SIM_TEST_UPSTREAM_KEY": UPSTREAM_KEY, "SIM_TEST_B_KEY": B_KEY,
        "SIMULATOR_CONFIG_POLL_SECONDS": "0.2"})
    (tmp / "b.yaml").write_text(_b_config(upstream.base_url, resetting.url, recorder.base_url, "record"))
    try:
        recorder.start()
        yield {"a": upstream, "b": recorder, "tmp": tmp, "resetting": resetting}
    finally:
        upstream.stop()
        recorder.keep_data_dir = False
        recorder.stop()
        resetting.close()


def test_record_then_replay_with_the_upstream_gone(scenario: dict[str, Any]) -> None:
    a, b, tmp = scenario["a"], scenario["b"], scenario["tmp"]
    azure = openai.AzureOpenAI(azure_endpoint=b.base_url, api_key=B_KEY, api_version=API_VERSION, max_retries=0)
    plain_openai = openai.OpenAI(base_url=f"{b.base_url}/v1", api_key=B_KEY, max_retries=0)

    # --- record: B forwards to A and passes A's answers through, a stream at A's pace ------------------
    recorded = {"openai-surface": plain_openai.chat.completions.create(**REQUESTS["openai-surface"]).model_dump()}
    recorded["openai-style-upstream"] = plain_openai.chat.completions.create(
        **REQUESTS["openai-style-upstream"]).model_dump()
    started = time.monotonic()
    recorded["plain"] = azure.chat.completions.create(**REQUESTS["plain"]).model_dump()
    # A takes 120 + 12 x 25 = 420 ms; B's own latency profile (TTFT 1.5 s) does not apply.
    assert 0.4 < time.monotonic() - started < 0.8
    recorded["stream"], record_arrivals = _timed_stream(azure, **REQUESTS["stream"])
    recorded["embeddings"] = azure.embeddings.create(model="text-embedding-3-small", input="lighthouse").model_dump()
    fill_request = {"model": "fill", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 4}
    recorded["fill"] = plain_openai.chat.completions.create(**fill_request).model_dump()  # a miss: forwarded
    assert recorded["plain"]["model"] == "gpt-4o-mini-2024-07-18"  # A's answer, as A generates it
    assert recorded["stream"][-1]["usage"]["completion_tokens"] == 24
    assert record_arrivals[-1] > 0.6, "A paces its stream (TTFT 120 ms + 24 x 25 ms) and B passes it on as it comes"
    assert record_arrivals[2] < record_arrivals[-1] - 0.4, "chunks arrive spread out, not all at the end"
    _eventually(lambda: _assert_count(b, "golden", 6))

    # --- A goes away: record mode has nowhere to forward to -------------------------------------------
    a.stop()
    with pytest.raises(openai.APIStatusError) as unreachable:
        azure.chat.completions.create(**REQUESTS["plain"])
    assert unreachable.value.status_code == 502
    assert unreachable.value.body["code"] == "upstream_unreachable"
    assert a.base_url.removeprefix("http://") in unreachable.value.body["message"]

    # --- switch B to strict replay with its config file (another process; B sees the version change) ---
    (tmp / "b.yaml").write_text(_b_config(a.base_url, scenario["resetting"].url, b.base_url, "replay"))
    _manage(b, "apply_config", str(tmp / "b.yaml"))
    replayed_plain = _eventually(lambda: azure.chat.completions.create(**REQUESTS["plain"]).model_dump())
    assert replayed_plain == recorded["plain"]
    replayed_stream, replay_arrivals = _timed_stream(azure, **REQUESTS["stream"])
    assert replayed_stream == recorded["stream"]
    assert len(replay_arrivals) == len(record_arrivals)
    for when_recorded, when_replayed in zip(record_arrivals, replay_arrivals, strict=True):
        # 100 ms (or 15 %) of slack for a busy 2-core machine; unpaced, the last chunk would be 0.7 s early
        assert abs(when_replayed - when_recorded) < max(0.1, 0.15 * when_recorded), (record_arrivals,
                                                                                    replay_arrivals)
    assert plain_openai.chat.completions.create(**REQUESTS["openai-surface"]).model_dump() == \
        recorded["openai-surface"]
    assert azure.embeddings.create(model="text-embedding-3-small", input="lighthouse").model_dump() == \
        recorded["embeddings"]

    # replay_or_record: a recorded request is replayed (A is gone), a new one goes upstream (and fails now).
    assert plain_openai.chat.completions.create(**fill_request).model_dump() == recorded["fill"]
    with pytest.raises(openai.APIStatusError) as forwarded:
        plain_openai.chat.completions.create(**{**fill_request, "max_tokens": 5})
    assert forwarded.value.status_code == 502
    # replay_or_generate: a recorded request is replayed, a new one is generated.
    fallback = {**REQUESTS["plain"], "model": "fallback"}
    assert plain_openai.chat.completions.create(**fallback).choices[0].message.content == \
        recorded["plain"]["choices"][0]["message"]["content"]
    generated = plain_openai.chat.completions.create(**{**fallback, "max_tokens": 7})
    assert generated.usage.completion_tokens == 7 and generated.id != recorded["plain"]["id"]

    # A stream request replays the non-stream recording, re-framed into AOAI chunks, and the reverse.
    reframed = list(azure.chat.completions.create(stream=True, **REQUESTS["plain"]))
    assert "".join(c.choices[0].delta.content or "" for c in reframed if c.choices) == \
        recorded["plain"]["choices"][0]["message"]["content"]
    assert {c.id for c in reframed if c.choices} == {recorded["plain"]["id"]}
    assembled = azure.chat.completions.create(**{k: v for k, v in REQUESTS["stream"].items()
                                                 if k != "stream_options"})
    assert assembled.choices[0].message.content == "".join(
        c["choices"][0]["delta"]["content"] or "" for c in recorded["stream"] if c["choices"])
    assert assembled.usage.completion_tokens == 24

    # --- timing_factor 0: as fast as possible (and still not the deployment's latency profile) ----------
    (tmp / "b.yaml").write_text(_b_config(a.base_url, scenario["resetting"].url, b.base_url, "replay", factor=0))
    _manage(b, "apply_config", str(tmp / "b.yaml"))

    def replays_at_once() -> None:
        chunks, arrivals = _timed_stream(azure, **REQUESTS["stream"])
        assert chunks == recorded["stream"]
        assert arrivals[-1] < 0.2, arrivals

    _eventually(replays_at_once)

    # --- a changed request: the 404 says it is a replay miss and names the field that differs ----------
    changed = {**REQUESTS["plain"], "messages": [{"role": "user", "content": "What is 4200 + 43?"}]}
    with pytest.raises(openai.NotFoundError) as miss:
        azure.chat.completions.create(**changed)
    error = miss.value.body
    assert error["code"] == "simulator_replay_miss"
    assert "Simulator replay miss" in error["message"] and "golden" in error["message"]
    nearest = error["simulator"]["nearest"][0]
    assert nearest["differing_fields"] == ["messages[0].content"]
    assert "messages[0].content" in error["message"]

    # --- replayed answers still go through the limiter and the fault profile ---------------------------
    limited = {**REQUESTS["plain"], "model": "limited"}
    first = plain_openai.chat.completions.create(**limited)
    assert first.choices[0].message.content == recorded["plain"]["choices"][0]["message"]["content"]
    with pytest.raises(openai.RateLimitError):
        plain_openai.chat.completions.create(**limited)
    with pytest.raises(openai.InternalServerError):
        azure.chat.completions.create(**REQUESTS["plain"], extra_headers={"x-simulator-fault": "500"})

    # --- no upstream key in B's database or log ----------------------------------------------------------
    dump = _manage(b, "dumpdata", "--all")
    assert "sim-recorder" not in dump  # data-plane keys are stored hashed
    assert UPSTREAM_KEY not in dump
    assert '"api-key"' not in dump.lower()
    assert "gpt-4o-mini-2024-07-18" in dump  # the dump does hold the recordings
    sqlite_files = list(b.data_dir.glob("*.sqlite3*")) if "DATABASE_URL" not in b.child_env else []
    for path in sqlite_files:
        assert UPSTREAM_KEY.encode() not in path.read_bytes()
    assert UPSTREAM_KEY not in b.log_text()
    assert UPSTREAM_KEY not in (b.data_dir / "server.log").read_text()


def _assert_count(server: SimulatorServer, set_name: str, expected: int) -> None:
    assert _count_recordings(server, set_name) == expected


def test_an_upstream_that_resets_the_connection(scenario: dict[str, Any]) -> None:
    b = scenario["b"]
    client = openai.OpenAI(base_url=f"{b.base_url}/v1", api_key=B_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as reset:
        client.chat.completions.create(model="flaky", messages=QUESTION)
    assert reset.value.status_code == 502
    assert reset.value.body["code"] == "upstream_unreachable"
    assert reset.value.body["type"] == "upstream_error"

    # Mid-stream: what arrived is passed on, then an error event the SDK raises; nothing is saved.
    received = []
    with pytest.raises(openai.APIError, match="broke off the stream"):
        for chunk in client.chat.completions.create(model="flaky", messages=QUESTION, stream=True):
            received.append(chunk)
    assert [chunk.id for chunk in received] == ["", "c1"]
    with httpx.Client(base_url=b.base_url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
    time.sleep(0.5)
    assert _count_recordings(b, "flaky") == 0
    assert UPSTREAM_KEY not in b.log_text()
    assert json.dumps(UPSTREAM_KEY) not in b.log_text()


def test_a_forwarding_loop_is_refused(scenario: dict[str, Any]) -> None:
    b = scenario["b"]
    client = openai.AzureOpenAI(azure_endpoint=b.base_url, api_key=B_KEY, api_version=API_VERSION, max_retries=0)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as loop:
        client.chat.completions.create(model="loop", messages=QUESTION, timeout=20)
    assert loop.value.status_code == 508
    assert loop.value.body["code"] == "simulator_forwarding_loop"
    assert time.monotonic() - started < 10
