"""Reading and writing recording files: our YAML format, vcr.py cassettes, the aoai-api-simulator format,
format detection, and line-numbered errors. No database here (see test_recording_jobs.py)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_app.formats import (
    Detected,
    Invalid,
    RecordingData,
    SetOptions,
    Skipped,
    YamlFormatError,
    ours,
    read_recordings,
    yamlwrite,
)
from recordings_app.formats.yamlio import YamlReader
from recordings_app.recorder import HOP_BY_HOP, is_secret_header
from tests.support.reference import RECORDINGS_DIR, cassette_names, load_cassette, parse_sse

SIMULATOR_FORMAT_DIR = RECORDINGS_DIR.parent / "aoai-api-simulator-format"


def read_text(text: str) -> list:
    return list(read_recordings(io.BytesIO(text.encode())))


def read_path(path: Path) -> list:
    with path.open("rb") as stream:
        return list(read_recordings(stream))


def recordings_of(items: list) -> list[RecordingData]:
    return [item for item in items if isinstance(item, RecordingData)]


def error_of(text: str) -> YamlFormatError:
    with pytest.raises(YamlFormatError) as raised:
        read_text(text)
    return raised.value


# --- vcr.py cassettes (the real AOAI traffic) -----------------------------------------------------------


def _data(text: str) -> object:
    return text if text == "[DONE]" else json.loads(text)


@pytest.mark.parametrize("name", cassette_names())
def test_each_reference_cassette_reads_as_the_recorded_exchange(name: str) -> None:
    items = read_path(RECORDINGS_DIR / f"{name}.yaml")
    assert items[0] == Detected("vcr")
    recordings = recordings_of(items)
    interactions = load_cassette(name)
    assert len(recordings) == len(interactions)
    for recording, interaction in zip(recordings, interactions, strict=True):
        assert recording.request_body == interaction.request.body
        assert recording.status == interaction.response.status
        expected_operation = "responses" if "/responses" in interaction.request.uri else "chat"
        assert (recording.operation, recording.deployment_name) == (expected_operation, "gpt-4o-mini")
        assert recording.is_stream == interaction.response.is_stream
        if recording.is_stream:
            # Every event, in order, with its name, and its data text exactly as sent (replay frames it again).
            assert [(event.get("event"), _data(event["data"])) for event in recording.stream_events] == [
                (event["event"], event["data"]) for event in parse_sse(interaction.response.raw)]
            for event in recording.stream_events:
                assert f"data: {event['data']}\n" in interaction.response.raw
            assert all(event["offset_ms"] == 0.0 for event in recording.stream_events)  # a cassette has no timing
            assert recording.body == ""
        else:
            assert recording.body == interaction.response.raw
        for header in recording.headers:
            assert header == header.lower()
            assert header not in HOP_BY_HOP and not is_secret_header(header)
        assert recording.headers["x-ms-region"] == interaction.response.headers["x-ms-region"]


def test_secrets_and_hop_by_hop_headers_of_a_cassette_are_dropped() -> None:
    cassette = {
        "interactions": [{
            "request": {"method": "POST", "uri": "https://x.openai.azure.com/openai/deployments/d1/embeddings",
                        "body": '{"input": "hi"}', "headers": {"api-key": ["sk-secret"]}},
            "response": {"status": {"code": 200}, "body": {"string": '{"data": []}'},
                         "headers": {"Set-Cookie": ["session=abc"], "Authorization": ["Bearer x"],
                                     "Transfer-Encoding": ["chunked"], "Content-Length": ["12"],
                                     "X-Upstream-Api-Key": ["sk-secret"], "apim-request-id": ["a", "b"]}},
        }],
        "version": 1,
    }
    [recording] = recordings_of(read_text(yaml.safe_dump(cassette)))
    assert recording.headers == {"apim-request-id": "a, b"}
    assert "sk-secret" not in json.dumps(recording.headers)
    assert (recording.operation, recording.deployment_name) == ("embeddings", "d1")


def test_a_gzipped_binary_answer_is_decoded() -> None:
    body = gzip.compress(b'{"object": "list", "data": []}')
    text = (
        "interactions:\n- request:\n    method: POST\n    uri: https://api.openai.com/v1/embeddings\n"
        "    body: '{\"model\": \"emb\", \"input\": \"x\"}'\n"
        "  response:\n    status: {code: 200}\n    headers: {Content-Encoding: [gzip]}\n"
        f"    body: {{string: !!binary '{__import__('base64').b64encode(body).decode()}'}}\n"
        "version: 1\n"
    )
    [recording] = recordings_of(read_text(text))
    assert recording.body == '{"object": "list", "data": []}'
    assert recording.deployment_name == "emb"  # the v1 surface names the deployment in the body
    assert "content-encoding" not in recording.headers


def test_interactions_that_cannot_replay_are_skipped_with_their_line() -> None:
    text = """interactions:
