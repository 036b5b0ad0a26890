"""The management API on a running server (SPEC §7): a script creates a key, a limit profile and a
deployment through /api/, then the official openai SDK uses them — and hits the limit; recordings made
through the API replay through the SDK; the interactive docs are served offline; every change reaches
every worker process. Finally schemathesis throws schema-generated requests at every operation.

Two worker processes, so "every process" is tested for real. With REDIS_URL the limiter is shared (under a
key prefix of this module's own); without it each worker limits on its own, and the tests hold for both.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.e2e.conftest import AZURE_API_VERSION
from tests.support.server import SimulatorServer

MANAGEMENT_TOKEN = "sim-mgmt-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Token {MANAGEMENT_TOKEN}"}
WORKERS = 2
QUESTION = [{"role": "user", "content": "What is 4200 + 42?"}]


@pytest.fixture(scope="module")
def managed_server(api_key: str) -> Iterator[SimulatorServer]:
    env = {
        "SIMULATOR_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN,
        "SIMULATOR_CONFIG_POLL_SECONDS": "0.2",
        "SIMULATOR_LIMITER_KEY_PREFIX": f"test-e2e-api-{uuid.uuid4().hex}",
    }
    with SimulatorServer(api_key=api_key, workers=WORKERS, extra_env=env) as server:
        yield server


@pytest.fixture
def api(managed_server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=managed_server.base_url + "/api", headers=AUTH, timeout=30.0) as client:
        yield client


def _azure(server: SimulatorServer, key: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=key, api_version=AZURE_API_VERSION,
                              max_retries=0)


def _created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def _on_every_worker(server: SimulatorServer, check: Callable[[httpx.Response], bool], key: str,
                     timeout: float = 10.0) -> None:
    """Wait until a run of fresh connections (spread over the workers by the kernel) all see a change."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 6 * WORKERS:
        # A new connection each time: keep-alive would pin one worker.
        response = httpx.get(server.base_url + "/openai/v1/models", headers={"api-key": key}, timeout=10.0)
        in_a_row = in_a_row + 1 if check(response) else 0
        if time.monotonic() > deadline:
            raise AssertionError(f"the change did not reach every worker: last answer {response.status_code}")
        if not in_a_row:
            time.sleep(0.1)


def _lists(deployment: str) -> Callable[[httpx.Response], bool]:
    def check(response: httpx.Response) -> bool:
        return response.status_code == 200 and deployment in {m["id"] for m in response.json()["data"]}

    return check


def test_only_management_credentials_open_the_api(managed_server: SimulatorServer, api_key: str) -> None:
    url = managed_server.base_url + "/api/deployments/"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"api-key": api_key}).status_code == 401  # a data-plane key
    assert httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {MANAGEMENT_TOKEN}"}).status_code == 200
    names = {d["name"] for d in httpx.get(url, headers=AUTH).json()}
    assert "gpt-4o-mini" in names  # the seeded defaults


