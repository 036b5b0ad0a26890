"""An echo service, and a chat shortcut: the smallest useful extension.

- ``POST /echo`` (or ``/echo/anything``) answers with what it was sent: method, path, query, JSON body, and the
  headers without the API key. ``"stream": true`` in the body answers as server-sent events, one word per
  event. A data-plane API key is required, as on every simulator route (``auth=False`` would drop that).
- Chat completions whose last user message starts with ``echo:`` get the rest of that message back as the
  assistant's answer, through the built-in chat shape; other chat requests are declined (return None), so
  the simulator's own generator answers them.
- An ``x-echo-delay-ms`` request header sets the latency of both (a latency function); every answer of the
  echo route carries ``x-echo-extension: 1`` (a response hook).

Load it with ``SIMULATOR_EXTENSIONS=examples.echo_extension`` (or ``=examples/echo_extension.py``).
"""

from __future__ import annotations

import time
from typing import Any

from generators_app.extensions import (
    AnswerView,
    Deployment,
    ExtensionContext,
    ExtensionRegistry,
    ExtensionRequest,
    Response,
    StreamResponse,
)

PREFIX = "echo:"


def register(sim: ExtensionRegistry) -> None:
    echo = sim.add_route("echo", r"^echo(?:/(?P<rest>.*))?$", methods=("GET", "POST"))
    sim.add_generator(echo_back, route=echo)
    sim.add_generator(chat_echo, operation="chat")
    sim.add_latency(delay_from_header, route=echo)
    sim.add_latency(delay_from_header, operation="chat")
    sim.add_response_hook(mark, route=echo)


def echo_back(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext) -> Any:
    echoed = {
        "method": request.method,
        "path": request.path,
        "rest": request.path_params.get("rest") or "",
        "query": dict(request.query),
        "json": request.json,
        "headers": dict(request.headers),
    }
    if isinstance(request.json, dict) and request.json.get("stream") is True:
        words = str(request.json.get("text", "")).split()
        return StreamResponse([{"index": index, "word": word} for index, word in enumerate(words)])
    return Response(echoed)


def chat_echo(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext) -> Any:
    messages = request.json.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last, dict) else None
    if not isinstance(content, str) or not content.startswith(PREFIX):
        return None  # not ours: the built-in generator answers
    text = content[len(PREFIX):].strip()
    completion_tokens = context.count_tokens(text)
    prompt_tokens = context.count_tokens(content)
    model = deployment.model.version_string if deployment is not None else "echo"
    completion_id, created = f"chatcmpl-echo{int(time.time() * 1000)}", int(time.time())
    if request.json.get("stream") is True:
        return StreamResponse(_chat_chunks(completion_id, created, model, text), paced_from=1,
                              completion_tokens=completion_tokens)
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
    return Response(body, completion_tokens=completion_tokens)


def _chat_chunks(completion_id: str, created: int, model: str, text: str) -> list[dict[str, Any]]:
    """chat.completion.chunk events: the role, one per word, then the finish reason."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    words = text.split(" ")
    pieces = [word if index == 0 else " " + word for index, word in enumerate(words)]
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": piece}) for piece in pieces),
            chunk({}, "stop")]


def delay_from_header(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext,
                      answer: AnswerView) -> float | None:
    value = request.headers.get("x-echo-delay-ms", "")
    try:
        return float(value)
    except ValueError:
        return None  # no header (or not a number): the deployment's latency profile applies


def mark(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext,
         answer: AnswerView) -> None:
    answer.set_header("x-echo-extension", "1")
