"""Chat completions in generate mode: the JSON object and the SSE chunks, in AOAI's field order."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
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
from generators_app.generation.sse import DONE, data_event
from generators_app.generation.text import text_generator
from generators_app.registry import DeploymentConfig


@dataclass(slots=True)
class GeneratedChoice:
    pieces: list[str]  # one string per token
    finish_reason: str

    @property
    def text(self) -> str:
        return "".join(self.pieces)


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
        return sum(len(choice.pieces) for choice in self.choices)


def plan_chat(
    deployment: DeploymentConfig,
    prompt_tokens: int,
    n: int,
    lengths: list[tuple[int, str]],
    rng: random.Random,
) -> ChatPlan:
    generator = text_generator(deployment.model.tokenizer)
    choices = [GeneratedChoice(generator.generate(length, rng), finish) for length, finish in lengths[:n]]
    return ChatPlan(
        id=random_id("chatcmpl-"),
        created=int(time.time()),
        model=deployment.model.version_string,
        system_fingerprint=deployment.model.system_fingerprint,
        prompt_tokens=prompt_tokens,
        choices=choices,
    )


def chat_completion_body(plan: ChatPlan) -> bytes:
    return orjson.dumps(
        {
            "choices": [
                {
                    "content_filter_results": COMPLETION_FILTER_RESULTS,
                    "finish_reason": choice.finish_reason,
                    "index": index,
                    "logprobs": None,
                    "message": {"annotations": [], "content": choice.text, "refusal": None, "role": "assistant"},
                }
                for index, choice in enumerate(plan.choices)
            ],
            "created": plan.created,
            "id": plan.id,
            "model": plan.model,
            "object": "chat.completion",
            "prompt_filter_results": prompt_filter_results(),
            "system_fingerprint": plan.system_fingerprint,
            "usage": chat_usage(plan.prompt_tokens, plan.completion_tokens),
        }
    )


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
    for index, _choice in enumerate(plan.choices):
        frames.append(chunk({
            "content_filter_results": {},
            "delta": {"content": "", "refusal": None, "role": "assistant"},
            "finish_reason": None, "index": index, "logprobs": None,
        }))
    first_token_frame = len(frames)
    # With n > 1 the choices advance together, one token each in turn, as the real service streams them.
    for position in range(max((len(choice.pieces) for choice in plan.choices), default=0)):
        for index, choice in enumerate(plan.choices):
            if position < len(choice.pieces):
                frames.append(chunk({
                    "content_filter_results": STREAM_CHUNK_FILTER_RESULTS,
                    "delta": {"content": choice.pieces[position]},
                    "finish_reason": None, "index": index, "logprobs": None,
                }))
    for index, choice in enumerate(plan.choices):
        frames.append(chunk({
            "content_filter_results": {}, "delta": {}, "finish_reason": choice.finish_reason,
            "index": index, "logprobs": None,
        }))
    if include_usage:
        frames.append(data_event({
            "choices": [], **tail, "object": "chat.completion.chunk",
            "system_fingerprint": plan.system_fingerprint,
            "usage": chat_usage(plan.prompt_tokens, plan.completion_tokens),
        }))
    frames.append(DONE)
    return frames, first_token_frame
