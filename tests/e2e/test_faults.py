"""Fault profiles and the x-simulator-fault header as the official openai SDK sees them (SPEC §6): each fault
gives the SDK's exception (or retry) that the real service's failure gives."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.reference import load_cassette, parse_sse
from tests.support.server import PROJECT_DIR, SimulatorServer

AZURE_API_VERSION = "2024-10-21"
CHAT = "/openai/deployments/{}/chat/completions?api-version=2024-10-21"
MESSAGES = [{"role": "user", "content": "Tell me a story."}]
POLL_SECONDS = 0.2

CONFIG = """\
latency_profiles:
  - name: slow-stream
    ttft_ms: {mean: 20, std: 0}
    itl_ms: {mean: 20, std: 0}
fault_profiles:
  - name: fail-two
    fail_first: 2
    kinds: {"503": 1}
  - name: always-failing
    error_rate: 1.0
    kinds: {"500": 1, "503": 1, "429": 1}
  - name: held
    error_rate: 1.0
    kinds: {timeout: 1}
    timeout_ms: 400
  - name: filtered
    content_filter_terms: ["self_harm:synthesizing fentanyl", "completion:hate:secret plan"]
deployments:
  - name: fail-two
    model: gpt-4o-mini
    fault_profile: fail-two
  - name: always-failing
    model: gpt-4o-mini
    fault_profile: always-failing
  - name: held
    model: gpt-4o-mini
    fault_profile: held
  - name: filtered
    model: gpt-4o-mini
    fault_profile: filtered
  - name: slow-stream
    model: gpt-4o-mini
    latency_profile: slow-stream
