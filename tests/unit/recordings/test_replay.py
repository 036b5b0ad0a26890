"""Replay: framing decisions, timing from recorded offsets, and recordings that cannot be replayed."""

from __future__ import annotations

import json

import pytest

from recordings_app.replay import InvalidRecording, ReplayedJson, ReplayedStream, StoredAnswer, frame_event, replay
from tests.support.reference import load_cassette, parse_sse

CHAT_BODY = load_cassette("basic-chat-sync")[0].response.body


def json_recording(body: str | None = None, status: int = 200, duration_ms: float = 400.0) -> StoredAnswer:
    return StoredAnswer.from_values(
        1, status, {"Content-Type": "application/json", "x-request-id": "r-1", "Content-Length": "99",
                    "x-ms-region": "East US"},
        json.dumps(CHAT_BODY) if body is None else body, False, [], duration_ms,
    )


def stream_recording() -> StoredAnswer:
    chunks = [
        {"offset_ms": 100.0, "data": json.dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                                 "prompt_filter_results": []})},
        {"offset_ms": 150.0, "data": json.dumps({
            "id": "chatcmpl-1", "created": 5, "model": "m", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]})},
        {"offset_ms": 200.0, "data": json.dumps({
            "id": "chatcmpl-1", "created": 5, "model": "m", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})},
        {"offset_ms": 210.0, "data": "[DONE]"},
    ]
    return StoredAnswer.from_values(2, 200, {"content-type": "text/event-stream"}, "", True, chunks, 210.0)


def header(result: ReplayedJson | ReplayedStream, name: bytes) -> list[bytes]:
    return [value for key, value in result.headers if key == name]


def test_json_to_json_keeps_the_exact_body_and_scales_the_duration() -> None:
    stored = json_recording()
    result = replay(stored, "chat", want_stream=False, include_usage=False, timing_factor=0.5)
    assert isinstance(result, ReplayedJson)
    assert result.body == stored.body.encode()
    assert result.delay_s == pytest.approx(0.2)
    assert header(result, b"content-type") == [b"application/json"]
    assert header(result, b"content-length") == []  # the transport computes it
    assert header(result, b"x-ms-region") == [b"East US"]


def test_stream_to_stream_keeps_every_event_at_its_scaled_offset() -> None:
    result = replay(stream_recording(), "chat", want_stream=True, include_usage=False, timing_factor=2.0)
    assert isinstance(result, ReplayedStream)
    assert result.offsets_s == pytest.approx([0.2, 0.3, 0.4, 0.42])
    assert result.frames[-1] == b"data: [DONE]\n\n"
    assert header(result, b"content-type") == [b"text/event-stream; charset=utf-8"]


def test_timing_factor_zero_is_as_fast_as_possible() -> None:
    assert replay(stream_recording(), "chat", want_stream=True, include_usage=False,
                  timing_factor=0).offsets_s == [0, 0, 0, 0]
    assert replay(json_recording(), "chat", want_stream=False, include_usage=False, timing_factor=0).delay_s == 0


def test_a_json_request_gets_a_stream_recording_assembled_after_its_whole_duration() -> None:
    result = replay(stream_recording(), "chat", want_stream=False, include_usage=False, timing_factor=1.0)
    assert isinstance(result, ReplayedJson)
    body = json.loads(result.body)
    assert body["choices"][0]["message"]["content"] == "Hi"
    assert body["object"] == "chat.completion"
    assert result.delay_s == pytest.approx(0.21)


def test_a_stream_request_gets_a_json_recording_reframed_over_its_duration() -> None:
    result = replay(json_recording(), "chat", want_stream=True, include_usage=True, timing_factor=1.0)
    assert isinstance(result, ReplayedStream)
    events = parse_sse(b"".join(result.frames).decode())
    assert events[-1]["data"] == "[DONE]"
    assert events[-2]["data"]["usage"] == CHAT_BODY["usage"]
    assert result.offsets_s[0] == 0 and result.offsets_s[-1] == pytest.approx(0.4)
    assert result.offsets_s == sorted(result.offsets_s)


def test_an_error_recording_is_json_even_to_a_stream_request() -> None:
    error = json.dumps({"error": {"code": "429", "message": "slow down"}})
    result = replay(json_recording(error, status=429), "chat", want_stream=True, include_usage=False,
                    timing_factor=1.0)
    assert isinstance(result, ReplayedJson) and result.status == 429 and result.body == error.encode()


def test_a_stored_body_that_is_not_json_is_a_clear_error() -> None:
    broken = json_recording('{"choices": [')
    with pytest.raises(InvalidRecording) as caught:
        replay(broken, "chat", want_stream=False, include_usage=False, timing_factor=1.0)
    body = caught.value.error_body()["error"]
    assert body["code"] == "simulator_invalid_recording"
    assert "recording 1" in body["message"] and "not valid JSON" in body["message"]


def test_stored_events_are_checked_when_loaded() -> None:
    with pytest.raises(InvalidRecording, match="stream event 1 has no text 'data'"):
        StoredAnswer.from_values(3, 200, {}, "", True, [{"offset_ms": 0, "data": "x"}, {"offset_ms": 1}], 1)
    with pytest.raises(InvalidRecording, match="offset_ms"):
        StoredAnswer.from_values(3, 200, {}, "", True, [{"offset_ms": -5, "data": "x"}], 1)


def test_named_and_multi_line_events_are_framed_as_sse() -> None:
    assert frame_event("response.created", '{"a":1}') == b'event: response.created\ndata: {"a":1}\n\n'
    assert frame_event(None, "line one\nline two") == b"data: line one\ndata: line two\n\n"


def test_a_non_json_answer_replays_as_recorded() -> None:
    srt = "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n"
    stored = StoredAnswer.from_values(4, 200, {"content-type": "text/plain; charset=utf-8"}, srt, False, [], 90)
    result = replay(stored, "audio_transcriptions", want_stream=False, include_usage=False, timing_factor=1.0)
    assert isinstance(result, ReplayedJson)
    assert result.body == srt.encode() and header(result, b"content-type") == [b"text/plain; charset=utf-8"]


def test_recorded_usage_gives_the_completion_tokens() -> None:
    assert json_recording().completion_tokens == CHAT_BODY["usage"]["completion_tokens"]
    assert json_recording('{"broken').completion_tokens == 0
