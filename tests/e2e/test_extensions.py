"""Extensions loaded into a real server (SIMULATOR_EXTENSIONS), driven over HTTP and with the openai SDK.

The two examples (examples/echo_extension.py, examples/document_analysis.py) run in a 2-worker server, so every
process loads them and a document-analysis poll may land on either worker. A second pair of servers shows an
extension route recorded through an extension's forwarder, then replayed with the upstream gone. A broken
extension must stop `manage.py serve` with one readable line.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import PROJECT_DIR, SimulatorServer
from tests.support.waiting import eventually

API_VERSION = "2024-10-21"
DI_VERSION = "2024-11-30"
KEY = "sim-extensions-key-0123456789"
SECONDS_PER_PAGE = 0.3
EXAMPLES = PROJECT_DIR / "examples"
TWO_PAGE_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >> endobj\n"
                b"2 0 obj << /Type /Page /Parent 1 0 R >> endobj\n"
                b"3 0 obj << /Type /Page /Parent 1 0 R >> endobj\n%%EOF\n")


def _extension_env(*extensions: str, config: Path | None = None, **extra: str) -> dict[str, str]:
    env = {"SIMULATOR_EXTENSIONS": ",".join(extensions),
           "DOCUMENT_ANALYSIS_SECONDS_PER_PAGE": str(SECONDS_PER_PAGE), **extra}
    if config is not None:
        env["SIMULATOR_CONFIG"] = str(config)
    return env


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    # One extension by dotted path, one by file path, as the README shows both.
    env = _extension_env("examples.echo_extension", str(EXAMPLES / "document_analysis.py"),
                         config=EXAMPLES / "document_analysis.yaml")
    with SimulatorServer(api_key=KEY, workers=2, extra_env=env) as running:
        yield running


@pytest.fixture
def client(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        yield http


# --- the echo example ------------------------------------------------------------------------------------


def test_echo_route_answers_with_what_it_was_sent(client: httpx.Client) -> None:
    response = client.post("/echo/some/path", params={"x": "1"}, json={"hello": ["world"]},
                           headers={"api-key": KEY, "x-custom": "yes"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-echo-extension"] == "1"  # the example's response hook
    assert response.headers["x-request-id"]  # the simulator's own headers come first
    echoed = response.json()
    assert echoed["method"] == "POST" and echoed["path"] == "/echo/some/path" and echoed["rest"] == "some/path"
    assert echoed["query"] == {"x": "1"} and echoed["json"] == {"hello": ["world"]}
    assert echoed["headers"]["x-custom"] == "yes"
    assert "api-key" not in echoed["headers"] and KEY not in response.text  # extensions never see the key

    got = client.get("/echo", headers={"Authorization": f"Bearer {KEY}"})
    assert got.status_code == 200 and got.json()["method"] == "GET" and got.json()["json"] is None


def test_echo_route_keeps_auth_and_methods(client: httpx.Client) -> None:
    missing = client.post("/echo", json={})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "401"
    assert missing.headers["x-echo-extension"] == "1"  # response hooks see the simulator's refusals too
    wrong = client.post("/echo", json={}, headers={"api-key": "not-the-key"})
    assert wrong.status_code == 401
    assert client.put("/echo", json={}, headers={"api-key": KEY}).status_code == 405


def test_echo_route_streams_server_sent_events(client: httpx.Client) -> None:
    with client.stream("POST", "/echo", json={"stream": True, "text": "one two three"},
                       headers={"api-key": KEY}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        body = b"".join(response.iter_bytes()).decode()
    assert body == ('data: {"index":0,"word":"one"}\n\ndata: {"index":1,"word":"two"}\n\n'
                    'data: {"index":2,"word":"three"}\n\ndata: [DONE]\n\n')


def test_echo_latency_function_delays_the_answer(client: httpx.Client) -> None:
    started = time.monotonic()
    quick = client.post("/echo", json={}, headers={"api-key": KEY})
    quick_s = time.monotonic() - started
    started = time.monotonic()
    slow = client.post("/echo", json={}, headers={"api-key": KEY, "x-echo-delay-ms": "400"})
    slow_s = time.monotonic() - started
    assert quick.status_code == slow.status_code == 200
    assert slow_s >= 0.39 and slow_s > quick_s + 0.2


def test_chat_generator_answers_its_prefix_through_the_azure_sdk(server: SimulatorServer) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=KEY, api_version=API_VERSION, max_retries=0)
    echoed = azure.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "echo: the tide is high"}])
    assert echoed.choices[0].message.content == "the tide is high"
    assert echoed.choices[0].finish_reason == "stop"
    assert echoed.usage is not None and echoed.usage.completion_tokens == 4
    assert echoed.model == "gpt-4o-mini-2024-07-18"

    # Declined (no prefix): the built-in generator answers, max_tokens and all.
    built_in = azure.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say something."}], max_tokens=7)
    assert built_in.usage is not None and built_in.usage.completion_tokens == 7
    assert built_in.choices[0].finish_reason == "length"
    assert built_in.id.startswith("chatcmpl-") and "echo" not in built_in.id

    chunks = list(azure.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "echo: streamed back to you"}], stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "streamed back to you"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_generator_keeps_limits_and_faults_of_the_deployment(server: SimulatorServer) -> None:
    """The extension's answer still goes through the built-in machinery: a fault header fails it."""
    plain = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError):
        plain.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "echo: hi"}],
                                      extra_headers={"x-simulator-fault": "500"})
    assert plain.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "echo: hi"}]).choices[0].message.content == "hi"


