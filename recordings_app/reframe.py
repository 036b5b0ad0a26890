"""Convert a recorded answer between its two framings: one JSON object and a stream of SSE events.

A stream request can replay a JSON recording (the answer is cut into AOAI-style chunks) and a JSON request
can replay a stream recording (the chunks are assembled into the object the non-stream API returns).
Chat completions, legacy completions and the Responses API are covered; other operations have one framing.
Nothing here knows about HTTP: events are ``(event_name or None, data_text)`` pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

SseEvent = tuple[str | None, str]  # (the "event:" name or None, the "data:" text)
DONE = "[DONE]"

_PIECE = re.compile(r"\s*\S+|\s+")
_RESPONSE_END_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class ReframeError(ValueError):
    """The recording cannot be shown in the other framing (its content is not what the operation returns)."""


def pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is ``text`` (the granularity of real streamed deltas)."""
    return _PIECE.findall(text) if text else []


def _json_events(events: Iterable[SseEvent]) -> list[tuple[str | None, dict[str, Any]]]:
    parsed = []
    for name, data in events:
        if data.strip() == DONE:
            continue
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ReframeError(f"a recorded event is not valid JSON ({exc})") from None
        if isinstance(value, dict):
            parsed.append((name, value))
    return parsed


def _dump(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


# --- chat completions -----------------------------------------------------------------------------------


def chat_object_from_chunks(events: Iterable[SseEvent]) -> dict[str, Any]:
    head: dict[str, Any] = {}
    prompt_filter_results = None
    usage = None
    choices: dict[int, dict[str, Any]] = {}
    for _, chunk in _json_events(events):
        if chunk.get("prompt_filter_results") is not None and prompt_filter_results is None:
            prompt_filter_results = chunk["prompt_filter_results"]
        if chunk.get("id") and not head:
            head = {key: chunk.get(key) for key in ("id", "created", "model", "system_fingerprint")}
            if "service_tier" in chunk:
                head["service_tier"] = chunk["service_tier"]
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            _merge_chat_delta(choices.setdefault(int(choice.get("index", 0)), {}), choice)
    if not head:
        raise ReframeError("the recorded stream has no chat.completion.chunk event")
    body: dict[str, Any] = {
        "choices": [_chat_choice(index, state) for index, state in sorted(choices.items())],
        "created": head["created"],
        "id": head["id"],
        "model": head["model"],
        "object": "chat.completion",
    }
    if prompt_filter_results is not None:
        body["prompt_filter_results"] = prompt_filter_results
    for key in ("service_tier", "system_fingerprint"):
        if key in head:
            body[key] = head[key]
    if usage is not None:
        body["usage"] = usage
    return body


def _merge_chat_delta(state: dict[str, Any], choice: dict[str, Any]) -> None:
    delta = choice.get("delta") or {}
    if delta.get("role"):
        state["role"] = delta["role"]
    for key in ("content", "refusal"):
        if delta.get(key) is not None:
            state[key] = state.get(key, "") + delta[key]
    for call in delta.get("tool_calls") or []:
        calls = state.setdefault("tool_calls", {})
        merged = calls.setdefault(int(call.get("index", 0)), {"function": {"name": "", "arguments": ""}})
        for key in ("id", "type"):
            if call.get(key):
                merged[key] = call[key]
        function = call.get("function") or {}
        merged["function"]["name"] += function.get("name") or ""
        merged["function"]["arguments"] += function.get("arguments") or ""
    if choice.get("finish_reason"):
        state["finish_reason"] = choice["finish_reason"]
    if choice.get("content_filter_results"):
        state["content_filter_results"] = choice["content_filter_results"]
    logprobs = choice.get("logprobs")
    if logprobs:
        merged_logprobs = state.setdefault("logprobs", {"content": None, "refusal": None})
        for key in ("content", "refusal"):
            if logprobs.get(key):
                merged_logprobs[key] = (merged_logprobs[key] or []) + logprobs[key]


def _chat_choice(index: int, state: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "annotations": [],
        "content": state.get("content"),
        "refusal": state.get("refusal"),
        "role": state.get("role", "assistant"),
    }
    if state.get("tool_calls"):
        message["tool_calls"] = [
            {"function": call["function"], "id": call.get("id", ""), "type": call.get("type", "function")}
            for _, call in sorted(state["tool_calls"].items())
        ]
    choice: dict[str, Any] = {
        "finish_reason": state.get("finish_reason"),
        "index": index,
        "logprobs": state.get("logprobs"),
        "message": message,
    }
    if "content_filter_results" in state:
        choice["content_filter_results"] = state["content_filter_results"]
    return choice


def chat_chunks_from_object(body: dict[str, Any], include_usage: bool) -> list[SseEvent]:
    if not isinstance(body.get("choices"), list):
        raise ReframeError("the recorded body is not a chat completion (no 'choices' list)")
    azure = "prompt_filter_results" in body
    head = {key: body[key] for key in ("created", "id", "model") if key in body}
    extra = {key: body[key] for key in ("service_tier", "system_fingerprint") if key in body}
    chunks: list[dict[str, Any]] = []

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None, filters: Any = None) -> None:
        choice: dict[str, Any] = {"delta": delta, "finish_reason": finish_reason, "index": index, "logprobs": None}
        if azure:
            choice["content_filter_results"] = filters or {}
        chunks.append({"choices": [choice], **head, "object": "chat.completion.chunk", **extra})

    if azure:
        chunks.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": body["prompt_filter_results"]})
    for choice in body["choices"]:
        index = int(choice.get("index", 0))
        message = choice.get("message") or {}
        calls = message.get("tool_calls") or []
        role_delta = {"content": None if calls else "", "refusal": None, "role": message.get("role", "assistant")}
        chunk(index, role_delta)
        filters = choice.get("content_filter_results")
        for piece in pieces(message.get("content") or ""):
            chunk(index, {"content": piece}, filters=filters)
        for piece in pieces(message.get("refusal") or ""):
            chunk(index, {"refusal": piece}, filters=filters)
        for position, call in enumerate(calls):
            function = call.get("function") or {}
            first = {"function": {"arguments": "", "name": function.get("name", "")}, "id": call.get("id"),
                     "index": position, "type": call.get("type", "function")}
            chunk(index, {"tool_calls": [first]})
            for piece in pieces(function.get("arguments") or ""):
                chunk(index, {"tool_calls": [{"function": {"arguments": piece}, "index": position}]})
        chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage and body.get("usage") is not None:
        chunks.append({"choices": [], **head, "object": "chat.completion.chunk", **extra, "usage": body["usage"]})
    return [(None, _dump(item)) for item in chunks] + [(None, DONE)]


