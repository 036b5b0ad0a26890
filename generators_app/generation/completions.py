"""Legacy completions (`/completions`) in generate mode."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from generators_app.generation.common import COMPLETION_FILTER_RESULTS, prompt_filter_results, random_id
from generators_app.generation.sse import DONE, data_event
from generators_app.generation.text import text_generator
from generators_app.registry import DeploymentConfig


@dataclass(slots=True)
class CompletionChoice:
    prompt_index: int
    text: str
    pieces: list[str]
    finish_reason: str


@dataclass(slots=True)
class CompletionPlan:
    id: str
    created: int
    model: str
    prompt_count: int
    prompt_tokens: int
    choices: list[CompletionChoice]

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.pieces) for choice in self.choices)


def plan_completion(
    deployment: DeploymentConfig,
    prompts: list[str],
    prompt_tokens: int,
    n: int,
    length: int,
    finish_reason: str,
    echo: bool,
    rng: random.Random,
) -> CompletionPlan:
    generator = text_generator(deployment.model.tokenizer)
    choices = []
    for prompt_index, prompt in enumerate(prompts):
        for _ in range(n):
            pieces = generator.generate(length, rng)
            text = "".join(pieces)
            choices.append(CompletionChoice(prompt_index, prompt + text if echo else text, pieces, finish_reason))
    return CompletionPlan(
        id=random_id("cmpl-"),
        created=int(time.time()),
        model=deployment.model.version_string,
        prompt_count=len(prompts),
        prompt_tokens=prompt_tokens,
        choices=choices,
    )


def _usage(plan: CompletionPlan) -> dict[str, int]:
    return {
        "completion_tokens": plan.completion_tokens,
        "prompt_tokens": plan.prompt_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def completion_body(plan: CompletionPlan) -> bytes:
    return orjson.dumps(
        {
            "choices": [
                {
                    "content_filter_results": COMPLETION_FILTER_RESULTS,
                    "finish_reason": choice.finish_reason,
                    "index": index,
                    "logprobs": None,
                    "text": choice.text,
                }
                for index, choice in enumerate(plan.choices)
            ],
            "created": plan.created,
            "id": plan.id,
            "model": plan.model,
            "object": "text_completion",
            "prompt_filter_results": prompt_filter_results(plan.prompt_count),
            "usage": _usage(plan),
        }
    )


def completion_stream_frames(plan: CompletionPlan, include_usage: bool) -> tuple[list[bytes], int]:
    head: dict[str, Any] = {"created": plan.created, "id": plan.id, "model": plan.model}

    def chunk(index: int, text: str, finish_reason: str | None) -> bytes:
        payload: dict[str, Any] = {
            "choices": [{
                "content_filter_results": COMPLETION_FILTER_RESULTS if text else {},
                "finish_reason": finish_reason, "index": index, "logprobs": None, "text": text,
            }],
            **head,
            "object": "text_completion",
        }
        if include_usage:
            payload["usage"] = None
        return data_event(payload)

    frames = [
        data_event(
            {"choices": [], "created": 0, "id": "", "model": "", "object": "",
             "prompt_filter_results": prompt_filter_results(plan.prompt_count)}
        )
    ]
    first_token_frame = len(frames)
    for index, choice in enumerate(plan.choices):
        if choice.text != "".join(choice.pieces):  # echo: the prompt goes out first, in one chunk
            frames.append(chunk(index, choice.text[: len(choice.text) - len("".join(choice.pieces))], None))
    longest = max((len(choice.pieces) for choice in plan.choices), default=0)
    for position in range(longest):
        for index, choice in enumerate(plan.choices):
            if position < len(choice.pieces):
                frames.append(chunk(index, choice.pieces[position], None))
    for index, choice in enumerate(plan.choices):
        frames.append(chunk(index, "", choice.finish_reason))
    if include_usage:
        frames.append(data_event({"choices": [], **head, "object": "text_completion", "usage": _usage(plan)}))
    frames.append(DONE)
    return frames, first_token_frame