- request: {method: GET, uri: 'https://x/openai/models?api-version=2024-10-21', body: null}
  response: {status: {code: 200}, body: {string: '{}'}}
- request: {method: POST, uri: 'https://x/openai/deployments/d/audio/transcriptions', body: !!binary 'gIGC'}
  response: {status: {code: 200}, body: {string: '{"text": "hi"}'}}
- request: {method: POST, uri: 'https://x/openai/deployments/d/chat/completions', body: '{"messages": []}'}
  response: {status: {code: 502}, headers: {Content-Type: [text/html]}, body: {string: '<html>bad gateway</html>'}}
version: 1
"""
    items = read_text(text)
    assert [(type(item).__name__, getattr(item, "line", None)) for item in items[1:]] == [
        ("Skipped", 2), ("Skipped", 4), ("Skipped", 6)]
    assert "not a data-plane operation" in items[1].reason
    assert "not text" in items[2].reason
    assert "not JSON" in items[3].reason


def test_a_malformed_interaction_is_invalid_at_its_line() -> None:
    text = """interactions:
- request: {method: POST, uri: 'https://x/openai/deployments/d/chat/completions', body: '{"messages": []}'}
  response: {status: {code: 200}, body: {string: '{}'}}
- request: {method: POST, uri: 'https://x/openai/deployments/d/chat/completions', body: '{"messages": []}'}
  response:
    status: {code: two hundred}