# --- legacy completions ---------------------------------------------------------------------------------


def completion_object_from_chunks(events: Iterable[SseEvent]) -> dict[str, Any]:
    head: dict[str, Any] = {}
    usage = None
    choices: dict[int, dict[str, Any]] = {}
    prompt_filter_results = None
    for _, chunk in _json_events(events):
        if chunk.get("prompt_filter_results") is not None and prompt_filter_results is None:
            prompt_filter_results = chunk["prompt_filter_results"]
        if chunk.get("id") and not head:
            head = {key: chunk.get(key) for key in ("id", "created", "model")}
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            state = choices.setdefault(int(choice.get("index", 0)), {"text": "", "finish_reason": None})
            state["text"] += choice.get("text") or ""
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]
    if not head:
        raise ReframeError("the recorded stream has no text_completion event")
    body: dict[str, Any] = {
        "choices": [
            {"finish_reason": state["finish_reason"], "index": index, "logprobs": None, "text": state["text"]}
            for index, state in sorted(choices.items())
        ],
        **head,
        "object": "text_completion",
    }
    if prompt_filter_results is not None:
        body["prompt_filter_results"] = prompt_filter_results
    if usage is not None:
        body["usage"] = usage
    return body


def completion_chunks_from_object(body: dict[str, Any], include_usage: bool) -> list[SseEvent]:
    if not isinstance(body.get("choices"), list):
        raise ReframeError("the recorded body is not a completion (no 'choices' list)")
    head = {key: body[key] for key in ("created", "id", "model") if key in body}
    chunks: list[dict[str, Any]] = []
    if "prompt_filter_results" in body:  # AOAI opens with the prompt's filter results
        chunks.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": body["prompt_filter_results"]})
    for choice in body["choices"]:
        index = int(choice.get("index", 0))
        for piece in pieces(choice.get("text") or ""):
            chunks.append({"choices": [{"finish_reason": None, "index": index, "logprobs": None, "text": piece}],
                           **head, "object": "text_completion"})
        chunks.append({"choices": [{"finish_reason": choice.get("finish_reason") or "stop", "index": index,
                                    "logprobs": None, "text": ""}], **head, "object": "text_completion"})
    if include_usage and body.get("usage") is not None:
        chunks.append({"choices": [], **head, "object": "text_completion", "usage": body["usage"]})
    return [(None, _dump(item)) for item in chunks] + [(None, DONE)]


