"""Tests for tests/support/reference.py: the helpers every conformance test leans on must be right.

They also pin down what the real recordings say about the 2024-10-21 spec, so a simulator author can
see exactly where copying Azure's real behaviour means departing from the published schema.
"""

import pytest

from tests.support.reference import (
    CHAT_COMPLETION_CHUNK,
    CHAT_COMPLETION_RESPONSE,
    COMPLETION_RESPONSE,
    EMBEDDINGS_RESPONSE,
    ERROR_RESPONSE,
    KNOWN_SPEC_DISCREPANCIES,
    SpecValidationError,
    cassette_names,
    key_paths,
    load_cassette,
    parse_sse,
    spec_errors,
    spec_schema,
    union_key_paths,
    validate_against_spec,
)

CHAT_CASSETTES = [name for name in cassette_names() if "-chat-" in name]
RESPONSES_CASSETTES = [name for name in cassette_names() if "-responses-" in name]

# Events per recorded stream (one entry per interaction), counted by hand from the YAML: chat streams
# end with "data: [DONE]"; Responses API streams use named events and no [DONE].
EXPECTED_STREAM_EVENTS = {
    "basic-chat-stream": [14],
    "max-tokens-chat-stream": [54],
    "tools-chat-stream": [16, 43],
    "basic-responses-stream": [18],
    "max-tokens-responses-stream": [58],
    "refusal-responses-stream": [9],
    "tools-responses-stream": [22, 46],
}


# ------------------------------------------------------------------------------------------------ cassettes


def test_every_cassette_loads() -> None:
    assert len(cassette_names()) == 16
    for name in cassette_names():
        interactions = load_cassette(name)
        assert interactions, name
        for interaction in interactions:
            assert interaction.request.method == "POST"
            assert isinstance(interaction.request.body, dict), name
            assert interaction.response.status in (200, 400)


def test_sync_cassette_fields() -> None:
    (interaction,) = load_cassette("basic-chat-sync")
    request, response = interaction.request, interaction.response
    assert request.path == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    assert request.body["messages"][0]["content"] == "What is 4200 + 42?"
    assert request.headers["content-type"] == "application/json"
    assert response.status == 200
    assert not response.is_stream
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-ratelimit-remaining-tokens"] == "26822"
    assert response.body["object"] == "chat.completion"
    assert response.body["choices"][0]["message"]["content"] == "4200 + 42 equals 4242."
    assert response.body["usage"]["total_tokens"] == 27


def test_load_cassette_accepts_suffix_and_names_missing_ones() -> None:
    assert load_cassette("basic-chat-sync.yaml")[0].name == "basic-chat-sync"
    with pytest.raises(FileNotFoundError, match="available: basic-chat-stream"):
        load_cassette("no-such-recording")


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAM_EVENTS))
def test_recorded_streams_event_counts(name: str) -> None:
    interactions = load_cassette(name)
    counts = [len(i.response.body) for i in interactions]
    assert counts == EXPECTED_STREAM_EVENTS[name]
    for interaction in interactions:
        assert interaction.response.is_stream
        events = interaction.response.body
        assert events == parse_sse(interaction.response.raw)
        if "-chat-" in name:
            assert events[-1] == {"event": None, "data": "[DONE]"}
            assert all(e["event"] is None for e in events)
            assert all(isinstance(e["data"], dict) for e in events[:-1])
        else:
            assert all(e["event"] == e["data"]["type"] for e in events)
            assert events[0]["event"] == "response.created"