# --- the document-analysis example -----------------------------------------------------------------------


def _analyze(client: httpx.Client, model_id: str = "prebuilt-layout", **kwargs: Any) -> httpx.Response:
    params = kwargs.pop("params", {"api-version": DI_VERSION})
    headers = {"ocp-apim-subscription-key": KEY, **kwargs.pop("headers", {})}
    return client.post(f"/documentintelligence/documentModels/{model_id}:analyze", params=params, headers=headers,
                       **kwargs)


def _poll(client: httpx.Client, location: str) -> httpx.Response:
    return client.get(location, headers={"ocp-apim-subscription-key": KEY})


def _succeeded(client: httpx.Client, location: str) -> dict[str, Any]:
    def done() -> dict[str, Any]:
        body = _poll(client, location).json()
        assert body["status"] == "succeeded", body
        return body

    return eventually(done, timeout=10)


def test_document_analysis_runs_then_succeeds(client: httpx.Client) -> None:
    submitted = _analyze(client, json={"base64Source": base64.b64encode(TWO_PAGE_PDF).decode()})
    assert submitted.status_code == 202, submitted.text
    assert submitted.content == b""
    location = submitted.headers["operation-location"]
    assert location.startswith(f"{client.base_url}/documentintelligence/documentModels/prebuilt-layout/analyzeResults/")
    assert location.endswith(f"?api-version={DI_VERSION}")
    assert int(submitted.headers["x-ratelimit-remaining-requests"]) < 900  # the deployment's own limit profile

    running = _poll(client, location)
    assert running.status_code == 200 and running.json()["status"] == "running"
    assert running.headers["retry-after"] == "1"

    result = _succeeded(client, location)["analyzeResult"]
    assert result["modelId"] == "prebuilt-layout" and result["apiVersion"] == DI_VERSION
    assert [page["pageNumber"] for page in result["pages"]] == [1, 2]  # counted from the PDF's page objects
    content = result["content"]
    for page in result["pages"]:
        for line in page["lines"]:
            span = line["spans"][0]
            assert content[span["offset"]:span["offset"] + span["length"]] == line["content"]
        for word in page["words"]:
            span = word["span"]
            assert content[span["offset"]:span["offset"] + span["length"]] == word["content"]
            assert len(word["polygon"]) == 8 and 0 < word["confidence"] < 1

    # The same document analysed again (raw PDF this time) gives the same content: the result id carries
    # the document's digest, so any worker answers any poll.
    again = _analyze(client, content=TWO_PAGE_PDF, headers={"content-type": "application/pdf"})
    assert again.status_code == 202
    assert _succeeded(client, again.headers["operation-location"])["analyzeResult"]["content"] == content


def test_document_analysis_errors_in_document_intelligence_shape(client: httpx.Client) -> None:
    bad_base64 = _analyze(client, json={"base64Source": "not base64!"})
    assert bad_base64.status_code == 400
    assert bad_base64.json()["error"]["innererror"]["code"] == "InvalidContent"
    both = _analyze(client, json={"base64Source": "AAAA", "urlSource": "https://example.com/a.pdf"})
    assert both.status_code == 400 and both.json()["error"]["innererror"]["code"] == "InvalidParameter"
    no_version = _analyze(client, params={}, json={"urlSource": "https://example.com/a.pdf"})
    assert no_version.status_code == 400 and no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    # An unknown model id is a deployment the simulator does not have: the response hook rewords AOAI's 404.
    unknown = _analyze(client, model_id="prebuilt-nothing", json={"urlSource": "https://example.com/a.pdf"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "NotFound", "message": "Resource not found.", "innererror": {
        "code": "ModelNotFound", "message": "The requested model was not found."}}}
    wrong_key = _analyze(client, json={"urlSource": "https://example.com/a.pdf"},
                         headers={"ocp-apim-subscription-key": "wrong"})
    assert wrong_key.status_code == 401
    bogus = _poll(client, f"/documentintelligence/documentModels/prebuilt-layout/analyzeResults/nope"
                          f"?api-version={DI_VERSION}")
    assert bogus.status_code == 404 and bogus.json()["error"]["innererror"]["code"] == "AnalyzeResultNotFound"