version: 1
"""
    items = read_text(text)
    assert isinstance(items[1], RecordingData)
    assert items[2] == Invalid(6, "interaction 2: 'response.status.code' must be an HTTP status (100-599)")


def test_a_cassette_of_another_version_is_refused_at_the_version_line() -> None:
    error = error_of("interactions: []\nversion: 2\n")
    assert (error.line, "unsupported cassette version 2" in error.message) == (2, True)


# --- the aoai-api-simulator format ----------------------------------------------------------------------


def test_the_aoai_api_simulator_example_reads_with_its_duration() -> None:
    items = read_path(SIMULATOR_FORMAT_DIR / "openai_deployments_deployment1_completions.yaml")
    assert items[0] == Detected("aoai-api-simulator")
    [recording] = recordings_of(items)
    assert (recording.deployment_name, recording.operation, recording.status) == ("deployment1", "completions", 200)
    assert recording.request_body == {"prompt": "This is a test prompt", "max_tokens": 50}
    assert json.loads(recording.body)["choices"][0]["text"] == "This is a test"
    assert recording.duration_ms == 812
    assert recording.headers == {"content-type": "application/json", "x-ratelimit-remaining-tokens": "9950"}


def test_an_aoai_api_simulator_stream_spreads_its_events_over_the_duration() -> None:
    sse = b'data: {"id":"c1","choices":[{"text":"a"}]}\n\ndata: {"id":"c1","choices":[{"text":"b"}]}\n\n' \
          b"data: [DONE]\n\n"
    document = {
        "interactions": [{
            "context_values": {"Deployment-Name": "dep", "Operation-Name": "completions"},
            "request": {"method": "POST", "uri": "http://localhost:8000/openai/deployments/dep/completions",
                        "body": '{"prompt": "x", "stream": true}', "body_hash": "abc",
                        "headers": {"content-type": ["application/json"]}},
            "response": {"status": {"code": 200}, "headers": {"content-type": ["text/event-stream"]},
                         "body": {"string": sse}, "duration_ms": 300},
        }, {
            "context_values": {"Deployment-Name": "dep"},
            "request": {"method": "POST", "uri": "http://localhost:8000/openai/deployments/dep/completions",
                        "body": None, "body_hash": "9f1c", "headers": {}},
            "response": {"status": {"code": 200}, "headers": {}, "body": {"string": "{}"}, "duration_ms": 5},
        }],
        "version": 1,
    }
    items = read_text(yaml.dump(document))  # PyYAML writes the SSE bytes as !!binary, as that simulator does
    assert "!!binary" in yaml.dump(document)
    recording, skipped = items[1], items[2]
    assert [event["offset_ms"] for event in recording.stream_events] == [0.0, 150.0, 300.0]
    assert recording.stream_events[2]["data"] == "[DONE]"
    assert isinstance(skipped, Skipped) and "hash" in skipped.reason


# --- our format -----------------------------------------------------------------------------------------


def _our_file(*recordings: str, version: str = "1") -> str:
    head = ours.header_text(SetOptions(name="golden", description="d", ignore_fields=["stream", "user"],
                                       timing_factor=0.5, save_errors=True), "2026-01-01T00:00:00+00:00")
    return head.replace("version: 1", f"version: {version}") + "".join(recordings)


def _recording(**overrides: object) -> str:
    fields = {
        "deployment_name": "gpt-4o-mini", "operation": "chat", "enabled": True,
        "request_body": {"messages": [{"role": "user", "content": "Grüße 👋"}], "seed": 3},
        "status": 200, "duration_ms": 12.5, "headers": {"x-ms-region": "East US", "x-ratelimit-limit-tokens": "300"},
        "body": '{"id":"chatcmpl-1","choices":[{"message":{"content":"yes"}}]}', "is_stream": False,
        "stream_events": [],
    }
    fields.update(overrides)
    return ours.recording_text(**fields)


def test_our_format_round_trips_every_field() -> None:
    events = [
        {"offset_ms": 0.0, "data": '{"choices":[],"prompt_filter_results":[]}'},
        {"offset_ms": 350.25, "data": '{"type":"response.created","sequence_number":0}', "event": "response.created"},
        {"offset_ms": 351, "data": '{"a": 1}'},  # not compact JSON: kept as text, byte for byte
        {"offset_ms": 400.0, "data": "[DONE]"},
    ]
    pretty = '{\n  "id": "resp_1",\n  "object": "response"\n}'
    text = _our_file(
        _recording(),
        _recording(is_stream=True, body="", stream_events=events, enabled=False, operation="responses"),
        _recording(body=pretty, status=400),
    )
    items = read_text(text)
    assert items[0] == Detected(ours.FORMAT)
    options = items[1]
    assert (options.name, options.description, options.ignore_fields, options.timing_factor, options.save_errors) == (
        "golden", "d", ["stream", "user"], 0.5, True)
    first, stream, pretty_one = recordings_of(items)
    assert first.request_body == {"messages": [{"role": "user", "content": "Grüße 👋"}], "seed": 3}
    assert first.body == '{"id":"chatcmpl-1","choices":[{"message":{"content":"yes"}}]}'
    assert first.headers == {"x-ms-region": "East US", "x-ratelimit-limit-tokens": "300"}
    assert (first.status, first.duration_ms, first.enabled, first.is_stream) == (200, 12.5, True, False)
    assert stream.stream_events == [{**event, "offset_ms": float(event["offset_ms"])} for event in events]
    assert (stream.is_stream, stream.enabled, stream.operation, stream.body) == (True, False, "responses", "")
    assert pretty_one.body == pretty and pretty_one.status == 400


def test_our_format_is_readable_yaml_not_escaped_json() -> None:
    text = _our_file(_recording(body='{"id":"chatcmpl-1","choices":[{"message":{"content":"yes"}}]}\n'))
    assert "\\\"" not in text  # no escaped JSON strings anywhere
    document = yaml.safe_load(text)
    assert document["recordings"][0]["response"]["body"] == {"id": "chatcmpl-1",
                                                              "choices": [{"message": {"content": "yes"}}]}
    assert document["recordings"][0]["request"]["body"]["messages"][0]["content"] == "Grüße 👋"
    assert "    - role: user\n" in text or "      - role: user\n" in text  # nested block YAML


def test_a_hand_written_file_with_json_text_and_defaults_reads() -> None:
    text = """format: aoai-simulator-recordings
version: 1
recordings:
- deployment: d1
  operation: embeddings
  request:
    body: {input: hello}
  response:
    headers: {api-key: sk-secret, Content-Length: 64, x-ms-rai-invoked: true, x-ratelimit-limit-tokens: 300}
    body: |
      {"object": "list", "data": [{"index": 0, "embedding": [0.5]}]}
