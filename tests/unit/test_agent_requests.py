"""Whatever an agent sends to chat or the Responses API, the answer is a 4xx or a well-formed answer, never a
crash: hypothesis builds requests from tools, tool choices, formats, input items and schemas of any shape."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators_app import operations
from generators_app.answers import JsonAnswer, StreamAnswer
from generators_app.catalogue import Operation, get_model
from generators_app.errors import ApiError
from generators_app.registry import DeploymentConfig
from generators_app.response_store import response_store
from tests.support.reference import parse_sse

DEPLOYMENTS = [
    DeploymentConfig(name=name, model=get_model(name), mode="generate", output_tokens_mean=20, output_tokens_std=5,
                     tool_call_probability=0.7)
    for name in ("gpt-4o-mini", "o4-mini")
]
_SCALAR = st.none() | st.booleans() | st.integers(-5, 50) | st.text(max_size=6)
_SCHEMA = st.recursive(
    _SCALAR | st.sampled_from(["object", "array", "string", "integer", "number", "#", "#/$defs/a"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "properties", "items", "required", "enum", "const", "anyOf", "$ref", "$defs",
                         "minItems", "maxItems", "pattern", "format", "minimum", "additionalProperties", "a"]),
        children, max_size=4),
    max_leaves=12,
)
_OBJECT_SCHEMA = st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
    st.sampled_from(["city", "n", "when", "tags"]), _SCHEMA, max_size=3)}, optional={
    "required": st.lists(st.sampled_from(["city", "n", "when", "x"]), max_size=3),
    "additionalProperties": st.booleans()})
_PARAMETERS = _OBJECT_SCHEMA | st.dictionaries(st.text(max_size=3), _SCALAR, max_size=2)
_NAMES = st.sampled_from(["get_weather", "search", "f"])


def _chat_tool(name: str, parameters: Any, strict: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters, "strict": strict}}


_TOOL_CHOICE = st.sampled_from(["auto", "none", "required", None]) | _NAMES.map(
    lambda name: {"type": "function", "function": {"name": name}})
_MESSAGE = st.sampled_from([
    {"role": "user", "content": "Reply in json please"},
    {"role": "system", "content": "Use tools."},
    {"role": "assistant", "content": "ok"},
    {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                          "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
])
_FORMAT = st.none() | st.sampled_from([{"type": "text"}, {"type": "json_object"}]) | st.builds(
    lambda schema, strict: {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": strict}},
    _OBJECT_SCHEMA, st.booleans() | st.none())


def _check(operation: Operation, payload: dict[str, Any], deployment: DeploymentConfig) -> None:
    try:
        prepared = operations.prepare(operation, orjson.loads(orjson.dumps(payload)), deployment)
    except ApiError as error:
        assert 400 <= error.status < 500
        return
    answer = prepared.generate([])
    if isinstance(answer, StreamAnswer):
        events = parse_sse(b"".join(answer.frames).decode())
        assert events
    else:
        assert isinstance(answer, JsonAnswer) and answer.status == 200
        orjson.loads(answer.body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(_MESSAGE, min_size=1, max_size=5),
    tools=st.none() | st.lists(st.builds(_chat_tool, _NAMES, _PARAMETERS, st.booleans() | st.none()), max_size=3),
    tool_choice=_TOOL_CHOICE,
    response_format=_FORMAT,
    extras=st.fixed_dictionaries({}, optional={
        "stream": st.booleans(), "n": st.integers(1, 3), "max_completion_tokens": st.integers(1, 60),
        "logprobs": st.booleans(), "top_logprobs": st.integers(0, 5), "parallel_tool_calls": st.booleans(),
        "reasoning_effort": st.sampled_from(["low", "high"]), "seed": st.integers(0, 9)}),
    deployment=st.sampled_from(DEPLOYMENTS),
)
def test_chat_requests_answer_or_refuse(messages, tools, tool_choice, response_format, extras, deployment) -> None:
    payload: dict[str, Any] = {"messages": messages, **extras}
    for key, value in (("tools", tools), ("tool_choice", tool_choice), ("response_format", response_format)):
        if value is not None:
            payload[key] = value
    _check(Operation.CHAT, payload, deployment)


_ITEM = st.sampled_from([
    {"role": "user", "content": "Reply in json"},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    {"type": "item_reference", "id": "msg_1"},
])
_TEXT_FORMAT = st.none() | st.sampled_from([{"type": "text"}, {"type": "json_object"}]) | st.builds(
    lambda schema, strict: {"type": "json_schema", "name": "out", "schema": schema, "strict": strict},
    _OBJECT_SCHEMA, st.booleans() | st.none())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_ITEM, min_size=1, max_size=5) | st.just("hello"),
    tools=st.none() | st.lists(st.builds(lambda n, p, s: {"type": "function", "name": n, "parameters": p,
                                                          "strict": s}, _NAMES, _PARAMETERS, st.booleans()),
                               max_size=3) | st.just([{"type": "web_search_preview"}]),
    tool_choice=st.sampled_from(["auto", "none", "required", None]) | _NAMES.map(
        lambda name: {"type": "function", "name": name}),
    text_format=_TEXT_FORMAT,
    extras=st.fixed_dictionaries({}, optional={
        "stream": st.booleans(), "max_output_tokens": st.integers(10, 60), "store": st.booleans(),
        "instructions": st.text(max_size=10), "include": st.just(["message.output_text.logprobs"]),
        "top_logprobs": st.integers(0, 3), "reasoning": st.just({"effort": "low"}),
        "previous_response_id": st.sampled_from(["resp_missing"])}),
    deployment=st.sampled_from(DEPLOYMENTS),
)
def test_responses_requests_answer_or_refuse(items, tools, tool_choice, text_format, extras, deployment) -> None:
    response_store.reset()
    payload: dict[str, Any] = {"model": deployment.name, "input": items, **extras}
    for key, value in (("tools", tools), ("tool_choice", tool_choice)):
        if value is not None:
            payload[key] = value
    if text_format is not None:
        payload["text"] = {"format": text_format}
    _check(Operation.RESPONSES, payload, deployment)
