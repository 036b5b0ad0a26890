"""The Responses API in generate mode: the response object and its named-event stream, as AOAI sends them.

Field order, ids and events follow the recordings (tests/reference/aoai-recordings/*-responses-*): the
object lists `id, object, created_at, status, ...` down to `metadata`; a stream is `response.created`,
`response.in_progress`, then per output item `response.output_item.added`, its content events
(`content_part.added`, `output_text.delta`..., `output_text.done`, `content_part.done` for a message;
`function_call_arguments.delta`..., `function_call_arguments.done` for a call), `response.output_item.done`,
and last `response.completed` (or `response.incomplete`), every event with a growing `sequence_number`.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from generators_app.generation.common import obfuscation
from generators_app.generation.outputs import OutputPlan
from generators_app.generation.sse import named_event

__all__ = ["ResponsePlan", "output_as_input_items", "response_body", "response_stream_frames"]


def _item_id(prefix: str, stem: str) -> str:
    # AOAI ids: 16 hex shared by the response and its items, "00", the creation time in hex, 24 random hex.
    return f"{prefix}_{stem}{secrets.token_hex(12)}"


@dataclass(slots=True)
class ResponsePlan:
    """Everything decided about a response before it is framed (JSON or events)."""

    echo: dict[str, Any]  # the request-derived fields of the object, by name
    input_tokens: int
    output: OutputPlan
    reasoning_item: bool = False  # reasoning models put a reasoning item first
    logprobs: list[dict[str, Any]] | None = None  # one entry per piece, when `include` asks for them
    created_at: int = field(default_factory=lambda: int(time.time()))
    id: str = ""
    _stem: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)  # the final output items

    def __post_init__(self) -> None:
        self._stem = f"{secrets.token_hex(8)}00{self.created_at:08x}"
        self.id = _item_id("resp", self._stem)
        self.items = self._build_items()

    @property
    def incomplete(self) -> bool:
        return self.output.finish_reason == "length"

    @property
    def status(self) -> str:
        return "incomplete" if self.incomplete else "completed"

    def _build_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if self.reasoning_item:
            items.append({"id": _item_id("rs", self._stem), "type": "reasoning", "summary": []})
        item_status = "incomplete" if self.incomplete else "completed"
        for call in self.output.tool_calls:
            items.append({
                "id": _item_id("fc", self._stem), "type": "function_call", "status": item_status,
                "arguments": call.arguments, "call_id": call.call_id, "name": call.name,
            })
        if self.output.pieces:
            items.append({
                "id": _item_id("msg", self._stem), "type": "message", "status": item_status,
                "content": [_text_part(self.output.text, self.logprobs or [])], "role": "assistant",
            })
        return items

    def usage(self) -> dict[str, Any]:
        output_tokens = self.output.completion_tokens
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.output.reasoning_tokens},
            "total_tokens": self.input_tokens + output_tokens,
        }


def _text_part(text: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": logprobs, "text": text}


def response_object(
    plan: ResponsePlan, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None, service_tier: str
) -> dict[str, Any]:
    echo = plan.echo
    return {
        "id": plan.id,
        "object": "response",
        "created_at": plan.created_at,
        "status": status,
        "background": echo["background"],
        "content_filters": None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": echo["instructions"],
        "max_output_tokens": echo["max_output_tokens"],
        "max_tool_calls": echo["max_tool_calls"],
        "model": echo["model"],
        "output": output,
        "parallel_tool_calls": echo["parallel_tool_calls"],
        "previous_response_id": echo["previous_response_id"],
        "prompt_cache_key": echo["prompt_cache_key"],
        "reasoning": echo["reasoning"],
        "safety_identifier": echo["safety_identifier"],
        "service_tier": service_tier,
        "store": echo["store"],
        "temperature": echo["temperature"],
        "text": echo["text"],
        "tool_choice": echo["tool_choice"],
        "tools": echo["tools"],
        "top_logprobs": echo["top_logprobs"],
        "top_p": echo["top_p"],
        "truncation": echo["truncation"],
        "usage": usage,
        "user": echo["user"],
        "metadata": echo["metadata"],
    }


def response_body(plan: ResponsePlan) -> bytes:
    return orjson.dumps(response_object(plan, plan.status, plan.items, plan.usage(), "default"))


def output_as_input_items(plan: ResponsePlan) -> list[dict[str, Any]]:
    """The response's output as the input items a follow-up (`previous_response_id`) continues from."""
    out: list[dict[str, Any]] = []
    for item in plan.items:
        if item["type"] == "message":
            out.append({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": item["content"][0]["text"]}]})
        elif item["type"] == "function_call":
            out.append({"type": "function_call", "call_id": item["call_id"], "name": item["name"],
                        "arguments": item["arguments"]})
        else:
            out.append({"type": item["type"], "id": item["id"]})
    return out


def response_stream_frames(
    plan: ResponsePlan, rng: random.Random, include_obfuscation: bool = True
) -> tuple[list[bytes], int]:
    """The named events of the whole response; returns them with the index of the first delta event."""
    frames: list[bytes] = []
    first_delta: int | None = None

    def emit(kind: str, body: dict[str, Any]) -> None:
        frames.append(named_event(kind, {"type": kind, "sequence_number": len(frames), **body}))

    def delta(kind: str, body: dict[str, Any]) -> None:
        nonlocal first_delta
        if first_delta is None:
            first_delta = len(frames)
        if include_obfuscation:
            body["obfuscation"] = obfuscation(rng)
        emit(kind, body)

    pending = response_object(plan, "in_progress", [], None, "auto")
    emit("response.created", {"response": pending})
    emit("response.in_progress", {"response": pending})
    for output_index, item in enumerate(plan.items):
        item_id = item["id"]
        where = {"item_id": item_id, "output_index": output_index}
        if item["type"] == "message":
            emit("response.output_item.added", {"output_index": output_index, "item": {
                "id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}})
            part = {**where, "content_index": 0}
            emit("response.content_part.added", {**part, "part": _text_part("", [])})
            entries = plan.logprobs
            for position, piece in enumerate(plan.output.pieces):
                delta("response.output_text.delta", {
                    **part, "delta": piece, "logprobs": [entries[position]] if entries else []})
            text_part = item["content"][0]
            emit("response.output_text.done", {**part, "text": text_part["text"], "logprobs": text_part["logprobs"]})
            emit("response.content_part.done", {**part, "part": text_part})
        elif item["type"] == "function_call":
            emit("response.output_item.added", {"output_index": output_index, "item": {
                **item, "status": "in_progress", "arguments": ""}})
            call = next(c for c in plan.output.tool_calls if c.call_id == item["call_id"])
            for piece in call.pieces:
                delta("response.function_call_arguments.delta", {**where, "delta": piece})
            emit("response.function_call_arguments.done", {**where, "arguments": item["arguments"]})
        else:
            emit("response.output_item.added", {"output_index": output_index, "item": item})
        emit("response.output_item.done", {"output_index": output_index, "item": item})
    final = "response.incomplete" if plan.incomplete else "response.completed"
    emit(final, {"response": response_object(plan, plan.status, plan.items, plan.usage(), "default")})
    return frames, first_delta if first_delta is not None else len(frames) - 1


def _tool_echo(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool
    strict = tool.get("strict")
    return {"type": "function", "description": tool.get("description"), "name": tool.get("name"),
            "parameters": tool.get("parameters"), "strict": True if strict is None else strict}


def _format_echo(fmt: Any) -> dict[str, Any]:
    if not isinstance(fmt, dict):
        return {"type": "text"}
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "description": fmt.get("description"), "name": fmt.get("name"),
                "schema": fmt.get("schema"), "strict": bool(fmt.get("strict"))}
    return {"type": fmt.get("type")}


def response_echo(payload: dict[str, Any], model: str, reasoning_effort: str | None) -> dict[str, Any]:
    """The request-derived fields of the response object, from a payload that passed validation."""
    text = payload.get("text") if isinstance(payload.get("text"), dict) else {}
    reasoning = payload.get("reasoning") if isinstance(payload.get("reasoning"), dict) else {}

    def given(key: str, default: Any) -> Any:
        value = payload.get(key)
        return default if value is None else value

    return {
        "background": False,  # background mode is answered in the foreground (docs/agents.md)
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "max_tool_calls": payload.get("max_tool_calls"),
        "model": model,
        "parallel_tool_calls": given("parallel_tool_calls", True),
        "previous_response_id": payload.get("previous_response_id"),
        "prompt_cache_key": payload.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning_effort, "summary": reasoning.get("summary") if reasoning_effort else None},
        "safety_identifier": payload.get("safety_identifier"),
        "store": given("store", True),
        "temperature": float(given("temperature", 1.0)),
        "text": {"format": _format_echo(text.get("format")), "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": given("tool_choice", "auto"),
        "tools": [_tool_echo(tool) for tool in payload.get("tools") or []],
        "top_logprobs": given("top_logprobs", 0),
        "top_p": float(given("top_p", 1.0)),
        "truncation": given("truncation", "disabled"),
        "user": payload.get("user"),
        "metadata": given("metadata", {}),
    }
