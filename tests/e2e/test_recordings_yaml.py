"""Recording files imported with `manage.py import_recordings` replay through the running server to the
official openai SDK: the real AOAI traffic (vcr.py cassettes), the aoai-api-simulator format, and this
simulator's own YAML after an export, a wipe and a re-import."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.reference import RECORDINGS_DIR, cassette_names, load_cassette
from tests.support.server import SimulatorServer
from tests.support.waiting import eventually as wait_for

REPO = Path(__file__).resolve().parents[2]
SIMULATOR_FORMAT_FILE = (RECORDINGS_DIR.parent / "aoai-api-simulator-format"
                         / "openai_deployments_deployment1_completions.yaml")
CHAT_VERSION, RESPONSES_VERSION = "2024-10-21", "2025-03-01-preview"  # as recorded

# `stream` is matched (not ignored, unlike the default): each cassette has a stream and a non-stream exchange
# of the same messages, and each request must find its own recording, not take turns with its twin.
CONFIG = """
recording_sets:
  - name: real-aoai
    ignore_fields: [user, seed, metadata, stream_options]
    timing_factor: 0
  - name: round-trip
    ignore_fields: [user, seed, metadata, stream_options]
    timing_factor: 0
  - name: simulator-format
deployments:
  - name: replay-aoai
    model: gpt-4o-mini
    mode: replay
    recording_set: real-aoai
  - name: replay-round-trip
    model: gpt-4o-mini
    mode: replay
    recording_set: round-trip
  - name: deployment1
    model: gpt-35-turbo-instruct
    mode: replay
    recording_set: simulator-format
"""


def manage(server: SimulatorServer, *args: str) -> str:
    """A management command on the server's own database, as a script would run it."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=server.child_env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry on a failed assertion or a replay miss (404) only: any other SDK error fails at once."""
    return wait_for(check, timeout, retry_on=(AssertionError, openai.NotFoundError))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    with SimulatorServer(extra_env={"SIMULATOR_CONFIG_POLL_SECONDS": "0.2"}) as running:
        config = tmp_path_factory.mktemp("config") / "replay.yaml"
        config.write_text(CONFIG)
        manage(running, "apply_config", str(config))
        cassettes = [str(path) for path in sorted(RECORDINGS_DIR.glob("*.yaml"))]
        assert "Imported 20 recording(s) into 'real-aoai'" in manage(running, "import_recordings", *cassettes,
                                                                        "--set", "real-aoai")
        yield running


def azure(server: SimulatorServer, api_version: str) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key, api_version=api_version,
                              max_retries=0)


def _kwargs(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "model": "replay-aoai"}


def sdk_answer(server: SimulatorServer, uri: str, body: dict[str, Any]) -> Any:
    """What the SDK hands the application for this recorded request: the parsed object, every stream event
    as a dict, or the error body."""
    is_responses = "/responses" in uri
    client = azure(server, RESPONSES_VERSION if is_responses else CHAT_VERSION)
    create = client.responses.create if is_responses else client.chat.completions.create
    try:
        answer = create(**_kwargs(body))
        if body.get("stream"):
            return [event.to_dict() for event in answer]
        return answer.to_dict()
    except openai.APIStatusError as error:
        return {"status": error.status_code, "error": error.body}
    finally:
        client.close()


def recorded_answer(interaction: Any) -> Any:
    response = interaction.response
    if response.status >= 400:
        return {"status": response.status, "error": response.body["error"]}
    if response.is_stream:
        return [event["data"] for event in response.body if event["data"] != "[DONE]"]
    return response.body


@pytest.mark.parametrize("name", cassette_names())
def test_real_aoai_cassettes_replay_their_exact_answers_to_the_sdk(server: SimulatorServer, name: str) -> None:
    for interaction in load_cassette(name):
        answer = eventually(lambda interaction=interaction: sdk_answer(server, interaction.request.uri,
                                                                       interaction.request.body))
        assert answer == recorded_answer(interaction)


def test_aoai_api_simulator_recording_replays_with_its_recorded_duration(server: SimulatorServer) -> None:
    output = manage(server, "import_recordings", str(SIMULATOR_FORMAT_FILE), "--set", "simulator-format")
    assert "format: aoai-api-simulator" in output
    client = azure(server, "2023-12-01-preview")

    def replayed() -> tuple[Any, float]:
        started = time.monotonic()
        completion = client.completions.create(model="deployment1", prompt="This is a test prompt", max_tokens=50)
        return completion, time.monotonic() - started

    completion, elapsed = eventually(replayed)
    assert completion.choices[0].text == "This is a test"
    assert completion.id == "cmpl-1" and completion.usage.total_tokens == 57
    assert elapsed >= 0.8  # the recorded duration_ms (812) at the set's timing factor 1.0
    with pytest.raises(openai.NotFoundError, match="simulator_replay_miss"):
        client.completions.create(model="deployment1", prompt="Another prompt", max_tokens=50)
    client.close()


def raw_replay(server: SimulatorServer, uri: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Status and answer on the wire: parsed JSON, or the SSE text exactly as framed."""
    deployment = "replay-round-trip"
    path = uri.split("openai.azure.com", 1)[1].replace("/deployments/gpt-4o-mini/", f"/deployments/{deployment}/")
    request_body = {**body, "model": deployment} if "/responses" in path else body
    response = httpx.post(server.base_url + path, json=request_body, headers={"api-key": server.api_key},
                          timeout=30)
    if response.headers["content-type"].startswith("text/event-stream"):
        return response.status_code, response.text
    return response.status_code, response.json()


def test_export_wipe_import_replays_identically(server: SimulatorServer, tmp_path: Path) -> None:
    cassettes = [str(path) for path in sorted(RECORDINGS_DIR.glob("*.yaml"))]
    manage(server, "import_recordings", *cassettes, "--set", "round-trip")
    interactions = [item for name in cassette_names() for item in load_cassette(name)]
    before = [eventually(lambda item=item: raw_replay(server, item.request.uri, item.request.body))
              for item in interactions]
    assert [status for status, _ in before] == [item.response.status for item in interactions]
    for item, (_, answer) in zip(interactions, before, strict=True):
        # Streams go out byte for byte as AOAI sent them; JSON answers parse to what AOAI sent.
        assert answer == (item.response.raw if item.response.is_stream else item.response.body)

    export = tmp_path / "round-trip.yaml"
    exported = manage(server, "export_recordings", "--set", "round-trip", "--out", str(export))
    assert "Exported 20 recording(s)" in exported
    manage(server, "shell", "-c",
           "from recordings_app.models import Recording; Recording.objects.filter(recording_set__name='round-trip')"
           ".delete()")
    first = interactions[0]

    def wiped() -> None:
        status, answer = raw_replay(server, first.request.uri, first.request.body)
        assert status == 404 and answer["error"]["code"] == "simulator_replay_miss"

    eventually(wiped)
    imported = manage(server, "import_recordings", str(export), "--set", "round-trip")
    assert "format: aoai-simulator-recordings" in imported

    def restored() -> None:
        assert raw_replay(server, first.request.uri, first.request.body)[0] == 200

    eventually(restored)
    after = [raw_replay(server, item.request.uri, item.request.body) for item in interactions]
    assert after == before
