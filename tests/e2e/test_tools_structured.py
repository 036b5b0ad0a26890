"""Tool calls, structured outputs, reasoning and logprobs in chat completions, through the real server and the
official openai SDK (AzureOpenAI and OpenAI clients, streaming included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from generators_app.tokens import count_chat_prompt, count_text, count_tool_calls_output
from tests.support.reference import key_paths, load_cassette, parse_sse, union_key_paths
from tests.support.server import SimulatorServer

AZURE_API_VERSION = "2024-10-21"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 5},
                "details": {"type": "object", "properties": {"wind": {"type": "boolean"},
                            "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23},
                                      "minItems": 1, "maxItems": 3}},
                            "required": ["wind", "hours"]},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
SEARCH = {"type": "function", "function": {"name": "search_docs", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": ["integer", "null"]}},
    "required": ["query", "limit"], "additionalProperties": False}, "strict": True}}
TOOLS = [WEATHER, SEARCH]
ASK = [{"role": "user", "content": "What's the weather in Paris, and find the docs about umbrellas."}]


def _count(text: str) -> int:
    return count_text("o200k_base", text)


def _schema_of(name: str) -> dict[str, Any]:
    return next(tool["function"]["parameters"] for tool in TOOLS if tool["function"]["name"] == name)


def _chat(http: httpx.Client, api_key: str, body: dict[str, Any], deployment: str = "gpt-4o-mini") -> httpx.Response:
    return http.post(f"/openai/deployments/{deployment}/chat/completions?api-version={AZURE_API_VERSION}",
                     json=body, headers={"api-key": api_key})


# --- tool calls ----------------------------------------------------------------------------------------------
def test_required_tool_calls_have_arguments_valid_against_the_schema(azure_client: openai.AzureOpenAI) -> None:
    names = set()
    for _ in range(15):
        completion = azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=TOOLS,
                                                          tool_choice="required")
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        for call in choice.message.tool_calls:
            assert call.id.startswith("call_") and call.type == "function"
            jsonschema.validate(json.loads(call.function.arguments), _schema_of(call.function.name))
            names.add(call.function.name)
        pairs = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls]
        assert completion.usage.completion_tokens == count_tool_calls_output("o200k_base", pairs)
        assert completion.usage.prompt_tokens == count_chat_prompt("o200k_base", ASK, TOOLS, "required")
    assert names == {"get_weather", "search_docs"}


def test_a_named_function_is_the_one_called(openai_client: openai.OpenAI) -> None:
    for _ in range(5):
        completion = openai_client.chat.completions.create(
            model="gpt-4.1-mini", messages=ASK, tools=TOOLS, parallel_tool_calls=False,
            tool_choice={"type": "function", "function": {"name": "search_docs"}},
        )
        (call,) = completion.choices[0].message.tool_calls
        assert call.function.name == "search_docs"
        jsonschema.validate(json.loads(call.function.arguments), _schema_of("search_docs"))


def test_auto_sometimes_calls_and_sometimes_answers(azure_client: openai.AzureOpenAI) -> None:
    finishes = [azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=TOOLS).choices[0]
                .finish_reason for _ in range(30)]
    assert {"tool_calls", "stop"} <= set(finishes)  # the default deployments call with probability 0.5
    none = azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=TOOLS, tool_choice="none")
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content


def test_streamed_tool_calls_assemble_with_the_sdk(azure_client: openai.AzureOpenAI) -> None:
    with azure_client.chat.completions.stream(model="gpt-4o-mini", messages=ASK, tools=TOOLS,
                                              tool_choice="required") as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    for call in choice.message.tool_calls:
        jsonschema.validate(json.loads(call.function.arguments), _schema_of(call.function.name))


def test_streamed_tool_call_chunks_look_like_the_recording(http: httpx.Client, api_key: str) -> None:
    recorded = load_cassette("tools-chat-stream")[0]
    body = {**recorded.request.body, "tool_choice": "required"}
    chunks = [event["data"] for event in parse_sse(_chat(http, api_key, body).text)]
    assert chunks[-1] == "[DONE]"
    chunks = chunks[:-1]
    theirs = [c for c in recorded.response.body if isinstance(c["data"], dict)]
    assert union_key_paths(c["data"] for c in theirs) <= union_key_paths(chunks)
    assert chunks[1]["choices"][0]["delta"] == {"content": None, "role": "assistant"}
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[2:-1]]
    firsts = [d for d in deltas if "id" in d]
    assert all(set(d) == {"function", "id", "index", "type"} and d["function"]["arguments"] == "" for d in firsts)
    assert all(set(d) == {"function", "index"} and set(d["function"]) == {"arguments"}
               for d in deltas if "id" not in d)
    assert [d["index"] for d in firsts] == list(range(len(firsts)))
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["choices"][0]["delta"] == {}
    for position in range(len(firsts)):
        arguments = "".join(d["function"]["arguments"] for d in deltas if d["index"] == position)
        assert json.loads(arguments)["password"]


def test_tool_call_answer_carries_every_recorded_key(http: httpx.Client, api_key: str) -> None:
    recorded = load_cassette("tools-chat-sync")[0]
    ours = _chat(http, api_key, {**recorded.request.body, "tool_choice": "required"}).json()
    assert key_paths(recorded.response.body) <= key_paths(ours)
    assert list(ours["choices"][0]["message"]) == list(recorded.response.body["choices"][0]["message"])
    assert ours["choices"][0]["content_filter_results"] == {}
    assert list(ours["choices"][0]["message"]["tool_calls"][0]) == ["function", "id", "type"]


def test_agent_loop_call_then_tool_output_then_words(azure_client: openai.AzureOpenAI) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Use the tools."}, *ASK]
    first = azure_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS,
                                                 tool_choice="required")
    calls = first.choices[0].message.tool_calls
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": call.id, "content": f"result {i}"} for i, call in enumerate(calls)]
    final = azure_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content
    assert final.usage.prompt_tokens == count_chat_prompt("o200k_base", messages, TOOLS)


def test_the_recorded_follow_up_gets_the_recorded_prompt_count(http: httpx.Client, api_key: str) -> None:
    recorded = load_cassette("tools-chat-sync")[1]
    ours = _chat(http, api_key, recorded.request.body).json()
    assert ours["usage"]["prompt_tokens"] == 149 == recorded.response.body["usage"]["prompt_tokens"]
    assert ours["choices"][0]["finish_reason"] == "stop"


def test_broken_tool_conversations_are_refused(azure_client: openai.AzureOpenAI) -> None:
    orphan = [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "42"}]
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=orphan, tools=TOOLS)
    assert error.value.body["param"] == "messages.[1].role"
    call = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    unanswered = [*ASK, {"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "and?"}]
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=unanswered, tools=TOOLS)
    assert "call_a" in error.value.message
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tool_choice="required")
    assert error.value.body["param"] == "tool_choice"


# --- structured outputs --------------------------------------------------------------------------------------
class Priority(StrEnum):
    LOW = "low"
    HIGH = "high"
    URGENT = "urgent"


class Person(BaseModel):
    name: str
    age: int


class Address(BaseModel):
    street: str
    city: str
    postcode: str


class Customer(BaseModel):
    name: str
    address: Address


class LineItem(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{3}$")
    quantity: int = Field(ge=1, le=99)
    unit_price: float = Field(ge=0)


class Order(BaseModel):
    id: str
    customer: Customer
    items: list[LineItem]


class Ticket(BaseModel):
    title: str
    priority: Priority
    status: Literal["open", "closed"]


class Playlist(BaseModel):
    name: str
    songs: list[str] = Field(min_length=2, max_length=5)


class Profile(BaseModel):
    nickname: str | None
    website: str | None
    age: int | None


class Measurement(BaseModel):
    value: float = Field(ge=0, le=100)
    count: int = Field(gt=0, lt=10)
    ratio: float = Field(gt=0, lt=1)


class TreeNode(BaseModel):
    name: str
    children: list[TreeNode]


class Meeting(BaseModel):
    starts_at: datetime
    day: date
    id: UUID


class Circle(BaseModel):
    radius: float


class Square(BaseModel):
    side: float


class Drawing(BaseModel):
    shapes: list[Circle | Square]
    title: str | None


class Employee(BaseModel):
    name: str
    role: Priority
    reports: list[Employee]


class Department(BaseModel):
    name: str
    employees: list[Employee]
    budget: int | None


class Flags(BaseModel):
    active: bool
    version: Literal[2]
    labels: list[Literal["a", "b", "c"]]


STRUCTURED_MODELS = [Person, Order, Ticket, Playlist, Profile, Measurement, TreeNode, Meeting, Drawing, Department,
                     Flags]


@pytest.mark.parametrize("model", STRUCTURED_MODELS, ids=[m.__name__ for m in STRUCTURED_MODELS])
def test_parse_gives_the_pydantic_model(azure_client: openai.AzureOpenAI, model: type[BaseModel]) -> None:
    for _ in range(3):
        completion = azure_client.chat.completions.parse(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Make me a {model.__name__}."}],
            response_format=model,
        )
        message = completion.choices[0].message
        assert isinstance(message.parsed, model)
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage.completion_tokens == _count(message.content)


def test_streamed_structured_output_parses(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=[{"role": "user", "content": "An order"}],
                                               response_format=Order) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Order)


def test_json_object_mode(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Answer in JSON."}],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert isinstance(json.loads(content), dict) and completion.usage.completion_tokens == _count(content)
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK,
                                             response_format={"type": "json_object"})
    assert "json" in error.value.message


def test_a_cap_cuts_structured_output_at_exactly_the_cap(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "An order"}], max_tokens=7,
        response_format={"type": "json_schema", "json_schema": {"name": "Order", "schema": Order.model_json_schema()}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 7 == _count(choice.message.content)


def test_strict_schemas_are_checked_like_the_service_does(azure_client: openai.AzureOpenAI) -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK,
            response_format={"type": "json_schema", "json_schema": {"name": "Loose", "schema": loose, "strict": True}},
        )
    assert "'additionalProperties' is required to be supplied and to be false" in error.value.message
    non_strict = azure_client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "Loose", "schema": loose}},
    )
    jsonschema.validate(json.loads(non_strict.choices[0].message.content), loose)
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=[
            {"type": "function", "function": {"name": "f", "parameters": remote}}])
    assert error.value.body["param"] == "tools[0].function.parameters"


# --- reasoning and logprobs ----------------------------------------------------------------------------------
def test_reasoning_tokens_are_counted_inside_the_budget(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(model="o4-mini", messages=ASK, reasoning_effort="low")
    usage = completion.usage
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0 and reasoning % 64 == 0
    assert usage.completion_tokens == reasoning + _count(completion.choices[0].message.content)
    capped = azure_client.chat.completions.create(model="o3-mini", messages=ASK, max_completion_tokens=300)
    assert capped.usage.completion_tokens == 300 and capped.choices[0].finish_reason == "length"
    assert capped.usage.completion_tokens_details.reasoning_tokens + _count(capped.choices[0].message.content) == 300
    with pytest.raises(openai.BadRequestError) as error:
        azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, reasoning_effort="low")
    assert error.value.body["param"] == "reasoning_effort"


def test_logprobs_plain_and_streamed(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, logprobs=True,
                                                      top_logprobs=2, max_tokens=20)
    entries = completion.choices[0].logprobs.content
    assert len(entries) == 20 and "".join(e.token for e in entries) == completion.choices[0].message.content
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries)
    stream = azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, logprobs=True, max_tokens=10,
                                                  stream=True)
    streamed = [c.choices[0].logprobs.content[0] for c in stream if c.choices and c.choices[0].delta.content]
    assert len(streamed) == 10 and all(entry.top_logprobs == [] for entry in streamed)
    plain = azure_client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=5)
    assert plain.choices[0].logprobs is None


# --- an agent deployment: tool_choice "auto" always calls, until a tool has answered ----------------------------
@pytest.fixture(scope="module")
def agent_server(api_key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    config = tmp_path_factory.mktemp("agents") / "agents.yaml"
    config.write_text("deployments:\n  - name: agent\n    model: gpt-4.1-mini\n    tool_call_probability: 1.0\n")
    with SimulatorServer(api_key=api_key, extra_env={"SIMULATOR_CONFIG": str(config)}) as server:
        yield server


def test_agent_loops_with_auto_tool_choice_in_both_apis(agent_server: SimulatorServer, api_key: str) -> None:
    client = openai.OpenAI(base_url=f"{agent_server.base_url}/v1", api_key=api_key, max_retries=0)
    # chat: call, answer the calls, words
    messages: list[dict[str, Any]] = list(ASK)
    turns = 0
    while True:
        turns += 1
        message = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS).choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        messages += [{"role": "tool", "tool_call_id": c.id, "content": "done"} for c in message.tool_calls]
    assert turns == 2 and messages[-1]["content"]
    # Responses: the same loop through previous_response_id
    tools = [{"type": "function", **tool["function"]} for tool in TOOLS]
    response = client.responses.create(model="agent", input="Weather in Lisbon?", tools=tools)
    turns = 1
    while calls := [item for item in response.output if item.type == "function_call"]:
        outputs = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"} for call in calls]
        response = client.responses.create(model="agent", previous_response_id=response.id, input=outputs,
                                           tools=tools)
        turns += 1
    assert turns == 2 and response.output_text
    client.close()
