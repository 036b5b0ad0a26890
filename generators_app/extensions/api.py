"""The extension API: every type an extension module sees. Stable within an ``API_VERSION``.

An extension is a Python module (dotted path or file) named in SIMULATOR_EXTENSIONS with a function
``register(sim: ExtensionRegistry) -> None``. It runs once per process at start and adds routes, models,
generators, forwarders, latency functions and request/response hooks (registry.py). Each callable may be a
plain function or a coroutine function; each receives ``(request, deployment, context)``, and the ones that
run after the answer exists (latency functions, response hooks) also the answer.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from generators_app.answers import Answer, DroppedConnection, JsonAnswer, StreamAnswer

if TYPE_CHECKING:
    from generators_app.registry import DeploymentConfig as Deployment
else:
    Deployment = Any

API_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExtensionRequest:
    """A data-plane request as extensions see it. ``headers`` has lower-case names and never the API key
    (``api-key``, ``authorization`` and a route's ``auth_header`` are left out)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any  # the parsed JSON body; None when the body is empty or not JSON
    path_params: Mapping[str, str]  # the route pattern's named groups
    operation: str  # "chat", "embeddings"…, or an extension route's operation
    route: str | None  # the extension route's name; None for a built-in operation
    surface: str  # "azure", "azure_v1" or "openai": the shape of the simulator's own error bodies


@dataclass(slots=True)
class ExtensionContext:
    """Per-request helpers. ``values`` is shared by every callable that handles the same request."""

    rng: random.Random
    tokenizer: str = "o200k_base"
    values: dict[str, Any] = field(default_factory=dict)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` with the deployment's tokenizer (o200k_base without a deployment)."""
        from generators_app.tokens import count_text

        return count_text(self.tokenizer, text)

    def text(self, tokens: int) -> str:
        """Plausible English text of exactly ``tokens`` tokens, as the built-in generators write."""
        from generators_app.generation.text import generate_text

        return generate_text(self.tokenizer, tokens, self.rng)


@dataclass(slots=True)
class Response:
    """A complete answer. ``body``: bytes or str are sent as they are; anything else is JSON-encoded.
    The content type defaults to application/json for JSON, text/plain for str, application/octet-stream
    for bytes. ``completion_tokens`` feeds the metrics and the per-token latency of a token-timed answer."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    completion_tokens: int = 0

    def encoded(self) -> tuple[bytes, str]:
        """The body as sent, and its default content type."""
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return orjson.dumps(self.body), "application/json"


@dataclass(slots=True)
class StreamResponse:
    """A server-sent-event stream. ``events``: a sequence whose items are bytes (sent as they are), str or
    JSON-able objects (each sent as one ``data: …`` event; see ``sse_event`` for named events); a
    ``data: [DONE]`` event closes it when ``done``. The events from ``paced_from`` on, but the last, are paced
    by the deployment's latency (first one at time-to-first-token, then one inter-token latency apart).

    ``events`` may instead be an async iterable of bytes: each chunk goes out as it comes, paced by your code
    (``done`` then adds nothing: send ``data: [DONE]`` yourself if your clients expect it).
    """

    events: Sequence[Any] | AsyncIterable[bytes]
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    done: bool = True
    paced_from: int = 0
    completion_tokens: int | None = None  # None: one per paced event


def sse_event(data: Any, event: str | None = None) -> bytes:
    """One SSE event: ``event: name`` (when given) and ``data: …`` (JSON unless bytes or str)."""
    if isinstance(data, bytes):
        payload = data
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = orjson.dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where a forwarder sends a record-mode request: the answer is passed on to the client and recorded.
    ``body`` None sends the client's body; the API key header is yours to set (from ``deployment.upstream_key``)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Latency:
    """What a latency function decides. A complete answer waits ``first_ms`` plus ``per_token_ms`` per
    completion token; a stream sends its first paced event at ``first_ms``, each next one ``per_token_ms``
    later. Counted from the request's arrival, as the built-in latency is."""

    first_ms: float
    per_token_ms: float = 0.0


class AnswerView:
    """The answer on its way out, for latency functions and response hooks: read it, change its headers,
    replace a complete answer's body. Header names are lower-case."""

    __slots__ = ("_answer",)

    def __init__(self, answer: Answer) -> None:
        self._answer = answer

    @property
    def status(self) -> int:
        return self._answer.status

    @property
    def stream(self) -> bool:
        return isinstance(self._answer, StreamAnswer)

    @property
    def dropped(self) -> bool:
        """A fault that answers nothing (reset, timeout)."""
        return isinstance(self._answer, DroppedConnection)

    @property
    def completion_tokens(self) -> int:
        return self._answer.completion_tokens

    @property
    def body(self) -> bytes | None:
        """A complete answer's body; None for a stream."""
        return self._answer.body if isinstance(self._answer, JsonAnswer) else None

    @body.setter
    def body(self, value: bytes) -> None:
        if not isinstance(self._answer, JsonAnswer):
            raise TypeError("only a complete (non-stream) answer has a body to replace")
        self._answer.body = value

    @property
    def events(self) -> list[bytes] | None:
        """A stream's framed events (a list you may change); None for a complete answer or a passed-on stream."""
        answer = self._answer
        if isinstance(answer, StreamAnswer) and answer.source is None:
            return answer.frames
        return None

    def json(self) -> Any:
        body = self.body
        return None if body is None else orjson.loads(body)

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self._answer.headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    def set_header(self, name: str, value: str) -> None:
        wanted = name.lower().encode("latin-1")
        headers = [(key, old) for key, old in self._answer.headers if key != wanted]
        headers.append((wanted, value.encode("latin-1")))
        self._answer.headers[:] = headers


# (request, deployment, context) -> Response | StreamResponse | None (None: declined, the next one is tried)
Generator = Callable[[ExtensionRequest, "Deployment | None", ExtensionContext], Any]
# (request, deployment, context) -> Upstream | Response | None
Forwarder = Callable[[ExtensionRequest, "Deployment | None", ExtensionContext], Any]
# (request, deployment, context, answer) -> Latency | float (ms) | None
LatencyFunction = Callable[[ExtensionRequest, "Deployment | None", ExtensionContext, AnswerView], Any]
# (request, deployment, context) -> Response | StreamResponse | None (a reply answers at once)
RequestHook = Callable[[ExtensionRequest, "Deployment | None", ExtensionContext], Any]
# (request, deployment, context, answer) -> None
ResponseHook = Callable[[ExtensionRequest, "Deployment | None", ExtensionContext, AnswerView], Any]
TokenCost = Callable[[ExtensionRequest], int]