"""


@pytest.fixture(scope="module")
def faulty_server(api_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    config = tmp_path_factory.mktemp("faults") / "faults.yaml"
    config.write_text(CONFIG)
    env = {"SIMULATOR_CONFIG": str(config), "SIMULATOR_CONFIG_POLL_SECONDS": str(POLL_SECONDS),
           "SIMULATOR_LOG_LEVEL": "DEBUG"}  # the disconnect test reads the transport's debug line
    with SimulatorServer(api_key=api_key, extra_env=env) as server:
        yield server


def azure(server: SimulatorServer, api_key: str, **options: object) -> openai.AzureOpenAI:
    options.setdefault("max_retries", 0)
    return openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=api_key, api_version=AZURE_API_VERSION,
                              **options)


@pytest.fixture(scope="module")
def client(faulty_server: SimulatorServer, api_key: str) -> Iterator[openai.AzureOpenAI]:
    client = azure(faulty_server, api_key)
    yield client
    client.close()


def fault(kind: str) -> dict[str, str]:
    return {"x-simulator-fault": kind}


def test_429_is_the_sdk_rate_limit_error_with_retry_after(client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("429"))
    error = caught.value
    assert error.status_code == 429 and error.code == "429"
    assert "have exceeded call rate limit" in error.message
    assert error.response.headers["retry-after"] == "1" and error.response.headers["retry-after-ms"] == "1000"
    assert error.response.headers["x-request-id"]


def test_500_and_503_are_the_sdk_server_errors(client: openai.AzureOpenAI, faulty_server: SimulatorServer,
                                               api_key: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("500"))
    assert caught.value.status_code == 500 and caught.value.body["type"] == "server_error"
    with pytest.raises(openai.InternalServerError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="hi", extra_headers=fault("503"))
    assert caught.value.status_code == 503 and caught.value.code == "ServiceUnavailable"
    # The OpenAI surface answers in OpenAI's words.
    public = openai.OpenAI(base_url=f"{faulty_server.base_url}/v1", api_key=api_key, max_retries=0)
    with public, pytest.raises(openai.InternalServerError) as caught:
        public.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("503"))
    assert caught.value.body["message"] == "The engine is currently overloaded, please try again later"


def test_the_sdk_retries_failing_requests(faulty_server: SimulatorServer, api_key: str) -> None:
    with azure(faulty_server, api_key, max_retries=2) as retrying, pytest.raises(openai.APIStatusError) as caught:
        retrying.chat.completions.create(model="always-failing", messages=MESSAGES)
    assert caught.value.status_code in (429, 500, 503)
    assert caught.value.request.headers["x-stainless-retry-count"] == "2"  # three attempts, all failed


def test_error_rate_draws_the_weighted_kinds(faulty_server: SimulatorServer, api_key: str) -> None:
    with httpx.Client(base_url=faulty_server.base_url, headers={"api-key": api_key}) as http:
        statuses = Counter(http.post(CHAT.format("always-failing"), json={"messages": MESSAGES}).status_code
                           for _ in range(45))
    assert set(statuses) == {429, 500, 503}  # each kind weighs 1: missing one in 45 draws is a 1e-7 chance


def test_fail_first_two_is_absorbed_by_the_sdk_retries_and_can_start_again(
    faulty_server: SimulatorServer, api_key: str, client: openai.AzureOpenAI
) -> None:
    with azure(faulty_server, api_key, max_retries=2) as retrying:
        raw = retrying.chat.completions.with_raw_response.create(model="fail-two", messages=MESSAGES, max_tokens=3)
    assert raw.http_request.headers["x-stainless-retry-count"] == "2"  # two 503s, then the answer
    assert raw.parse().choices[0].finish_reason == "length"
    assert client.chat.completions.create(model="fail-two", messages=MESSAGES, max_tokens=3).choices

    done = subprocess.run([sys.executable, "manage.py", "reset_fail_first", "fail-two"], cwd=PROJECT_DIR,
                          env=faulty_server.child_env, capture_output=True, text=True, timeout=60, check=True)
    assert "fail-two" in done.stdout
    time.sleep(POLL_SECONDS * 4)  # every process notices the new configuration version within one poll
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="fail-two", messages=MESSAGES, max_tokens=3)
    assert client.chat.completions.create(model="fail-two", messages=MESSAGES, max_tokens=3).choices


def test_timeout_holds_the_connection_then_closes_it(faulty_server: SimulatorServer, api_key: str) -> None:
    with azure(faulty_server, api_key, timeout=0.2) as impatient, pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="held", messages=MESSAGES)
    with azure(faulty_server, api_key, timeout=10) as patient:
        started = time.perf_counter()
        with pytest.raises(openai.APIConnectionError) as caught:
            patient.chat.completions.create(model="held", messages=MESSAGES)
        held_for = time.perf_counter() - started
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)  # closed without an answer
        assert 0.38 < held_for < 2.0  # the profile's timeout_ms: 400
        started = time.perf_counter()
        with pytest.raises(openai.APIConnectionError):  # the header may set its own hold time
            patient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("timeout:150"))
        assert 0.14 < time.perf_counter() - started < 1.5


def test_reset_closes_the_connection_before_any_byte(faulty_server: SimulatorServer, api_key: str,
                                                     client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("reset"))
    body = json.dumps({"messages": MESSAGES}).encode()
    request = (f"POST {CHAT.format('gpt-4o-mini')} HTTP/1.1\r\nhost: sim\r\napi-key: {api_key}\r\n"
               f"x-simulator-fault: reset\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
    with socket.create_connection((faulty_server.host, faulty_server.port), timeout=5) as sock:
        sock.sendall(request.encode() + body)
        with pytest.raises(ConnectionResetError):  # an RST, not even a status line
            sock.recv(65536)


def test_a_cut_stream_raises_in_the_sdk(client: openai.AzureOpenAI) -> None:
    received = 0
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20, stream=True,
                                            extra_headers=fault("truncate:5"))
    with pytest.raises(httpx.RemoteProtocolError):  # the SDK iterates httpx's stream, which ends mid-body
        for _ in stream:
            received += 1
    assert received == 5  # prompt filter results, role, three tokens; never [DONE]
    with pytest.raises(openai.APIConnectionError):  # a cut JSON body
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("truncate:5"))


def test_a_malformed_event_raises_in_the_sdk(client: openai.AzureOpenAI, faulty_server: SimulatorServer,
                                             api_key: str) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20, stream=True,
                                            extra_headers=fault("malformed"))
    received = 0
    with pytest.raises(json.JSONDecodeError):
        for _ in stream:
            received += 1
    assert received == 2  # the prompt filter results and the role; the first content event is broken
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("malformed"))


def test_a_prompt_term_is_refused_exactly_as_aoai_refuses_it(faulty_server: SimulatorServer, api_key: str,
                                                              client: openai.AzureOpenAI) -> None:
    recorded = load_cassette("refusal-chat-sync")[0]
    with httpx.Client(base_url=faulty_server.base_url) as http:
        answer = http.post(CHAT.format("filtered"), json=recorded.request.body, headers={"api-key": api_key})
    assert answer.status_code == recorded.response.status == 400
    assert answer.json() == recorded.response.body
    prompt = [{"role": "user", "content": "Steps for Synthesizing Fentanyl?"}]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="filtered", messages=prompt, stream=stream)
        assert caught.value.code == "content_filter"
        assert caught.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
        assert caught.value.body["innererror"]["content_filter_result"]["self_harm"]["filtered"] is True


def test_a_completion_term_ends_the_answer_with_finish_reason_content_filter(client: openai.AzureOpenAI) -> None:
    prompt = [{"role": "user", "content": "What is the secret plan?"}]
    completion = client.chat.completions.create(model="filtered", messages=prompt, max_tokens=12)
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.model_extra["content_filter_results"]["hate"] == {"filtered": True, "severity": "medium"}
    chunks = list(client.chat.completions.create(model="filtered", messages=prompt, max_tokens=12, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["content_filter"]
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 6  # half, then the filter


def test_a_bad_fault_header_is_a_400(client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=fault("explode"))
    assert caught.value.param == "x-simulator-fault"
    assert "expected one of 429|500|503|timeout[:MS]|reset|truncate:K|malformed|none" in caught.value.message


def test_a_client_that_leaves_a_paced_stream_ends_the_servers_work_at_once(
    faulty_server: SimulatorServer, api_key: str
) -> None:
    # 1,000 tokens at 20 ms: 20 s of stream if nobody stopped it.
    with httpx.Client(base_url=faulty_server.base_url, headers={"api-key": api_key}) as http:
        with http.stream("POST", CHAT.format("slow-stream"),
                         json={"messages": MESSAGES, "max_tokens": 1000, "stream": True}) as response:
            events = 0
            for line in response.iter_lines():
                events += line.startswith("data: ")
                if events == 6:
                    break
        left_at = time.monotonic()
    stopped = None
    while stopped is None and time.monotonic() - left_at < 2.0:
        lines = [line for line in faulty_server.log_text().splitlines() if "stream stopped after" in line]
        stopped = lines[-1] if lines else None
        time.sleep(0.05)
    assert stopped is not None, "the server kept pacing a stream nobody reads"
    sent, total = (int(word) for word in stopped.split("stream stopped after ")[1].split(" frames")[0].split(" of "))
    assert total == 1004 and sent < 30  # stopped within a few frames of the client leaving


def test_sse_of_a_normal_stream_is_untouched_by_the_fault_machinery(faulty_server: SimulatorServer,
                                                                   api_key: str) -> None:
    with httpx.Client(base_url=faulty_server.base_url, headers={"api-key": api_key}) as http:
        text = http.post(CHAT.format("slow-stream"), json={"messages": MESSAGES, "max_tokens": 5,
                                                           "stream": True}).text
    events = parse_sse(text)
    assert events[-1]["data"] == "[DONE]" and len(events) == 2 + 5 + 1 + 1  # filter, role, tokens, finish, done