def test_recorded_chat_stream_reassembles_the_answer() -> None:
    (interaction,) = load_cassette("basic-chat-stream")
    chunks = [e["data"] for e in interaction.response.body if e["data"] != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "4200 + 42 equals 4242."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# ------------------------------------------------------------------------------------------------ parse_sse


def test_parse_sse_framing_rules() -> None:
    text = (
        ": keep-alive comment\r\n"
        "event: response.created\r\n"
        'data: {"a":\r\n'
        "data: 1}\r\n"
        "\r\n"
        'data:{"b":2}\n'
        "id: 7\n"
        "\n"
        "event: ping\n"
        "\n"
        "data: [DONE]\r\r"
    )
    assert parse_sse(text) == [
        {"event": "response.created", "data": {"a": 1}},
        {"event": None, "data": {"b": 2}},
        {"event": None, "data": "[DONE]"},
    ]


def test_parse_sse_rejects_unterminated_and_non_json() -> None:
    with pytest.raises(ValueError, match="ends inside an event"):
        parse_sse('data: {"a": 1}\n\ndata: {"b": 2}\n')
    assert parse_sse('data: {"b": 2}\n', allow_unterminated=True) == [{"event": None, "data": {"b": 2}}]
    with pytest.raises(ValueError, match="neither JSON nor"):
        parse_sse("data: hello\n\n")
    assert parse_sse("") == []


# ------------------------------------------------------------------------------------------------ spec


def test_schema_constants_exist_in_spec() -> None:
    for name in (CHAT_COMPLETION_RESPONSE, CHAT_COMPLETION_CHUNK, COMPLETION_RESPONSE, ERROR_RESPONSE):
        assert spec_schema(name)["type"] == "object"
    assert spec_schema(EMBEDDINGS_RESPONSE)["required"] == ["object", "model", "data", "usage"]
    with pytest.raises(KeyError, match="noSuchSchema"):
        spec_schema("noSuchSchema")


def _chat_spec_rejections() -> dict[tuple[str, str], list[str]]:
    """Every (recording, schema) whose recorded body the spec rejects, with the violations."""
    found: dict[tuple[str, str], list[str]] = {}
    for name in CHAT_CASSETTES:
        for interaction in load_cassette(name):
            response = interaction.response
            if response.status != 200:
                schema, bodies = ERROR_RESPONSE, [response.body]
            elif response.is_stream:
                schema = CHAT_COMPLETION_CHUNK
                bodies = [e["data"] for e in response.body if e["data"] != "[DONE]"]
            else:
                schema, bodies = CHAT_COMPLETION_RESPONSE, [response.body]
            errors = [err for body in bodies for err in spec_errors(body, schema)]
            if errors:
                found.setdefault((name, schema), []).extend(errors)
    return found


def test_recordings_match_spec_except_known_discrepancies() -> None:
    rejections = _chat_spec_rejections()
    assert set(rejections) == set(KNOWN_SPEC_DISCREPANCIES)
    for (_, schema), errors in rejections.items():
        if schema == CHAT_COMPLETION_CHUNK:
            # one leading prompt-filter chunk per stream, and only its empty "object" is wrong
            assert set(errors) == {"$.object: '' is not one of ['chat.completion.chunk']"}
        else:
            assert errors == ["$.error.type: None is not of type 'string'"]


def test_recorded_streams_only_first_chunk_breaks_spec() -> None:
    for name in ("basic-chat-stream", "max-tokens-chat-stream", "tools-chat-stream"):
        for interaction in load_cassette(name):
            chunks = [e["data"] for e in interaction.response.body if e["data"] != "[DONE]"]
            first, rest = chunks[0], chunks[1:]
            assert first["choices"] == [] and "prompt_filter_results" in first
            for chunk in rest:
                validate_against_spec(chunk, CHAT_COMPLETION_CHUNK)


def test_responses_api_error_matches_error_schema() -> None:
    # /openai/responses is not in the 2024-10-21 spec, but its error body follows the common shape.
    (interaction,) = load_cassette("refusal-responses-sync")
    validate_against_spec(interaction.response.body, ERROR_RESPONSE)


def test_nullable_is_honoured() -> None:
    # finish_reason is a nullable enum: null must pass, an unknown string must not
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": None}, "finish_reason": None}],
    }
    validate_against_spec(chunk, CHAT_COMPLETION_CHUNK)
    chunk["choices"][0]["finish_reason"] = "bogus"
    with pytest.raises(SpecValidationError, match=r"choices\[0\]\.finish_reason"):
        validate_against_spec(chunk, CHAT_COMPLETION_CHUNK)
    # nullable without "type" (oneOf sibling): an assistant message with null content
    validate_against_spec({"role": "assistant", "content": None}, "chatCompletionRequestAssistantMessage")


def test_validation_error_is_readable() -> None:
    with pytest.raises(SpecValidationError) as info:
        validate_against_spec({"id": 1, "choices": []}, CHAT_COMPLETION_RESPONSE)
    message = str(info.value)
    assert "createChatCompletionResponse" in message
    assert "$.id: 1 is not of type 'string'" in message
    assert "'created' is a required property" in message


def test_embeddings_schema_by_pointer() -> None:
    ok = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"index": 0, "object": "embedding", "embedding": [0.1, -0.2]}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    validate_against_spec(ok, EMBEDDINGS_RESPONSE)
    with pytest.raises(SpecValidationError, match="embedding"):
        validate_against_spec({**ok, "data": [{"index": 0, "object": "embedding"}]}, EMBEDDINGS_RESPONSE)


# ------------------------------------------------------------------------------------------------ key_paths


def test_key_paths_collapses_lists() -> None:
    obj = {"choices": [{"message": {"content": "a"}}, {"message": {"role": "x"}}], "n": [[{"k": 1}]], "e": []}
    assert key_paths(obj) == {
        "choices",
        "choices[].message",
        "choices[].message.content",
        "choices[].message.role",
        "n",
        "n[][].k",
        "e",
    }
    assert key_paths([{"a": 1}]) == {"[].a"}
    assert key_paths("scalar") == set()


def test_key_paths_of_recordings() -> None:
    (sync,) = load_cassette("basic-chat-sync")
    paths = key_paths(sync.response.body)
    assert {"choices[].message.content", "usage.prompt_tokens_details.cached_tokens"} <= paths
    assert "prompt_filter_results[].content_filter_results.jailbreak.detected" in paths
    (stream,) = load_cassette("basic-chat-stream")
    stream_paths = union_key_paths(e["data"] for e in stream.response.body)
    assert {"choices[].delta.content", "choices[].finish_reason", "prompt_filter_results"} <= stream_paths