# --- Responses API --------------------------------------------------------------------------------------


def response_object_from_events(events: Iterable[SseEvent]) -> dict[str, Any]:
    final = None
    for name, event in _json_events(events):
        kind = event.get("type") or name
        if isinstance(event.get("response"), dict) and (final is None or kind in _RESPONSE_END_EVENTS):
            final = event["response"]
    if final is None:
        raise ReframeError("the recorded stream has no event carrying the response object")
    return final


def response_events_from_object(body: dict[str, Any]) -> list[SseEvent]:
    if body.get("object") != "response" or not isinstance(body.get("output"), list):
        raise ReframeError("the recorded body is not a Responses API object")
    events: list[tuple[str, dict[str, Any]]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

    started = {**body, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for position, item in enumerate(body["output"]):
        item_id = item.get("id")
        if item.get("type") == "message":
            emit("response.output_item.added", output_index=position,
                 item={**item, "status": "in_progress", "content": []})
            for part_index, part in enumerate(item.get("content") or []):
                where = {"item_id": item_id, "output_index": position, "content_index": part_index}
                key = "text" if part.get("type") == "output_text" else "refusal"
                emit("response.content_part.added", **where, part={**part, key: ""})
                text = part.get(key) or ""
                kind = "response.output_text" if key == "text" else "response.refusal"
                for piece in pieces(text):
                    emit(f"{kind}.delta", **where, delta=piece, **({"logprobs": []} if key == "text" else {}))
                emit(f"{kind}.done", **where, **{key: text}, **({"logprobs": []} if key == "text" else {}))
                emit("response.content_part.done", **where, part=part)
        elif item.get("type") == "function_call":
            emit("response.output_item.added", output_index=position,
                 item={**item, "status": "in_progress", "arguments": ""})
            arguments = item.get("arguments") or ""
            for piece in pieces(arguments):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=position, delta=piece)
            emit("response.function_call_arguments.done", item_id=item_id, output_index=position,
                 arguments=arguments)
        else:
            emit("response.output_item.added", output_index=position, item=item)
        emit("response.output_item.done", output_index=position, item=item)
    status = body.get("status")
    final_kind = {"incomplete": "response.incomplete", "failed": "response.failed"}.get(status, "response.completed")
    emit(final_kind, response=body)
    return [(kind, _dump(payload)) for kind, payload in events]


# --- dispatch -------------------------------------------------------------------------------------------

OBJECT_FROM_STREAM = {
    "chat": chat_object_from_chunks,
    "completions": completion_object_from_chunks,
    "responses": response_object_from_events,
}


def stream_from_object(operation: str, body: dict[str, Any], include_usage: bool) -> list[SseEvent] | None:
    """The events for a JSON recording replayed to a stream request; None if the operation never streams."""
    if operation == "chat":
        return chat_chunks_from_object(body, include_usage)
    if operation == "completions":
        return completion_chunks_from_object(body, include_usage)
    if operation == "responses":
        return response_events_from_object(body)
    return None


def object_from_stream(operation: str, events: list[SseEvent]) -> dict[str, Any] | None:
    assemble = OBJECT_FROM_STREAM.get(operation)
    return assemble(events) if assemble else None
