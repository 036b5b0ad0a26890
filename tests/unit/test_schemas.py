"""The pydantic request models and the mapping of their errors to OpenAI's 400 body."""

from __future__ import annotations

import pytest

from generators_app.errors import ApiError
from generators_app.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, parse_request

USER = [{"role": "user", "content": "hi"}]


def _error(model: type, body: object) -> dict:
    with pytest.raises(ApiError) as caught:
        parse_request(model, body)
    assert caught.value.status == 400
    error = caught.value.body["error"]
    assert error["type"] == "invalid_request_error"
    return error


def test_a_valid_chat_body_parses_with_unknown_fields_ignored() -> None:
    request = parse_request(ChatCompletionRequest, {"messages": USER, "n": 2, "some_new_sdk_field": True})
    assert request.n == 2
    assert request.messages[0].role == "user"


@pytest.mark.parametrize(
    ("body", "param", "code", "fragment"),
    [
        ({}, "messages", "missing_required_parameter", "Missing required parameter: 'messages'"),
        ({"messages": []}, "messages", "empty_array", "minimum length 1"),
        ({"messages": [{"role": "bogus", "content": "x"}]}, "messages[0].role", "invalid_value", "'bogus'"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "missing_required_parameter", "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type", "expected a string"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id",
         "missing_required_parameter", "tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
         "messages[0].content[0].text", "invalid_type", "expected a string"),
        ({"messages": USER, "tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter",
         "function"),
        ({"messages": USER, "n": "2"}, "n", "invalid_type", "expected an integer, but got a string"),
        ({"messages": USER, "n": 0}, "n", "invalid_value", "below the minimum of 1"),
        ({"messages": USER, "temperature": 2.5}, "temperature", "invalid_value", "above the maximum"),
        ({"messages": USER, "response_format": {"type": "xml"}}, "response_format.type", "invalid_value", "'xml'"),
        ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length", "maximum length 4"),
        ({"messages": USER, "stream": "yes"}, "stream", "invalid_type", "expected a boolean"),
    ],
)
def test_chat_errors_name_the_parameter(body: dict, param: str, code: str, fragment: str) -> None:
    error = _error(ChatCompletionRequest, body)
    assert error["param"] == param
    assert error["code"] == code
    assert fragment in error["message"]


def test_a_body_that_is_not_an_object() -> None:
    assert _error(ChatCompletionRequest, [1, 2])["code"] == "invalid_type"


def test_completion_prompt_shapes() -> None:
    for prompt in ("text", ["a", "b"], [1, 2, 3], [[1, 2], [3]]):
        assert parse_request(CompletionRequest, {"prompt": prompt}).prompt == prompt
    assert parse_request(CompletionRequest, {"prompt": "x"}).max_tokens == 16  # the legacy API's default
    assert _error(CompletionRequest, {"prompt": {"a": 1}})["param"] == "prompt"


def test_embedding_validation() -> None:
    assert parse_request(EmbeddingRequest, {"input": "x", "encoding_format": "base64"}).encoding_format == "base64"
    assert _error(EmbeddingRequest, {"input": "x", "encoding_format": "hex"})["param"] == "encoding_format"
    assert _error(EmbeddingRequest, {"input": "x", "dimensions": 0})["param"] == "dimensions"