def test_scenario_key_profile_deployment_then_the_sdk_hits_the_limit(
    managed_server: SimulatorServer, api: httpx.Client
) -> None:
    secret = _created(api.post("/keys/", json={"name": "scenario"}))["key"]
    assert secret not in api.get("/keys/").text and secret not in api.get("/keys/scenario/").text
    # 6 requests a minute: AOAI's 10 s windows admit one request each.
    profile = _created(api.post("/limit-profiles/", json={"name": "tiny", "tokens_per_minute": 1000,
                                                          "requests_per_minute": 6}))
    assert profile["effective_requests_per_minute"] == 6
    _created(api.post("/deployments/", json={"name": "scenario-bot", "model": "gpt-4o-mini",
                                             "limit_profile": "tiny"}))
    _on_every_worker(managed_server, _lists("scenario-bot"), secret)

    client = _azure(managed_server, secret)
    first = client.chat.completions.with_raw_response.create(model="scenario-bot", messages=QUESTION, max_tokens=5)
    assert first.headers["x-ratelimit-limit-requests"] == "6"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    completion = first.parse()
    assert completion.usage.completion_tokens == 5 and completion.choices[0].finish_reason == "length"

    # Each worker admits one request per window, so of three more calls at least one is refused.
    refused = None
    for _ in range(WORKERS + 1):
        try:
            client.chat.completions.create(model="scenario-bot", messages=QUESTION, max_tokens=5)
        except openai.RateLimitError as error:
            refused = error
            break
    assert refused is not None, "the deployment's limit was never hit"
    assert refused.status_code == 429
    assert int(refused.response.headers["retry-after"]) >= 1
    assert "exceeded call rate limit" in refused.message  # the request window, not the tokens, ran out

    state = api.get("/deployments/scenario-bot/limiter/").json()
    assert state["profile"] == "tiny" and state["requests_per_minute"] == 6 and state["window_request_limit"] == 1
    reset = api.post("/deployments/scenario-bot/limiter/reset/")
    assert reset.status_code == 200 and reset.json()["requests_used"] == 0
    if reset.json()["backend"] == "redis":  # one shared state: the next call, on any worker, is admitted
        assert client.chat.completions.create(model="scenario-bot", messages=QUESTION, max_tokens=5).choices

    # Disabling the key through the API closes the data plane on every worker.
    assert api.patch("/keys/scenario/", json={"enabled": False}).status_code == 200
    _on_every_worker(managed_server, lambda response: response.status_code == 401, secret)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="scenario-bot", messages=QUESTION, max_tokens=5)


def test_validation_errors_are_400_with_field_errors(api: httpx.Client) -> None:
    cases = [
        ("/deployments/", {"name": "bad", "model": "gpt-9"}, "model"),
        ("/deployments/", {"name": "bad", "model": "gpt-4o", "limit_profile": "missing"}, "limit_profile"),
        ("/deployments/", {"name": "bad", "model": "gpt-4o", "mode": "record"}, "upstream_endpoint"),
        ("/limit-profiles/", {"name": "bad", "tokens_per_minute": -1}, "tokens_per_minute"),
        ("/latency-profiles/", {"name": "bad", "ttft_mean_ms": 10, "ttft_std_ms": 500}, "ttft_std_ms"),
        ("/fault-profiles/", {"name": "bad", "kinds": {"teapot": 1}}, "kinds"),
    ]
    for path, payload, field in cases:
        response = api.post(path, json=payload)
        assert response.status_code == 400, (path, response.text)
        assert field in response.json(), (path, response.text)


def test_a_recording_made_through_the_api_replays_through_the_sdk(
    managed_server: SimulatorServer, api: httpx.Client, api_key: str, reference_dir: Path
) -> None:
    cassette = yaml.safe_load((reference_dir / "aoai-recordings" / "basic-chat-sync.yaml").read_text())
    interaction = cassette["interactions"][0]
    _created(api.post("/recording-sets/", json={"name": "api-golden"}))
    recording = _created(api.post("/recordings/", json={
        "recording_set": "api-golden", "deployment_name": "replayer", "operation": "chat",
        "request_body": json.loads(interaction["request"]["body"]),
        "body": interaction["response"]["body"]["string"].strip(),
        "headers": {"x-ms-region": "East US"},
    }))
    _created(api.post("/deployments/", json={"name": "replayer", "model": "gpt-4o-mini", "mode": "replay",
                                             "recording_set": "api-golden"}))
    _on_every_worker(managed_server, _lists("replayer"), api_key)

    client = _azure(managed_server, api_key)
    completion = client.chat.completions.create(model="replayer", messages=QUESTION)
    assert completion.id == "chatcmpl-CYljXG7URhfUajUrf04DzDMUn59Fm"
    assert completion.choices[0].message.content == "4200 + 42 equals 4242."
    # The same request streamed: replay re-frames the recorded JSON answer as SSE.
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in
                       client.chat.completions.create(model="replayer", messages=QUESTION, stream=True)
                       if chunk.choices)
    assert streamed == "4200 + 42 equals 4242."

    # Curating through the API: an edited answer is what the SDK gets next, on every worker.
    edited = json.loads(interaction["response"]["body"]["string"])
    edited["choices"][0]["message"]["content"] = "Edited through the API."
    patched = api.patch(f"/recordings/{recording['id']}/", json={"body": json.dumps(edited)})
    assert patched.status_code == 200, patched.text
    assert api.patch(f"/recordings/{recording['id']}/", json={"body": "{broken"}).status_code == 400

    def serves_the_edit() -> bool:
        answer = client.chat.completions.create(model="replayer", messages=QUESTION)
        return answer.choices[0].message.content == "Edited through the API."

    deadline = time.monotonic() + 10
    in_a_row = 0
    while in_a_row < 4 * WORKERS and time.monotonic() < deadline:
        in_a_row = in_a_row + 1 if serves_the_edit() else 0
    assert in_a_row >= 4 * WORKERS, "the edited answer did not reach every worker"

    # Strict replay: a request with no recording is a clear 404 naming the nearest recording, never a network call.
    with pytest.raises(openai.NotFoundError) as missed:
        client.chat.completions.create(model="replayer", messages=[{"role": "user", "content": "unrecorded"}])
    assert "replay miss" in missed.value.message.lower()


