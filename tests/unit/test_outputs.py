"""Answers decided by outputs.py: tool calls vs text vs JSON, and token counts that stay exact."""

from __future__ import annotations

import json
import math
import random

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators_app.generation.logprobs import token_logprobs
from generators_app.generation.outputs import AnswerSpec, FunctionSpec, fit_text, plan_output
from generators_app.generation.text import text_generator
from generators_app.tokens import count_text, count_tool_calls_output

O200K = "o200k_base"
WEATHER = FunctionSpec("get_weather", {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "unit", "days"], "additionalProperties": False,
})
TIME = FunctionSpec("get_time", {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]})
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
          "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4}},
          "required": ["name", "age", "tags"], "additionalProperties": False}


def _plan(spec: AnswerSpec, length: int = 40, finish: str = "stop", cap: int | None = None, seed: int = 1):
    return plan_output(spec, text_generator(O200K), length, finish, cap, random.Random(seed))


def test_required_tool_choice_always_calls_with_valid_arguments() -> None:
    spec = AnswerSpec(functions=(WEATHER, TIME), tool_mode="required")
    for seed in range(50):
        plan = _plan(spec, seed=seed)
        assert plan.finish_reason == "tool_calls" and plan.tool_calls and plan.pieces == []
        for call in plan.tool_calls:
            function = WEATHER if call.name == "get_weather" else TIME
            jsonschema.validate(json.loads(call.arguments), function.parameters)
            assert "".join(call.pieces) == call.arguments
            assert call.call_id.startswith("call_") and len(call.call_id) == 29
        calls = [(c.name, c.arguments) for c in plan.tool_calls]
        assert plan.content_tokens == count_tool_calls_output(O200K, calls)


def test_named_function_is_called_alone_and_parallel_off_gives_one_call() -> None:
    named = AnswerSpec(functions=(WEATHER, TIME), tool_mode="named", named_function="get_time")
    single = AnswerSpec(functions=(WEATHER, TIME), tool_mode="required", parallel_tool_calls=False)
    for seed in range(30):
        assert [c.name for c in _plan(named, seed=seed).tool_calls] == ["get_time"]
        assert len(_plan(single, seed=seed).tool_calls) == 1
    parallel = AnswerSpec(functions=(WEATHER,), tool_mode="required")
    assert max(len(_plan(parallel, seed=seed).tool_calls) for seed in range(60)) > 1


def test_auto_follows_the_probability_and_answers_after_a_tool_output() -> None:
    spec = AnswerSpec(functions=(WEATHER,), tool_mode="auto", tool_call_probability=0.3)
    calls = sum(bool(_plan(spec, seed=seed).tool_calls) for seed in range(400))
    assert 80 < calls < 160  # 0.3 of 400, with room for chance
    always = AnswerSpec(functions=(WEATHER,), tool_mode="auto", tool_call_probability=1.0)
    assert all(_plan(always, seed=seed).tool_calls for seed in range(20))
    answered = AnswerSpec(functions=(WEATHER,), tool_mode="auto", tool_call_probability=1.0, after_tool_output=True)
    assert not any(_plan(answered, seed=seed).tool_calls for seed in range(20))
    assert not _plan(AnswerSpec(functions=(WEATHER,), tool_mode="none"), seed=1).tool_calls


def test_chat_arguments_are_spaced_and_responses_arguments_compact() -> None:
    spaced = _plan(AnswerSpec(functions=(WEATHER,), tool_mode="named", named_function="get_weather"))
    compact = _plan(AnswerSpec(functions=(WEATHER,), tool_mode="named", named_function="get_weather",
                               compact_arguments=True))
    assert '": ' in spaced.tool_calls[0].arguments  # as recorded: {"password": "mellon"}
    assert '": ' not in compact.tool_calls[0].arguments  # as recorded: {"password":"mellon"}


