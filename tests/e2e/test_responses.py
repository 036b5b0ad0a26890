"""The Responses API through the real server, driven by the official openai SDK and raw HTTP: the object and the
named-event stream as recorded, function tools and agent loops, previous_response_id, structured outputs and
reasoning models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from generators_app.tokens import count_responses_input, count_text, count_tool_calls_output
from tests.support.reference import key_paths, load_cassette, parse_sse, union_key_paths
from tests.support.server import SimulatorServer

RESPONSES_API_VERSION = "2025-03-01-preview"  # what the recordings used
QUESTION = [{"role": "user", "content": "What is 4200 + 42?"}]
SECRET_TOOL = load_cassette("tools-responses-sync")[0].request.body["tools"][0]
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Current weather in a city.", "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "days": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["city", "unit", "days"], "additionalProperties": False,
    },
}
STREAM_ORDER_TEXT = ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added"]
STREAM_ORDER_TEXT_END = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


def _count(text: str) -> int:
    return count_text("o200k_base", text)


@pytest.fixture(scope="module")
def azure(base_url: str, api_key: str) -> Iterator[openai.AzureOpenAI]:
    client = openai.AzureOpenAI(azure_endpoint=base_url, api_key=api_key, api_version=RESPONSES_API_VERSION,
                                max_retries=0)
    yield client
    client.close()


def _post(http: httpx.Client, api_key: str, body: dict[str, Any], path: str | None = None) -> httpx.Response:
    return http.post(path or f"/openai/responses?api-version={RESPONSES_API_VERSION}", json=body,
                     headers={"api-key": api_key})


# --- plain and streaming -----------------------------------------------------------------------------------
def test_plain_response_on_azure(azure: openai.AzureOpenAI) -> None:
    raw = azure.responses.with_raw_response.create(model="gpt-4o-mini", input=QUESTION)
    assert raw.http_request.url.path == "/openai/responses"
    response = raw.parse()
    assert response.id.startswith("resp_") and len(response.id) == 55
    assert response.object == "response" and response.status == "completed" and response.model == "gpt-4o-mini"
    assert response.usage.input_tokens == 16  # what real AOAI counts for this input
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert response.usage.output_tokens == _count(response.output_text) > 0
    assert response.usage.total_tokens == 16 + response.usage.output_tokens
    assert raw.headers["content-type"] == "application/json"


def test_streaming_events_come_in_the_recorded_order(azure: openai.AzureOpenAI) -> None:
    events = list(azure.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True))
    kinds = [event.type for event in events]
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert kinds == [*STREAM_ORDER_TEXT, *["response.output_text.delta"] * len(deltas), *STREAM_ORDER_TEXT_END,
                     "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    text = "".join(event.delta for event in deltas)
    assert text == final.output_text and final.usage.output_tokens == _count(text) == len(deltas)
    assert len({event.response.id for event in events if hasattr(event, "response")}) == 1


def test_max_output_tokens_makes_the_response_incomplete(azure: openai.AzureOpenAI) -> None:
    ask = [{"role": "user", "content": "List all U.S. states."}]
    response = azure.responses.create(model="gpt-4o-mini", input=ask, max_output_tokens=50)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.input_tokens == 14 and response.usage.output_tokens == 50 == _count(response.output_text)
    assert response.output[0].status == "incomplete"
    events = list(azure.responses.create(model="gpt-4o-mini", input=ask, max_output_tokens=50, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.usage.output_tokens == 50
    with pytest.raises(openai.BadRequestError) as error:
        azure.responses.create(model="gpt-4o-mini", input=ask, max_output_tokens=5)
    assert error.value.body["param"] == "max_output_tokens"


def test_instructions_and_a_string_input(openai_client: openai.OpenAI) -> None:
    response = openai_client.responses.create(model="gpt-4.1-mini", instructions="Answer in one sentence.",
                                              input="Why is the sky blue?")
    assert response.instructions == "Answer in one sentence."
    assert response.usage.input_tokens == count_responses_input("o200k_base", "Why is the sky blue?",
                                                                "Answer in one sentence.")


@pytest.mark.parametrize("client_name", ["openai_client", "aoai_v1_client"])
def test_v1_surfaces_serve_responses(client_name: str, request: pytest.FixtureRequest) -> None:
    client: openai.OpenAI = request.getfixturevalue(client_name)
    response = client.responses.create(model="gpt-4o-mini", input=QUESTION)
    assert response.status == "completed" and response.usage.input_tokens == 16


# --- tools and agent loops -----------------------------------------------------------------------------------
def test_function_tool_calls_carry_valid_arguments(azure: openai.AzureOpenAI) -> None:
    ask = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    for _ in range(10):
        response = azure.responses.create(model="gpt-4o-mini", input=ask, tools=[WEATHER_TOOL], tool_choice="required")
        calls = [item for item in response.output if item.type == "function_call"]
        assert calls and len(calls) == len(response.output)
        for call in calls:
            assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")
            jsonschema.validate(json.loads(call.arguments), WEATHER_TOOL["parameters"])
        pairs = [(call.name, call.arguments) for call in calls]
        assert response.usage.output_tokens == count_tool_calls_output("o200k_base", pairs)


def test_streamed_function_calls_assemble_into_the_final_ones(azure: openai.AzureOpenAI) -> None:
    events = list(azure.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[WEATHER_TOOL],
                                         tool_choice={"type": "function", "name": "get_weather"}, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    (call,) = events[-1].response.output
    assert call.arguments == arguments and json.loads(arguments)["unit"] in ("celsius", "fahrenheit")


def test_agent_loop_with_previous_response_id(azure: openai.AzureOpenAI) -> None:
    ask = [{"role": "user", "content": "Please retrieve the secrets for mellon and radiance."}]
    first = azure.responses.create(model="gpt-4o-mini", input=ask, tools=[SECRET_TOOL], tool_choice="required")
    calls = [item for item in first.output if item.type == "function_call"]
    outputs = [{"type": "function_call_output", "call_id": call.call_id, "output": f"secret {i}"}
               for i, call in enumerate(calls)]
    second = azure.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input=outputs,
                                    tools=[SECRET_TOOL])
    assert second.previous_response_id == first.id
    assert second.output[-1].type == "message" and second.output_text  # after the tools' output: words
    history = [*ask, *({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                       for c in calls), *outputs]
    assert second.usage.input_tokens == count_responses_input("o200k_base", history, None, [SECRET_TOOL])
    third = azure.responses.create(model="gpt-4o-mini", previous_response_id=second.id, input="Thanks!")
    assert third.usage.input_tokens > second.usage.input_tokens + second.usage.output_tokens


def test_agent_loop_with_the_whole_history_matches_the_recorded_count(http: httpx.Client, api_key: str) -> None:
    recorded = load_cassette("tools-responses-sync")[1]  # the follow-up: calls and their outputs inline
    answer = _post(http, api_key, recorded.request.body).json()
    assert answer["usage"]["input_tokens"] == 137 == recorded.response.body["usage"]["input_tokens"]
    assert [item["type"] for item in answer["output"]] == ["message"]  # tool_choice none: words


def test_bad_references_are_refused(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        azure.responses.create(model="gpt-4o-mini", input="hi", previous_response_id="resp_unknown")
    assert error.value.code == "previous_response_not_found"
    unstored = azure.responses.create(model="gpt-4o-mini", input="hi", store=False)
    assert unstored.store is False
    with pytest.raises(openai.BadRequestError):
        azure.responses.create(model="gpt-4o-mini", input="again", previous_response_id=unstored.id)
    with pytest.raises(openai.BadRequestError) as error:
        azure.responses.create(model="gpt-4o-mini", tools=[SECRET_TOOL],
                               input=[{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}])
    assert "call_nowhere" in error.value.message


def test_routing_errors_in_the_aoai_shape(http: httpx.Client, api_key: str) -> None:
    missing_version = _post(http, api_key, {"model": "gpt-4o-mini", "input": "hi"}, "/openai/responses")
    assert missing_version.status_code == 404
    assert missing_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    unknown = _post(http, api_key, {"model": "no-such-deployment", "input": "hi"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "DeploymentNotFound"
    wrong_model = _post(http, api_key, {"model": "text-embedding-3-small", "input": "hi"})
    assert wrong_model.status_code == 400 and wrong_model.json()["error"]["code"] == "OperationNotSupported"
    no_input = _post(http, api_key, {"model": "gpt-4o-mini"})
    assert no_input.status_code == 400 and no_input.json()["error"]["param"] == "input"


# --- structured outputs, reasoning, logprobs ---------------------------------------------------------------
class Recipe(BaseModel):
    title: str
    servings: int
    ingredients: list[str]
    vegetarian: bool


def test_structured_output_parses_into_the_model(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.parse(model="gpt-4o-mini", input="A soup recipe, please.", text_format=Recipe)
    assert isinstance(response.output_parsed, Recipe)
    assert response.text.format.type == "json_schema" and response.text.format.name == "Recipe"
    assert response.usage.output_tokens == _count(response.output_text)


def test_reasoning_models_count_reasoning_inside_output_tokens(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model="o4-mini", input=QUESTION, reasoning={"effort": "high"})
    assert response.output[0].type == "reasoning" and response.reasoning.effort == "high"
    reasoning = response.usage.output_tokens_details.reasoning_tokens
    assert reasoning > 0 and response.usage.output_tokens == reasoning + _count(response.output_text)
    with pytest.raises(openai.BadRequestError) as error:
        azure.responses.create(model="gpt-4o-mini", input=QUESTION, reasoning={"effort": "low"})
    assert error.value.body["param"] == "reasoning.effort"


def test_logprobs_when_included(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model="gpt-4o-mini", input=QUESTION, top_logprobs=3,
                                      include=["message.output_text.logprobs"])
    part = response.output[0].content[0]
    assert len(part.logprobs) == response.usage.output_tokens
    assert "".join(entry.token for entry in part.logprobs) == part.text
    assert all(len(entry.top_logprobs) == 3 and entry.logprob <= 0 for entry in part.logprobs)


# --- the wire: keys and events as recorded -----------------------------------------------------------------
_CASSETTES = ["basic-responses-sync", "max-tokens-responses-sync", "tools-responses-sync"]
_STREAM_CASSETTES = ["basic-responses-stream", "max-tokens-responses-stream", "tools-responses-stream"]


def _replayable(body: dict[str, Any], index: int, name: str) -> dict[str, Any]:
    # The first request of a tools recording left tool_choice to the model: force the call the model made.
    return {**body, "tool_choice": "required"} if name.startswith("tools") and index == 0 else body


@pytest.mark.parametrize("name", _CASSETTES)
def test_objects_carry_every_recorded_key_in_the_recorded_order(http: httpx.Client, api_key: str, name: str) -> None:
    for index, interaction in enumerate(load_cassette(name)):
        ours = _post(http, api_key, _replayable(interaction.request.body, index, name)).json()
        recorded = interaction.response.body
        assert key_paths(recorded) <= key_paths(ours), key_paths(recorded) - key_paths(ours)
        assert list(ours) == list(recorded)
        # the same kind of items (a tool-call answer may make another number of calls), with the same keys
        assert {item["type"] for item in ours["output"]} == {item["type"] for item in recorded["output"]}
        assert {tuple(item) for item in ours["output"]} == {tuple(item) for item in recorded["output"]}
        assert ours["usage"]["input_tokens"] == recorded["usage"]["input_tokens"]


@pytest.mark.parametrize("name", _STREAM_CASSETTES)
def test_events_carry_every_recorded_key(http: httpx.Client, api_key: str, name: str) -> None:
    for index, interaction in enumerate(load_cassette(name)):
        response = _post(http, api_key, _replayable(interaction.request.body, index, name))
        assert response.headers["content-type"].startswith("text/event-stream")
        ours = parse_sse(response.text)
        recorded = interaction.response.body
        assert ours[0]["event"] == "response.created" and ours[-1]["event"] == recorded[-1]["event"]
        for event in ours:
            assert event["data"]["type"] == event["event"]
        kinds = {event["event"] for event in recorded}
        assert kinds <= {event["event"] for event in ours}
        for kind in kinds:
            theirs = union_key_paths(e["data"] for e in recorded if e["event"] == kind)
            mine = union_key_paths(e["data"] for e in ours if e["event"] == kind)
            assert theirs <= mine, (kind, theirs - mine)
        # the same skeleton: the recorded sequence of event kinds with runs of deltas collapsed
        assert _skeleton(ours) == _skeleton(recorded)


def _skeleton(events: list[dict[str, Any]]) -> list[str]:
    """The kinds of events in order, runs of deltas collapsed to one, and repeated output items (a second call
    of the same shape) collapsed to one."""
    blocks: list[list[str]] = [[]]
    for event in events:
        kind = event["event"]
        if kind == "response.output_item.added" or kind in ("response.completed", "response.incomplete"):
            blocks.append([])
        block = blocks[-1]
        if not (kind.endswith(".delta") and block and block[-1] == kind):
            block.append(kind)
    out: list[str] = []
    previous: list[str] | None = None
    for block in blocks:
        if block != previous:
            out.extend(block)
        previous = block
    return out


def test_streamed_function_calls_follow_the_recorded_skeleton_for_one_call(http: httpx.Client, api_key: str) -> None:
    body = {**load_cassette("tools-responses-stream")[0].request.body, "parallel_tool_calls": False,
            "tool_choice": "required"}
    kinds = _skeleton(parse_sse(_post(http, api_key, body).text))
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.function_call_arguments.delta", "response.function_call_arguments.done",
                     "response.output_item.done", "response.completed"]


# --- several worker processes ------------------------------------------------------------------------------
def _redis_url() -> str | None:
    import os

    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        return url if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping() else None
    except redis.RedisError:
        return None


def test_previous_response_id_works_across_worker_processes_with_redis(api_key: str) -> None:
    url = _redis_url()
    if url is None:
        pytest.skip("no Redis: responses are per process without it (docs/agents.md)")
    with SimulatorServer(api_key=api_key, workers=2, extra_env={"REDIS_URL": url}) as server:
        # A new connection per turn, so that turns land on either worker (without Redis about half of them
        # would then miss the previous response).
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=api_key, max_retries=0,
                               default_headers={"connection": "close"})
        previous = client.responses.create(model="gpt-4o-mini", input="Turn 0")
        seen = previous.usage.input_tokens
        for turn in range(1, 16):
            response = client.responses.create(model="gpt-4o-mini", input=f"Turn {turn}",
                                               previous_response_id=previous.id)
            assert response.usage.input_tokens > seen
            seen, previous = response.usage.input_tokens, response
        client.close()
