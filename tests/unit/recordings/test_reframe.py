"""Re-framing recorded answers between JSON and SSE, checked against real AOAI traffic (tests/reference)."""

from __future__ import annotations

import json

import pytest

from recordings_app.recorder import parse_event
from recordings_app.reframe import (
    DONE,
    ReframeError,
    object_from_stream,
    pieces,
    stream_from_object,
)
from tests.support.reference import (
    CHAT_COMPLETION_CHUNK,
    CHAT_COMPLETION_RESPONSE,
    COMPLETION_RESPONSE,
    key_paths,
    load_cassette,
    parse_sse,
    validate_against_spec,
)


def recorded_events(name: str) -> list[tuple[str | None, str]]:
    """The cassette's SSE body split into events exactly as record mode captures them."""
    raw = load_cassette(name)[0].response.raw.replace("\r\n", "\n")
    events = [parse_event(block) for block in raw.split("\n\n")]
    return [event for event in events if event is not None]


def as_sse_text(events: list[tuple[str | None, str]]) -> str:
    out = []
    for name, data in events:
        out.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
    return "".join(out)


def test_pieces_rebuild_the_text() -> None:
    for text in ["4200 + 42 equals 4242.", "  leading and trailing  ", "one\nline two", ""]:
        assert "".join(pieces(text)) == text
    assert pieces("a b c") == ["a", " b", " c"]


@pytest.mark.parametrize("name", ["basic-chat-stream", "max-tokens-chat-stream", "tools-chat-stream"])
def test_a_recorded_chat_stream_assembles_into_a_valid_completion(name: str) -> None:
    events = recorded_events(name)
    body = object_from_stream("chat", events)
    validate_against_spec(body, CHAT_COMPLETION_RESPONSE)
    chunks = [json.loads(data) for _, data in events if data != DONE]
    choice = body["choices"][0]
    streamed_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert (choice["message"]["content"] or "") == streamed_text
    assert choice["finish_reason"] == [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"]
    assert body["id"] == chunks[1]["id"] and body["object"] == "chat.completion"
    assert body["prompt_filter_results"] == chunks[0]["prompt_filter_results"]
    # Every field the real non-stream answer's message has, ours has too.
    sync = load_cassette(name.replace("-stream", "-sync"))[0].response.body
    assert key_paths(sync["choices"][0]["message"]) <= key_paths(choice["message"])


def test_streamed_tool_calls_assemble_with_ids_and_whole_arguments() -> None:
    body = object_from_stream("chat", recorded_events("tools-chat-stream"))
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [call["id"] for call in calls] == ["call_GF8LHohCf34vryrD5mTlArH8", "call_7KowxRhncpXrPLQpuAMemn0y"]
    assert [json.loads(call["function"]["arguments"]) for call in calls] == [
        {"password": "mellon"}, {"password": "radiance"}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("name", ["basic-chat-sync", "max-tokens-chat-sync", "tools-chat-sync"])
@pytest.mark.parametrize("include_usage", [False, True])
def test_a_recorded_chat_completion_reframes_into_aoai_chunks_and_back(name: str, include_usage: bool) -> None:
    body = load_cassette(name)[0].response.body
    events = stream_from_object("chat", body, include_usage)
    parsed = parse_sse(as_sse_text(events))
    assert parsed[-1]["data"] == "[DONE]"
    chunks = [event["data"] for event in parsed[:-1]]
    assert chunks[0]["choices"] == [] and chunks[0]["prompt_filter_results"] == body["prompt_filter_results"]
    for chunk in chunks[1:]:
        if chunk.get("usage") is None:
            validate_against_spec(chunk, CHAT_COMPLETION_CHUNK)
        assert chunk["id"] == body["id"] and chunk["created"] == body["created"]
    assert (chunks[-1].get("usage") == body["usage"]) is include_usage
    back = object_from_stream("chat", events)
    for key in ("id", "created", "model", "system_fingerprint", "prompt_filter_results"):
        assert back[key] == body[key]
    original, rebuilt = body["choices"][0], back["choices"][0]
    assert rebuilt["finish_reason"] == original["finish_reason"]
    for key in ("content", "refusal", "role"):
        assert rebuilt["message"][key] == original["message"][key]
    assert rebuilt["message"].get("tool_calls") == original["message"].get("tool_calls")


def test_completions_roundtrip() -> None:
    body = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-35-turbo-instruct",
            "choices": [{"text": "This is a test", "index": 0, "finish_reason": "length", "logprobs": None}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}}
    events = stream_from_object("completions", body, include_usage=True)
    for _, data in events[:-1]:
        chunk = json.loads(data)
        if chunk["choices"] and chunk["choices"][0]["finish_reason"]:  # the spec's shape has it non-null
            validate_against_spec(chunk, COMPLETION_RESPONSE)
    back = object_from_stream("completions", events)
    assert back["choices"][0]["text"] == "This is a test"
    assert back["choices"][0]["finish_reason"] == "length"
    assert back["usage"] == body["usage"]


@pytest.mark.parametrize("name", ["basic-responses-stream", "tools-responses-stream"])
def test_a_responses_stream_assembles_into_its_final_response(name: str) -> None:
    events = recorded_events(name)
    final = json.loads(events[-1][1])
    assert final["type"] == "response.completed"
    assert object_from_stream("responses", events) == final["response"]


@pytest.mark.parametrize("name", ["basic-responses", "tools-responses"])
def test_a_responses_object_reframes_into_the_same_event_sequence(name: str) -> None:
    body = load_cassette(f"{name}-sync")[0].response.body
    ours = stream_from_object("responses", body, include_usage=False)
    real = recorded_events(f"{name}-stream")

    def kinds(events: list[tuple[str | None, str]]) -> list[str]:
        collapsed: list[str] = []
        for kind, _ in events:  # deltas come in different numbers: compare one per run
            if not (collapsed and kind.endswith(".delta") and collapsed[-1] == kind):
                collapsed.append(kind)
        return collapsed

    assert kinds(ours) == kinds(real)
    sequence = [json.loads(data)["sequence_number"] for _, data in ours]
    assert sequence == list(range(len(ours)))
    assert object_from_stream("responses", ours) == body


def test_content_that_is_not_what_the_operation_returns_is_refused() -> None:
    with pytest.raises(ReframeError):
        stream_from_object("chat", {"data": []}, include_usage=False)
    with pytest.raises(ReframeError):
        object_from_stream("chat", [(None, "{not json")])
    with pytest.raises(ReframeError):
        object_from_stream("responses", [(None, "{}")])
    assert stream_from_object("embeddings", {"data": []}, include_usage=False) is None