def test_tool_call_tokens_match_the_recorded_parallel_answer() -> None:
    calls = [("secret_retrieval_tool", '{"password": "mellon"}'), ("secret_retrieval_tool", '{"password": "radiance"}')]
    assert count_tool_calls_output(O200K, calls) == 54  # tools-chat-sync and tools-responses-sync


@pytest.mark.parametrize("output_format", ["json_object", "json_schema"])
def test_json_answers_count_exactly_what_the_tokenizer_counts(output_format: str) -> None:
    spec = AnswerSpec(output_format=output_format, json_schema=PERSON if output_format == "json_schema" else None)
    for seed in range(30):
        plan = _plan(spec, seed=seed)
        value = json.loads(plan.text)
        assert isinstance(value, dict)
        if output_format == "json_schema":
            jsonschema.validate(value, PERSON)
        assert plan.finish_reason == "stop"
        assert plan.content_tokens == count_text(O200K, plan.text) == plan.completion_tokens


@settings(max_examples=150, deadline=None)
@given(cap=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_a_cap_cuts_json_at_exactly_the_cap(cap: int, seed: int) -> None:
    plan = _plan(AnswerSpec(output_format="json_schema", json_schema=PERSON), cap=cap, seed=seed)
    full = count_text(O200K, plan.text)
    assert plan.content_tokens == full <= cap
    if plan.finish_reason == "length":
        assert full == cap
    else:
        json.loads(plan.text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1, max_size=80), cap=st.integers(1, 30))
def test_fit_text_is_exact_even_for_multibyte_text(text: str, cap: int) -> None:
    pieces, tokens, cut = fit_text(O200K, text, cap)
    joined = "".join(pieces)
    assert count_text(O200K, joined) == tokens <= cap
    assert cut == (count_text(O200K, text) > cap)
    if not cut:
        assert joined == text
    else:
        assert text.startswith(joined)


def test_tool_calls_cut_by_the_cap_bill_exactly_the_cap() -> None:
    spec = AnswerSpec(functions=(WEATHER,), tool_mode="required")
    for cap in (3, 10, 14, 20):
        plan = _plan(spec, cap=cap)
        assert plan.finish_reason == "length" and plan.content_tokens == cap and len(plan.tool_calls) == 1


def test_reasoning_tokens_count_inside_the_budget() -> None:
    spec = AnswerSpec(reasoning_effort="medium")
    free = _plan(spec, length=30)
    assert free.reasoning_tokens % 64 == 0 and free.reasoning_tokens >= 128
    assert free.completion_tokens == free.reasoning_tokens + 30 == free.reasoning_tokens + count_text(O200K, free.text)
    capped = _plan(spec, length=1000, finish="length", cap=1000)
    assert capped.completion_tokens == 1000 and capped.finish_reason == "length"
    starved = _plan(spec, cap=50)  # less than any medium reasoning: all of it went to reasoning
    assert starved.reasoning_tokens == 50 and starved.pieces == [] and starved.finish_reason == "length"
    efforts = {effort: sum(_plan(AnswerSpec(reasoning_effort=effort), seed=s).reasoning_tokens for s in range(40))
               for effort in ("low", "medium", "high")}
    assert efforts["low"] < efforts["medium"] < efforts["high"]


def test_logprobs_are_plausible() -> None:
    pieces = text_generator(O200K).generate(200, random.Random(3))
    entries = token_logprobs(pieces, 5, random.Random(4))
    assert [entry["token"] for entry in entries] == pieces
    for entry in entries:
        assert entry["logprob"] <= 0 and entry["bytes"] == list(entry["token"].encode())
        top = entry["top_logprobs"]
        assert len(top) == 5 and entry["token"] in [t["token"] for t in top]
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert sum(math.exp(t["logprob"]) for t in top) <= 1.0 + 1e-9
    confident = sum(entry["logprob"] > -0.11 for entry in entries)
    assert 100 < confident < 200  # mostly confident, not always
    assert all(entry["top_logprobs"] == [] for entry in token_logprobs(pieces[:5], 0, random.Random(1)))
