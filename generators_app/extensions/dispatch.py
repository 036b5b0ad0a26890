"""Where the pipeline calls extensions: one ``ExtensionCall`` per request that any extension handles.

The pipeline asks ``call_for(...)``; with no extension loaded (``EXTENSIONS.active`` False) that is one
attribute check and the built-in path runs as before. Extension code that raises is logged with its name and
answered as a 500 in the OpenAI error shape, never with a traceback.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import random
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from generators_app.answers import Answer, Headers, JsonAnswer, StreamAnswer
from generators_app.errors import ApiError
from generators_app.extensions.api import (
    AnswerView,
    ExtensionContext,
    ExtensionRequest,
    Latency,
    Response,
    StreamResponse,
    Upstream,
    sse_event,
)
from generators_app.extensions.registry import EXTENSIONS, Registered, Route
from generators_app.models import DeploymentMode

if TYPE_CHECKING:
    from generators_app.registry import DeploymentConfig

logger = logging.getLogger(__name__)

_SSE = b"text/event-stream; charset=utf-8"
_DONE = b"data: [DONE]\n\n"
_SECRET_HEADERS = frozenset({"api-key", "authorization"})
_rng = random.Random()


def _failure(entry: Registered, error: BaseException) -> ApiError:
    logger.error("extension %s failed", entry.name, exc_info=error)
    message = f"The simulator extension function {entry.name} failed ({type(error).__name__})."
    return ApiError(500, {"error": {"message": message, "type": "server_error", "param": None,
                                    "code": "extension_error"}})


async def _run(entry: Registered, *args: Any) -> Any:
    try:
        result = entry.function(*args)
        if inspect.isawaitable(result):
            result = await result
    except ApiError:
        raise
    except Exception as error:
        raise _failure(entry, error) from None
    return result


def _encoded(name: str, value: Any) -> tuple[bytes, bytes]:
    return name.lower().encode("latin-1"), str(value).encode("latin-1", "replace")


def _frame(item: Any) -> bytes:
    return item if isinstance(item, bytes) else sse_event(item)


class _Source:
    """An extension's async iterable as the transport's stream source (iterated, then ``aclose()``d)."""

    def __init__(self, events: AsyncIterable[Any]) -> None:
        self._events = events
        self._iterator: AsyncIterator[Any] = events.__aiter__()

    def __aiter__(self) -> _Source:
        return self

    async def __anext__(self) -> bytes:
        return _frame(await self._iterator.__anext__())

    async def aclose(self) -> None:
        close = getattr(self._iterator, "aclose", None)
        if close is not None:
            await close()


def reply_answer(reply: Response | StreamResponse, headers: Headers, entry: Registered | None = None) -> Answer:
    """An extension's Response or StreamResponse as the transport's answer, after the simulator's ``headers``."""
    if isinstance(reply, Response):
        body, content_type = reply.encoded()
        own = _own_headers(reply.headers, content_type.encode())
        return JsonAnswer(reply.status, body, [*headers, *own], reply.completion_tokens)
    if isinstance(reply, StreamResponse):
        own = _own_headers(reply.headers, _SSE)
        own += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        if hasattr(reply.events, "__aiter__"):
            return StreamAnswer(reply.status, [], [*headers, *own], completion_tokens=reply.completion_tokens or 0,
                                source=_Source(reply.events))  # type: ignore[arg-type]
        frames = [_frame(item) for item in reply.events]  # type: ignore[union-attr]
        if reply.done:
            frames.append(_DONE)
        paced_from = max(0, min(reply.paced_from, len(frames)))
        tokens = reply.completion_tokens
        if tokens is None:
            tokens = max(0, len(frames) - paced_from - 1)
        return StreamAnswer(reply.status, frames, [*headers, *own], paced_from, tokens)
    who = entry.name if entry is not None else "an extension"
    raise TypeError(f"{who} returned {type(reply).__name__}; expected Response, StreamResponse or None")


def _own_headers(headers: Mapping[str, str], default_content_type: bytes) -> Headers:
    """An extension's headers for the wire, with a content type unless it set one."""
    own = [_encoded(name, value) for name, value in headers.items()]
    if not any(name == b"content-type" for name, _ in own):
        own.append((b"content-type", default_content_type))
    return own


def _visible_headers(headers: list[tuple[bytes, bytes]], auth_header: bytes | None) -> dict[str, str]:
    visible: dict[str, str] = {}
    for name, value in headers:
        text = name.decode("latin-1").lower()
        if text in _SECRET_HEADERS or name == auth_header:
            continue
        visible[text] = value.decode("latin-1")
    return visible