def test_document_analysis_has_its_own_rate_limit(client: httpx.Client) -> None:
    """prebuilt-read's limit profile: 15 analyze requests a second (S0). Polls opted out of limits."""
    body = {"urlSource": "https://example.com/invoice.pdf"}

    def burst() -> list[httpx.Response]:
        answers = [_analyze(client, model_id="prebuilt-read", json=body) for _ in range(20)]
        assert sum(a.status_code == 429 for a in answers) >= 1, [a.status_code for a in answers]
        return answers

    answers = eventually(burst, timeout=20, interval=1.1)  # a slow machine may spread 20 requests over 2 windows
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {202, 429}
    assert statuses.index(429) >= 15 or statuses.count(202) >= 15
    refused = answers[statuses.index(429)]
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "429" and "Analyze Document Operation" in error["message"]
    assert "FormRecognizer S0 pricing tier" in error["message"]
    location = answers[0].headers["operation-location"]
    polls = [_poll(client, location).status_code for _ in range(25)]
    assert set(polls) == {200}


def test_models_list_leaves_out_deployments_of_other_services(server: SimulatorServer) -> None:
    listed = {model.id for model in openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=KEY).models.list()}
    assert "gpt-4o-mini" in listed
    assert not {"prebuilt-layout", "prebuilt-read"} & listed


def test_extension_routes_are_in_the_metrics(client: httpx.Client) -> None:
    _analyze(client, json={"urlSource": "https://example.com/metrics.pdf"})

    def counted() -> None:
        metrics = client.get("/metrics").text
        assert 'operation="document_analysis"' in metrics and 'deployment="prebuilt-layout"' in metrics
        assert 'operation="echo"' in metrics

    client.post("/echo", json={}, headers={"api-key": KEY})
    eventually(counted)


def test_extension_route_takes_fault_injection_and_latency(client: httpx.Client) -> None:
    failed = _analyze(client, json={"urlSource": "https://example.com/a.pdf"}, headers={"x-simulator-fault": "503"})
    assert failed.status_code == 503
    started = time.monotonic()
    delayed = _analyze(client, json={"urlSource": "https://example.com/a.pdf"},
                       headers={"x-simulator-latency-ms": "350"})
    assert delayed.status_code == 202 and time.monotonic() - started >= 0.34


# --- record and replay through an extension's forwarder ------------------------------------------------

FORWARDER = '''
import os
from generators_app.extensions import Upstream

def register(sim):
    sim.add_forwarder(forward, route="document_analysis")
    sim.add_forwarder(forward, route="document_analysis_result")

def forward(request, deployment, context):
    query = "&".join(f"{name}={value}" for name, value in request.query.items())
    headers = {"ocp-apim-subscription-key": deployment.upstream_key}
    if "content-type" in request.headers:
        headers["content-type"] = request.headers["content-type"]
    return Upstream(os.environ["TEST_FORWARD_TO"] + request.path + "?" + query, headers, method=request.method)
'''

RECORDING_CONFIG = """
recording_sets:
  - name: documents
deployments:
  - name: prebuilt-layout
    model: document-intelligence
    mode: replay_or_record
    recording_set: documents
    upstream_endpoint: http://127.0.0.1:9   # unused: the extension's forwarder picks the upstream
    upstream_key_env: TEST_UPSTREAM_KEY
"""


def test_extension_route_records_through_its_forwarder_and_replays(tmp_path: Path) -> None:
    (tmp_path / "forwarder.py").write_text(FORWARDER)
    (tmp_path / "recording.yaml").write_text(RECORDING_CONFIG)
    upstream_key = "sim-upstream-key-0123456789"
    upstream = SimulatorServer(api_key=upstream_key, extra_env=_extension_env(
        str(EXAMPLES / "document_analysis.py"), config=EXAMPLES / "document_analysis.yaml"))
    upstream.start()
    recorder = SimulatorServer(api_key=KEY, extra_env=_extension_env(
        str(EXAMPLES / "document_analysis.py"), str(tmp_path / "forwarder.py"), config=tmp_path / "recording.yaml",
        TEST_FORWARD_TO=upstream.base_url, TEST_UPSTREAM_KEY=upstream_key))
    try:
        recorder.start()
        with httpx.Client(base_url=recorder.base_url, timeout=30.0) as client:
            document = {"urlSource": "https://example.com/recorded.pdf"}
            submitted = _analyze(client, json=document)
            assert submitted.status_code == 202, submitted.text
            location = submitted.headers["operation-location"]
            assert location.startswith(upstream.base_url)  # the upstream's answer, passed on
            result_path = location.removeprefix(upstream.base_url)
            time.sleep(3 * SECONDS_PER_PAGE + 0.2)  # the upstream finishes (at most 3 pages) before the poll
            recorded = _poll(client, result_path)
            assert recorded.status_code == 200 and recorded.json()["status"] == "succeeded"

            upstream.stop()  # from here on only recordings can answer

            def replayed() -> None:
                again = _analyze(client, json=document)
                assert again.status_code == 202, again.text
                assert again.headers["operation-location"] == location
                assert _poll(client, result_path).json() == recorded.json()

            eventually(replayed)  # recordings are saved off the response path
            other = _analyze(client, json={"urlSource": "https://example.com/never-recorded.pdf"})
            assert other.status_code == 502  # a miss goes to the (stopped) upstream
    finally:
        upstream.stop()
        recorder.stop()