def test_docs_and_schema_are_served_offline(managed_server: SimulatorServer) -> None:
    base = managed_server.base_url
    schema = httpx.get(base + "/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert {"/api/deployments/", "/api/keys/", "/api/recordings/"} <= set(document["paths"])
    for page in ("/api/docs/", "/api/redoc/"):
        html = httpx.get(base + page).text
        assert "cdn." not in html and "unpkg" not in html  # every asset comes from the simulator itself
        assets = [part.split('"')[0] for part in html.split('src="')[1:]] + \
                 [part.split('"')[0] for part in html.split('href="')[1:] if part.startswith("/static/")]
        assert assets, page
        for asset in assets:
            if asset.startswith("/static/"):
                assert httpx.get(base + asset).status_code == 200, asset


# --- schemathesis: schema-generated requests at every operation, never a 500 -----------------------------
# Driven through schemathesis' Python API (its pytest plugin's lazy loader does not run on this pytest).

EXAMPLES_PER_OPERATION = 5


def test_no_schema_generated_input_makes_the_api_fail(managed_server: SimulatorServer) -> None:
    schema = schemathesis.openapi.from_url(managed_server.base_url + "/api/schema/?format=json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) > 40  # every resource, every method

    server_errors: list[str] = []
    mismatches: list[str] = []
    statuses: dict[int, int] = {}
    session = requests.Session()

    for operation in operations:
        # Invalid input needs something to break: a body or a query parameter. (A lone string path parameter
        # cannot be made invalid; hypothesis would spend seconds finding that out.)
        breakable = len(operation.body) > 0 or len(operation.query) > 0
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if breakable else (GenerationMode.POSITIVE,)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=managed_server.base_url, session=session, headers=AUTH, timeout=30)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.formatted_path} body={case.body!r}: "
                                         f"{response.status_code} {response.text[:300]}")
                try:
                    # What the API answers is what its schema says it answers (documented statuses only).
                    case.validate_response(response, checks=[response_schema_conformance, content_type_conformance],
                                           headers=AUTH)
                except (AssertionError, FailureGroup) as failure:
                    mismatches.append(f"{case.method} {case.formatted_path}: {str(failure)[:600]}")

            try:
                call()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (e.g. a list without parameters).
                assert mode is GenerationMode.NEGATIVE, operation.label

    session.close()
    assert not server_errors, "\n".join(server_errors[:10])
    assert not mismatches, "\n".join(mismatches[:10])
    # The run exercised the API for real: successes and refusals both.
    assert sum(count for status, count in statuses.items() if status < 300) > len(operations)
    assert statuses.get(400, 0) > 0
