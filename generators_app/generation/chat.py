"""Chat completions in generate mode: the JSON object and the SSE chunks, in AOAI's field order.

An answer is prose, JSON (structured outputs) or tool calls (see outputs.py); tool calls are framed as the
recordings show them: `content: null` and `tool_calls` in the message, and in a stream a role chunk with
`content: null`, then per call a first delta with `id`, `type` and `function.name` followed by deltas that
carry pieces of `function.arguments`, and a finish chunk with `finish_reason: "tool_calls"`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from generators_app.generation.common import (
    COMPLETION_FILTER_RESULTS,
    STREAM_CHUNK_FILTER_RESULTS,
    chat_usage,
    obfuscation,
    prompt_filter_results,
    random_id,
)
from generators_app.generation.logprobs import token_logprobs
from generators_app.generation.outputs import AnswerSpec, ToolCallPlan, plan_output
from generators_app.generation.sse import DONE, data_event
from generators_app.generation.text import text_generator
from generators_app.registry import DeploymentConfig


@dataclass(slots=True)
class GeneratedChoice:
    pieces: list[str]  # one string per streamed delta (one per token for prose)
    finish_reason: str
    tool_calls: list[ToolCallPlan] = field(default_factory=list)
    content_tokens: int | None = None  # when not one token per piece (JSON, tool calls)
    reasoning_tokens: int = 0
    logprobs: list[dict[str, Any]] | None = None  # one entry per piece, when the request asked for them

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        visible = len(self.pieces) if self.content_tokens is None else self.content_tokens
        return visible + self.reasoning_tokens


@dataclass(slots=True)
class ChatPlan:
    """Everything decided about an answer before it is framed (JSON or SSE)."""

    id: str
    created: int
    model: str
    system_fingerprint: str | None
    prompt_tokens: int
    choices: list[GeneratedChoice]

    @property
    def completion_tokens(self) -> int:
        return sum(choice.completion_tokens for choice in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(choice.reasoning_tokens for choice in self.choices)


def plan_chat(
    deployment: DeploymentConfig,
    prompt_tokens: int,
    n: int,
    lengths: list[tuple[int, str]],
    rng: random.Random,
    spec: AnswerSpec | None = None,
    cap: int | None = None,
    top_logprobs: int | None = None,
) -> ChatPlan:
    """`spec` says what the answer is (prose when None); `top_logprobs` not None asks for logprobs."""
    generator = text_generator(deployment.model.tokenizer)
    spec = spec or AnswerSpec()
    choices = []
    for length, finish in lengths[:n]:
        output = plan_output(spec, generator, length, finish, cap, rng)
        choice = GeneratedChoice(
            output.pieces, output.finish_reason, output.tool_calls, output.content_tokens, output.reasoning_tokens
        )
        if top_logprobs is not None and not output.tool_calls:
            choice.logprobs = token_logprobs(output.pieces, top_logprobs, rng)
        choices.append(choice)
    return ChatPlan(
        id=random_id("chatcmpl-"),
        created=int(time.time()),
        model=deployment.model.version_string,
        system_fingerprint=deployment.model.system_fingerprint,
        prompt_tokens=prompt_tokens,
        choices=choices,
    )


def _tool_call_body(call: ToolCallPlan) -> dict[str, Any]:
    return {"function": {"arguments": call.arguments, "name": call.name}, "id": call.call_id, "type": "function"}


def _message(choice: GeneratedChoice) -> dict[str, Any]:
    if choice.tool_calls:
        return {"annotations": [], "content": None, "refusal": None, "role": "assistant",
                "tool_calls": [_tool_call_body(call) for call in choice.tool_calls]}
    return {"annotations": [], "content": choice.text, "refusal": None, "role": "assistant"}


def _logprobs(choice: GeneratedChoice) -> dict[str, Any] | None:
    return None if choice.logprobs is None else {"content": choice.logprobs, "refusal": None}


def chat_completion_body(plan: ChatPlan) -> bytes:
    return orjson.dumps(
        {
            "choices": [
                {
                    # AOAI annotates text; a tool-call answer carries an empty object (as recorded)
                    "content_filter_results": {} if choice.tool_calls else COMPLETION_FILTER_RESULTS,
                    "finish_reason": choice.finish_reason,
                    "index": index,
                    "logprobs": _logprobs(choice),
                    "message": _message(choice),
                }
                for index, choice in enumerate(plan.choices)
            ],
            "created": plan.created,
            "id": plan.id,
            "model": plan.model,
            "object": "chat.completion",
            "prompt_filter_results": prompt_filter_results(),
            "system_fingerprint": plan.system_fingerprint,
            "usage": chat_usage(plan.prompt_tokens, plan.completion_tokens, plan.reasoning_tokens),
        }
    )


def _choice_deltas(choice: GeneratedChoice, index: int) -> list[dict[str, Any]]:
    """The streamed choice objects of one answer after its role chunk, one per delta."""
    if choice.tool_calls:
        out = []
        for position, call in enumerate(choice.tool_calls):
            out.append({
                "content_filter_results": {},
                "delta": {"tool_calls": [{"function": {"arguments": "", "name": call.name}, "id": call.call_id,
                                          "index": position, "type": "function"}]},
                "finish_reason": None, "index": index, "logprobs": None,
            })
            out.extend({
                "content_filter_results": {},
                "delta": {"tool_calls": [{"function": {"arguments": piece}, "index": position}]},
                "finish_reason": None, "index": index, "logprobs": None,
            } for piece in call.pieces)
        return out
    entries = choice.logprobs
    return [{
        "content_filter_results": STREAM_CHUNK_FILTER_RESULTS,
        "delta": {"content": piece},
        "finish_reason": None, "index": index,
        "logprobs": None if entries is None else {"content": [entries[position]], "refusal": None},
    } for position, piece in enumerate(choice.pieces)]


def chat_stream_frames(
    plan: ChatPlan, rng: random.Random, include_usage: bool, include_obfuscation: bool = True
) -> tuple[list[bytes], int]:
    """AOAI's order: prompt filter results, a role chunk per choice, one chunk per token, a finish chunk
    per choice, the usage chunk when asked, [DONE]. Returns the frames and the index of the first token."""
    tail: dict[str, Any] = {"created": plan.created, "id": plan.id, "model": plan.model}

    def chunk(choice: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {"choices": [choice], **tail}
        if include_obfuscation:
            payload["obfuscation"] = obfuscation(rng)
        payload["object"] = "chat.completion.chunk"
        payload["system_fingerprint"] = plan.system_fingerprint
        if include_usage:
            payload["usage"] = None
        return data_event(payload)

    frames = [
        data_event(
            {"choices": [], "created": 0, "id": "", "model": "", "object": "",
             "prompt_filter_results": prompt_filter_results()}
        )
    ]
    for index, choice in enumerate(plan.choices):
        role_delta = (
            {"content": None, "role": "assistant"} if choice.tool_calls
            else {"content": "", "refusal": None, "role": "assistant"}
        )
        frames.append(chunk({
            "content_filter_results": {}, "delta": role_delta, "finish_reason": None, "index": index, "logprobs": None,
        }))
    first_token_frame = len(frames)
    # With n > 1 the choices advance together, one delta each in turn, as the real service streams them.
    deltas = [_choice_deltas(choice, index) for index, choice in enumerate(plan.choices)]
    for position in range(max((len(d) for d in deltas), default=0)):
        for choice_deltas in deltas:
            if position < len(choice_deltas):
                frames.append(chunk(choice_deltas[position]))
    for index, choice in enumerate(plan.choices):
        frames.append(chunk({
            "content_filter_results": {}, "delta": {}, "finish_reason": choice.finish_reason,
            "index": index, "logprobs": None,
        }))
    if include_usage:
        frames.append(data_event({
            "choices": [], **tail, "object": "chat.completion.chunk",
            "system_fingerprint": plan.system_fingerprint,
            "usage": chat_usage(plan.prompt_tokens, plan.completion_tokens, plan.reasoning_tokens),
        }))
    frames.append(DONE)
    return frames, first_token_frame