def _json_or_none(body: bytes, headers: Mapping[str, str]) -> Any:
    if not body:
        return None
    content_type = headers.get("content-type", "").lower()
    if content_type and "json" not in content_type:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class ExtensionCall:
    """The extension callables that handle one request, with the request and context they all share."""

    __slots__ = ("_operation", "context", "deployment", "request", "route")

    def __init__(self, request: ExtensionRequest, deployment: DeploymentConfig | None, route: Route | None) -> None:
        self.request = request
        self.deployment = deployment
        self.route = route
        self._operation = request.operation
        tokenizer = deployment.model.tokenizer if deployment is not None else "o200k_base"
        self.context = ExtensionContext(rng=_rng, tokenizer=tokenizer)

    def set_deployment(self, deployment: DeploymentConfig) -> None:
        self.deployment = deployment
        self.context.tokenizer = deployment.model.tokenizer

    def _select(self, kind: str) -> tuple[Registered, ...]:
        return EXTENSIONS.select(kind, self._operation, self.route.name if self.route else None)

    def token_cost(self, count: Callable[[ExtensionRequest], int]) -> int:
        """A route's token_cost for this request (what a tokens-per-minute limit charges)."""
        extension = self.route.extension if self.route else "?"
        entry = Registered(count, self.request.route, None, extension, f"{extension}:token_cost")
        try:
            return max(0, int(count(self.request)))
        except Exception as error:
            raise _failure(entry, error) from None

    async def request_hooks(self, headers: Callable[[], Headers]) -> Answer | None:
        for entry in self._select("request_hooks"):
            reply = await _run(entry, self.request, self.deployment, self.context)
            if reply is not None:
                return self._answer(reply, headers(), entry)
        return None

    def _answer(self, reply: Any, headers: Headers, entry: Registered) -> Answer:
        try:
            return reply_answer(reply, headers, entry)
        except TypeError as error:
            raise _failure(entry, error) from None

    def generator(self, fallback: Callable[[Headers], Answer] | None) -> Callable[[Headers], Any]:
        """The generate-mode answer: each generator in turn until one answers, then ``fallback`` (the built-in
        generator), or a 501 on a route no generator answered."""
        entries = self._select("generators")
        if not entries and fallback is not None:
            return fallback

        async def generate(headers: Headers) -> Answer:
            for entry in entries:
                reply = await _run(entry, self.request, self.deployment, self.context)
                if reply is not None:
                    return self._answer(reply, headers, entry)
            if fallback is not None:
                return fallback(headers)
            raise ApiError(501, {"error": {
                "message": f"No extension generator answered this request (route '{self.request.route}').",
                "type": "invalid_request_error", "param": None, "code": "not_implemented"}})

        return generate

    async def upstream(self) -> Upstream | None:
        """The first forwarder's Upstream, or None (the deployment's upstream endpoint then)."""
        for entry in self._select("forwarders"):
            target = await _run(entry, self.request, self.deployment, self.context)
            if target is None:
                continue
            if not isinstance(target, Upstream) or not urlsplit(target.url).scheme.startswith("http"):
                raise _failure(entry, TypeError(f"returned {target!r}; expected an Upstream with an http(s) url"))
            return target
        return None

    async def latency(self, answer: Answer) -> tuple[float, float] | None:
        """(first ms, per-token ms) from the first latency function that decides, else None."""
        view = AnswerView(answer)
        for entry in self._select("latency_functions"):
            decided = await _run(entry, self.request, self.deployment, self.context, view)
            if decided is None:
                continue
            if isinstance(decided, int | float) and not isinstance(decided, bool):
                decided = Latency(float(decided))
            if isinstance(decided, Latency) and math.isfinite(decided.first_ms) and math.isfinite(
                    decided.per_token_ms):
                return max(0.0, decided.first_ms), max(0.0, decided.per_token_ms)
            raise _failure(entry, TypeError(f"returned {decided!r}; expected Latency, finite milliseconds or None"))
        return None

    async def response_hooks(self, answer: Answer) -> None:
        entries = self._select("response_hooks")
        if entries:
            view = AnswerView(answer)
            for entry in entries:
                await _run(entry, self.request, self.deployment, self.context, view)


def call_for(
    *,
    method: str,
    path: str,
    query_string: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    payload: Any,
    operation: str,
    surface: str,
    deployment: DeploymentConfig | None,
    route: Route | None = None,
    path_params: Mapping[str, str] | None = None,
) -> ExtensionCall | None:
    """The request's ExtensionCall, or None when no extension handles it (the common case: one check)."""
    if route is None and not (EXTENSIONS.active and EXTENSIONS.handles(operation, None)):
        return None
    visible = _visible_headers(headers, route.auth_header if route else None)
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    if payload is None and route is not None:
        payload = _json_or_none(body, visible)
    request = ExtensionRequest(
        method=method, path=path, query=query, headers=visible, body=body, json=payload,
        path_params=dict(path_params or {}), operation=str(operation), route=route.name if route else None,
        surface=surface,
    )
    return ExtensionCall(request, deployment, route)


def matchable_payload(request: ExtensionRequest) -> dict[str, Any]:
    """What a route's recordings are matched on: the path's parameters, the query (but api-version) and the
    JSON body, or the digest and size of any other body."""
    body: Any
    if request.json is not None:
        body = request.json
    elif request.body:
        body = {"sha256": hashlib.sha256(request.body).hexdigest(), "bytes": len(request.body),
                "content_type": request.headers.get("content-type", "")}
    else:
        body = None
    query = {name: value for name, value in request.query.items() if name != "api-version"}
    return {"path": dict(request.path_params), "query": query, "body": body}


def route_deployment(deployment: DeploymentConfig, route: Route) -> DeploymentConfig:
    """The deployment as the route sees it: the profiles the route opted out of left off."""
    if route.limits and route.latency and route.faults and route.record_replay:
        return deployment
    return replace(
        deployment,
        limit_profile=deployment.limit_profile if route.limits else None,
        latency_profile=deployment.latency_profile if route.latency else None,
        fault_profile=deployment.fault_profile if route.faults else None,
        mode=deployment.mode if route.record_replay else DeploymentMode.GENERATE,
    )