# --- opting out, and hooks that share a request's context -------------------------------------------------

OPT_OUTS = '''
from generators_app.extensions import Response

def register(sim):
    sim.add_route("open", r"^open$", auth=False, metrics=False)
    sim.add_route("counted", r"^counted$", auth=False)
    sim.add_request_hook(gate, route="open")
    sim.add_request_hook(gate, route="counted")
    sim.add_generator(answer, route="open")
    sim.add_generator(answer, route="counted")

def gate(request, deployment, context):
    if request.headers.get("x-block"):
        return Response({"blocked": True}, status=403)
    context.values["seen_by_hook"] = request.route

async def answer(request, deployment, context):
    return Response({"route": request.route, "hook": context.values.get("seen_by_hook")})
'''


def test_routes_opt_out_of_auth_and_metrics_and_hooks_share_the_context(tmp_path: Path) -> None:
    (tmp_path / "opt_outs.py").write_text(OPT_OUTS)
    with SimulatorServer(api_key=KEY, extra_env=_extension_env(str(tmp_path / "opt_outs.py"))) as running, \
            httpx.Client(base_url=running.base_url, timeout=30.0) as client:
        for path in ("/open", "/counted"):
            answered = client.post(path)  # no key: both routes opted out of auth
            assert answered.status_code == 200
            assert answered.json() == {"route": path[1:], "hook": path[1:]}
            blocked = client.post(path, headers={"x-block": "1"})
            assert blocked.status_code == 403 and blocked.json() == {"blocked": True}

        def only_the_counted_route_is_in_the_metrics() -> None:
            metrics = client.get("/metrics").text
            assert 'operation="counted"' in metrics
            assert 'operation="open"' not in metrics

        eventually(only_the_counted_route_is_in_the_metrics)
        lines = running.log_text()
        assert '"path":"/counted"' in lines.replace(" ", "") and '"path":"/open"' not in lines.replace(" ", "")


# --- a broken extension stops the start ----------------------------------------------------------------

BROKEN = {
    "syntax.py": ("def register(sim)\n    pass\n", ["SyntaxError", "syntax.py, line 1"]),
    "raises.py": ("def register(sim):\n    raise RuntimeError('no licence file')\n",
                  ["register() of extension", "RuntimeError: no licence file", "raises.py, line 2"]),
    "bad_route.py": ("def register(sim):\n    sim.add_route('x', '^x/(')\n",
                     ["route 'x'", "is not a regular expression", "bad_route.py, line 2"]),
    "no_register.py": ("VALUE = 1\n", ["has no register(sim) function"]),
    "unknown_target.py": ("def register(sim):\n    sim.add_generator(lambda r, d, c: None, route='nowhere')\n",
                          ["registered for route 'nowhere'", "which no extension added"]),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_extension_stops_the_start_with_a_readable_error(tmp_path: Path, name: str) -> None:
    source, expected = BROKEN[name]
    (tmp_path / name).write_text(source)
    env = {**os.environ, "SIMULATOR_DATA_DIR": str(tmp_path / "data"), "SIMULATOR_EXTENSIONS": str(tmp_path / name)}
    finished = subprocess.run([sys.executable, "manage.py", "serve", "--port", "1"], cwd=PROJECT_DIR, env=env,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode != 0
    assert "Serving on" not in finished.stdout
    error = finished.stderr.strip()
    assert error.startswith("error: SIMULATOR_EXTENSIONS:") and "Traceback" not in error, error
    assert len(error.splitlines()) == 1
    for fragment in expected:
        assert fragment in error, error


def test_a_missing_extension_module_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "SIMULATOR_DATA_DIR": str(tmp_path), "SIMULATOR_EXTENSIONS": "examples.no_such_extension"}
    finished = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT_DIR, env=env, capture_output=True,
                              text=True, timeout=60)
    assert finished.returncode != 0
    assert "no module named 'examples.no_such_extension'" in finished.stderr
