"""What one answer is made of — prose, JSON or tool calls, plus hidden reasoning — with exact token counts.

Chat completions and the Responses API frame answers differently but decide them the same way, here:
- tool calls when tools are offered and `tool_choice` is `required` or names a function, or is `auto` and the
  deployment's `tool_call_probability` says so (never right after a tool's output: then the model answers);
- JSON when a structured output is asked (`json_object`, or `json_schema` with a schema instance);
- prose otherwise, from the token-exact text generator.
Reasoning models first spend reasoning tokens (drawn by effort, in the 64-token steps the service bills);
they count inside the completion budget, so `max_completion_tokens` covers reasoning and visible tokens.

Token accounting: visible text and JSON count exactly what the tokenizer counts for the text sent; a JSON
answer longer than the cap is cut at exactly the cap (finish `length`), as the real service cuts it. Tool
calls count their arguments plus the framing calibrated in `tokens.count_tool_calls_output`.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

import orjson

from generators_app.generation.json_schema import SchemaError, generate_instance
from generators_app.generation.text import TextGenerator
from generators_app.tokens import count_tool_calls_output, get_encoding, tool_call_output_overhead

__all__ = ["AnswerSpec", "FunctionSpec", "OutputPlan", "ToolCallPlan", "fit_text", "plan_output"]

_ALNUM = string.ascii_letters + string.digits
# Reasoning effort -> range of 64-token steps spent before the answer.
_REASONING_STEPS = {"minimal": (0, 1), "low": (1, 3), "medium": (2, 8), "high": (6, 20)}
_REASONING_STEP_TOKENS = 64
# How many calls an answer makes when parallel calls are allowed: mostly one, sometimes two or three.
_PARALLEL_CALL_COUNTS = (1, 2, 3)
_PARALLEL_CALL_WEIGHTS = (0.6, 0.3, 0.1)
_JSON_OBJECT_FRAMING = 6  # tokens of `{"answer":"` and `"}` around the text of a json_object answer


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    """What the request asks the answer to be, whichever API it came through."""

    functions: tuple[FunctionSpec, ...] = ()
    tool_mode: str = "none"  # none | auto | required | named
    named_function: str | None = None
    tool_call_probability: float = 0.0
    parallel_tool_calls: bool = True
    after_tool_output: bool = False  # the last input is a tool's result: answer it in words
    output_format: str = "text"  # text | json_object | json_schema
    json_schema: dict[str, Any] | None = None
    compact_arguments: bool = False  # Responses writes `{"a":1}`; chat's arguments read `{"a": 1}`
    reasoning_effort: str | None = None  # set for reasoning models only


@dataclass(slots=True)
class ToolCallPlan:
    call_id: str
    name: str
    arguments: str
    pieces: list[str]  # the arguments, one string per streamed delta


@dataclass(slots=True)
class OutputPlan:
    pieces: list[str]  # visible content, one string per streamed delta (empty for tool calls)
    finish_reason: str  # stop | length | tool_calls
    content_tokens: int  # tokens of what is visible (text, JSON, or the tool calls with their framing)
    reasoning_tokens: int = 0
    tool_calls: list[ToolCallPlan] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return self.content_tokens + self.reasoning_tokens


def call_id(rng: random.Random | None = None) -> str:
    return "call_" + "".join((rng or random).choices(_ALNUM, k=24))


def draw_reasoning_tokens(effort: str | None, rng: random.Random) -> int:
    low, high = _REASONING_STEPS.get(effort or "medium", _REASONING_STEPS["medium"])
    return _REASONING_STEP_TOKENS * rng.randint(low, high)


def wants_tool_call(spec: AnswerSpec, rng: random.Random) -> bool:
    if not spec.functions or spec.tool_mode == "none":
        return False
    if spec.tool_mode in ("required", "named"):
        return True
    if spec.after_tool_output:
        return False
    return rng.random() < spec.tool_call_probability


def plan_output(
    spec: AnswerSpec,
    generator: TextGenerator,
    length: int,
    finish_reason: str,
    cap: int | None,
    rng: random.Random,
) -> OutputPlan:
    """One answer. `length`/`finish_reason` are what prose would get (the cap, or a drawn length); JSON and
    tool calls end where their content ends, unless the cap cuts them first."""
    reasoning = 0
    if spec.reasoning_effort is not None:
        reasoning = draw_reasoning_tokens(spec.reasoning_effort, rng)
        if cap is not None:
            reasoning = min(reasoning, cap)
    room = None if cap is None else cap - reasoning
    if room == 0:  # the budget went to reasoning: nothing visible, as o-series models do
        return OutputPlan([], "length", 0, reasoning)
    if wants_tool_call(spec, rng):
        plan = _tool_calls(spec, generator.encoding_name, room, rng)
    elif spec.output_format in ("json_object", "json_schema"):
        text = _json_text(spec, generator, length, rng)
        pieces, tokens, cut = fit_text(generator.encoding_name, text, room)
        plan = OutputPlan(pieces, "length" if cut else "stop", tokens)
    else:
        visible = room if room is not None else length
        plan = OutputPlan(generator.generate(visible, rng), "length" if cap is not None else finish_reason, visible)
    plan.reasoning_tokens = reasoning
    return plan


def _json_text(spec: AnswerSpec, generator: TextGenerator, length: int, rng: random.Random) -> str:
    if spec.output_format == "json_schema" and spec.json_schema is not None:
        value = _instance(spec.json_schema, rng)
    else:  # json_object: an object whose text is about as long as prose would have been
        value = {"answer": "".join(generator.generate(max(length - _JSON_OBJECT_FRAMING, 1), rng))}
    return _compact_json(value)


def _instance(schema: dict[str, Any], rng: random.Random) -> Any:
    try:
        return generate_instance(schema, rng)
    except SchemaError:  # refused up front (answer_specs); kept so that an answer can never fail half-made
        return {}


def _compact_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()  # the same text as json.dumps(separators=(",", ":")), 10x faster
    except TypeError:  # an integer beyond 64 bits (from a schema's const or enum)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _arguments(function: FunctionSpec, compact: bool, rng: random.Random) -> str:
    parameters = function.parameters
    value = _instance(parameters, rng) if parameters else {}
    return _compact_json(value) if compact else json.dumps(value, ensure_ascii=False)


def _tool_calls(spec: AnswerSpec, encoding_name: str, room: int | None, rng: random.Random) -> OutputPlan:
    if spec.tool_mode == "named":
        chosen = [next(f for f in spec.functions if f.name == spec.named_function)]
    else:
        count = rng.choices(_PARALLEL_CALL_COUNTS, _PARALLEL_CALL_WEIGHTS)[0] if spec.parallel_tool_calls else 1
        chosen = [rng.choice(spec.functions) for _ in range(count)]
    calls = [(function.name, _arguments(function, spec.compact_arguments, rng)) for function in chosen]
    tokens = count_tool_calls_output(encoding_name, calls)
    if room is not None and tokens > room:
        # The cap cuts the answer: keep the first call, its arguments cut so that the total is the cap.
        name, arguments = calls[0]
        overhead = tool_call_output_overhead(encoding_name, name)
        pieces, argument_tokens, _ = fit_text(encoding_name, arguments, max(room - overhead, 0))
        plan = ToolCallPlan(call_id(rng), name, "".join(pieces), pieces)
        return OutputPlan([], "length", min(room, overhead + argument_tokens), 0, [plan])
    plans = [ToolCallPlan(call_id(rng), name, arguments, token_pieces(encoding_name, arguments))
             for name, arguments in calls]
    return OutputPlan([], "tool_calls", tokens, 0, plans)


def token_pieces(encoding_name: str, text: str) -> list[str]:
    """The text cut at its token boundaries; a character split across tokens stays whole in one piece."""
    pieces, _ = _pieces_of(encoding_name, get_encoding(encoding_name).encode_ordinary(text))
    return pieces


# Token id -> its text, per encoding, for tokens that are whole characters: JSON answers reuse a small set of
# tokens, and tiktoken decodes one token at a time in Python. Bounded; filled as tokens are met.
_TOKEN_TEXT: dict[str, dict[int, str]] = {}
_TOKEN_TEXT_MAX = 50_000


def _pieces_of(encoding_name: str, tokens: list[int]) -> tuple[list[str], bool]:
    known = _TOKEN_TEXT.setdefault(encoding_name, {})
    try:
        return [known[token] for token in tokens], True
    except KeyError:
        pass
    token_bytes = get_encoding(encoding_name).decode_tokens_bytes(tokens)
    if len(known) < _TOKEN_TEXT_MAX:
        for token, data in zip(tokens, token_bytes, strict=True):
            try:
                known[token] = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
    pieces: list[str] = []
    pending = b""
    for piece in token_bytes:
        pending += piece
        try:
            pieces.append(pending.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = b""
    return pieces, not pending


def fit_text(encoding_name: str, text: str, cap: int | None) -> tuple[list[str], int, bool]:
    """(pieces, tokens, cut): the text whole when it fits in `cap` tokens, else a prefix of exactly `cap`
    tokens by the tokenizer's own count (a cut that would re-tokenize differently — inside a multi-byte
    character, or where BPE merges across it — moves to the nearest prefix that keeps the count)."""
    encoding = get_encoding(encoding_name)
    tokens = encoding.encode_ordinary(text)
    if cap is None or len(tokens) <= cap:
        return _pieces_of(encoding_name, tokens)[0], len(tokens), False
    best: tuple[list[str], int] | None = None
    for end in sorted(range(max(cap - 8, 0), min(cap + 8, len(tokens)) + 1), key=lambda e: abs(e - cap)):
        try:
            prefix = encoding.decode_bytes(tokens[:end]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        recount = encoding.encode_ordinary(prefix)
        if len(recount) == cap:
            return _pieces_of(encoding_name, recount)[0], cap, True
        if len(recount) < cap and (best is None or len(recount) > best[1]):
            best = (_pieces_of(encoding_name, recount)[0], len(recount))
    if best is None:
        return [], 0, True
    return best[0], best[1], True