"""
    [recording] = recordings_of(read_text(text))
    assert (recording.status, recording.method, recording.enabled, recording.duration_ms) == (200, "POST", True, 0.0)
    # A credential added by hand is dropped like any imported one; YAML booleans and numbers mean their text.
    assert recording.headers == {"x-ms-rai-invoked": "true", "x-ratelimit-limit-tokens": "300"}
    assert orjson.loads(recording.body)["data"][0]["embedding"] == [0.5]


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        ("    status: 200", "    status: two hundred", "    status:", "'response.status' must be"),
        ("  operation: chat", "  operation: chatter", "  operation:", "'operation' must be one of"),
        ("    headers:", "    headerz:", "    headerz:", "unknown field 'headerz'"),
        ("    body:\n      id:", "    stream: []\n    body:\n      id:", "  response:", "either 'body' (JSON) or"),
        ("      x-ms-region: East US", "      x-ms-region: [East, US]", "      x-ms-region", "'response.headers' must"),
    ],
)
def test_a_bad_recording_is_reported_at_the_line_of_its_bad_field(old: str, new: str, marker: str,
                                                                    message: str) -> None:
    bad = _recording().replace(old, new, 1)
    assert bad != _recording()
    text = _our_file(_recording(), bad, _recording())
    items = read_text(text)
    invalid = [item for item in items if isinstance(item, Invalid)]
    assert len(recordings_of(items)) == 2 and len(invalid) == 1
    assert invalid[0].message.startswith("recording 2: ") and message in invalid[0].message, invalid
    lines = text.splitlines()
    second_starts = [number for number, line in enumerate(lines, 1) if line.startswith("- deployment:")][1]
    expected = next(number for number, line in enumerate(lines, 1) if number > second_starts and
                    line.startswith(marker))
    assert invalid[0].line == expected


def test_stream_events_must_not_go_back_in_time() -> None:
    events = [{"offset_ms": 5.0, "data": "[DONE]"}, {"offset_ms": 1.0, "data": "[DONE]"}]
    items = read_text(_our_file(_recording(is_stream=True, stream_events=events)))
    [invalid] = [item for item in items if isinstance(item, Invalid)]
    assert "goes back in time" in invalid.message


# --- detection and whole-file errors --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# only a comment\n"])
def test_an_empty_file_is_an_error(text: str) -> None:
    assert "empty" in error_of(text).message


def test_a_wrong_version_is_an_error_at_its_line() -> None:
    error = error_of(_our_file(_recording(), version="2"))
    assert error.line == 2 and "unsupported version 2" in error.message


def test_recordings_before_the_version_are_refused() -> None:
    error = error_of("format: aoai-simulator-recordings\nrecordings: []\nversion: 1\n")
    assert error.line == 2 and "'version' must come before 'recordings'" in error.message


def test_an_unknown_file_is_named_as_such() -> None:
    error = error_of("hello: world\n")
    assert error.line == 1 and "unknown file" in error.message


def test_corrupt_yaml_reports_the_line_where_it_breaks() -> None:
    text = _our_file(_recording(), _recording())
    broken = text.splitlines()
    broken[40] = broken[40] + " ]]: {"
    error = error_of("\n".join(broken))
    assert error.line in (41, 42) and "not valid YAML" in error.message


def test_a_python_object_tag_is_refused_not_constructed() -> None:
    error = error_of("format: !!python/object/apply:os.system ['echo hi']\n")
    assert "not valid YAML" in error.message and error.line == 1


# --- the writer: whatever it writes reads back equal ----------------------------------------------------

_json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64)
                 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
_json_values = st.recursive(_json_scalars, lambda children: st.lists(children, max_size=4)
                            | st.dictionaries(st.text(max_size=12), children, max_size=4), max_leaves=25)


def _read_back(text: str) -> object:
    reader = YamlReader(io.BytesIO(text.encode()))
    for _key, _line in reader.entries():
        return reader.value().value
    raise AssertionError("nothing read")


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_any_json_value_written_as_block_yaml_reads_back_equal(value: object) -> None:
    text = yamlwrite.block({"v": value})
    assert yaml.safe_load(text) == {"v": value}  # any YAML tool reads it
    assert _read_back(text) == value  # and so does ours


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_kept_verbatim_reads_back_byte_for_byte(text: str) -> None:
    written = "v:" + yamlwrite.text_after_key(text, 0)
    assert yaml.safe_load(written) == {"v": text}
    assert _read_back(written) == text
