"""Record mode: forward a request to the real AOAI / OpenAI endpoint with httpx and capture the answer.

The answer goes back to the client as it arrives (a stream stays a stream, at the upstream's pace) while
a ``Capture`` collects what will be saved: status, headers minus secrets and hop-by-hop ones, the body,
and each SSE event with its offset in ms from the moment the request was sent. A capture is complete only
when the upstream finished its answer; a broken stream is never saved.

The upstream key is sent in the request header only: it is never logged, captured or put in an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
from django.conf import settings

logger = logging.getLogger(__name__)

# Hop-by-hop (RFC 9110 §7.6.1) and framing headers: they describe one connection, not the answer.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "content-encoding", "host",
})
# Credentials and session state, in either direction.
SECRET_HEADERS = frozenset({
    "api-key", "authorization", "x-api-key", "ocp-apim-subscription-key", "cookie", "set-cookie",
    "proxy-authorization", "www-authenticate",
})
_SSE = "text/event-stream"
# Each forward adds one; a request that already went through this many simulators is a forwarding loop
# (e.g. a record-mode deployment whose upstream is itself).
HOPS_HEADER = "x-simulator-record-hops"
MAX_HOPS = 4


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_HEADERS or "secret" in lowered or lowered.endswith("-key") or "-key-" in lowered


class UpstreamUnreachable(Exception):
    """No answer could be had from the upstream (connect error, timeout, reset before the answer)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(reason)
        self.endpoint = endpoint
        self.reason = reason

    def error_body(self) -> dict[str, Any]:
        message = f"The simulator could not get an answer from the upstream endpoint {self.endpoint}: {self.reason}."
        return {"error": {"message": message, "type": "upstream_error", "param": None,
                          "code": "upstream_unreachable"}}


@dataclass(slots=True)
class UpstreamTarget:
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    endpoint: str  # for messages: scheme://host[/prefix], never with credentials
    method: str = "POST"


@dataclass(slots=True)
class Capture:
    """What the upstream answered, ready to be saved as a recording."""

    status: int
    headers: dict[str, str]
    body: str = ""
    is_stream: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    complete: bool = False


# --- the upstream URL and request headers ---------------------------------------------------------------


def _openai_style(endpoint: str) -> bool:
    """``https://api.openai.com/v1`` (ends in /v1) is OpenAI-style; a resource root is AOAI-style."""
    return urlsplit(endpoint).path.rstrip("/").endswith("/v1")


def build_target(
    *,
    endpoint: str,
    key: str,
    path: str,
    query_string: bytes,
    client_headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    model: str,
    method: str = "POST",
) -> UpstreamTarget:
    """Where to send a request that arrived at ``path``, with the upstream's credentials.

    AOAI-style endpoints get the same path (``/v1/...`` becomes ``/openai/v1/...``) and query, with an
    ``api-key`` header: the upstream deployment has the name the client used. OpenAI-style endpoints (ending
    in ``/v1``) get the operation path under the endpoint, no ``api-version``, a Bearer token, and ``model``
    set to the deployment's model (OpenAI names models, not deployments).
    """
    base = endpoint.rstrip("/")
    query = query_string.decode("latin-1")
    if _openai_style(endpoint):
        operation_path = path
        for prefix in ("/openai/deployments/", "/openai/v1/", "/openai/", "/v1/"):
            if path.startswith(prefix):
                operation_path = path[len(prefix):]
                if prefix == "/openai/deployments/":
                    operation_path = operation_path.split("/", 1)[1] if "/" in operation_path else ""
                break
        body = _with_model(body, model)
        url = f"{base}/{operation_path.lstrip('/')}"
        pairs = [(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "api-version"]
        query = urlencode(pairs)
        auth = ("authorization", f"Bearer {key}")
    else:
        url = base + ("/openai" + path if path.startswith("/v1/") else path)
        auth = ("api-key", key)
    if query:
        url = f"{url}?{query}"
    headers = [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in client_headers
        if not _dropped_request_header(name.decode("latin-1").lower())
    ]
    headers.extend(_forwarding_headers(client_headers))
    if key:
        headers.append(auth)
    return UpstreamTarget(url=url, headers=headers, body=body, endpoint=base, method=method)


def _forwarding_headers(client_headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """What every forwarded request carries: no compression (a compressed stream could not be passed on as it
    comes) and the hop count that stops a forwarding loop."""
    return [("accept-encoding", "identity"), (HOPS_HEADER, str(record_hops(client_headers) + 1))]


def extension_target(upstream: Any, client_body: bytes, client_headers: Iterable[tuple[bytes, bytes]]
                     ) -> UpstreamTarget:
    """An extension forwarder's choice (an ``Upstream``: url, headers, body, method) as a target: its headers
    as given (credentials included: the forwarder sets them), the client's body unless it gave one."""
    parts = urlsplit(upstream.url)
    headers = [(str(name).lower(), str(value)) for name, value in upstream.headers.items()]
    headers.extend(_forwarding_headers(client_headers))
    body = client_body if upstream.body is None else upstream.body
    return UpstreamTarget(url=upstream.url, headers=headers, body=body, endpoint=f"{parts.scheme}://{parts.netloc}",
                          method=upstream.method.upper())


def record_hops(client_headers: Iterable[tuple[bytes, bytes]]) -> int:
    """How many record-mode simulators this request already went through."""
    for name, value in client_headers:
        if name.lower() == HOPS_HEADER.encode():
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


def _dropped_request_header(name: str) -> bool:
    return name in HOP_BY_HOP or is_secret_header(name) or name == "accept-encoding" or name.startswith("x-simulator-")


def _with_model(body: bytes, model: str) -> bytes:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(payload, dict) and payload.get("model") != model:
        payload["model"] = model
        return orjson.dumps(payload)
    return body


# --- forwarding -----------------------------------------------------------------------------------------

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One pooled client per event loop (one per worker process in production)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        timeout = httpx.Timeout(
            connect=float(getattr(settings, "SIMULATOR_UPSTREAM_CONNECT_TIMEOUT_SECONDS", 10.0)),
            read=float(getattr(settings, "SIMULATOR_UPSTREAM_READ_TIMEOUT_SECONDS", 300.0)),
            write=30.0,
            pool=30.0,
        )
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        client = httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False)
        _clients[loop] = client
    return client


def answer_headers(headers: httpx.Headers, key: str) -> list[tuple[str, str]]:
    """The upstream's headers that describe the answer: no hop-by-hop, no credentials, no echo of the key."""
    kept = []
    for name, value in headers.multi_items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP or is_secret_header(lowered) or (key and key in value):
            continue
        kept.append((lowered, value))
    return kept


@dataclass(slots=True)
class UpstreamAnswer:
    status: int
    headers: list[tuple[str, str]]
    capture: Capture
    body: bytes = b""  # a complete JSON (or other non-stream) answer
    stream: UpstreamStream | None = None  # set when the upstream answers with SSE


async def forward(target: UpstreamTarget, key: str) -> UpstreamAnswer:
    """Send the request; return once the status and headers are in (and, for a non-stream answer, the body)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = _client()
    content = target.body if target.body or target.method not in ("GET", "HEAD") else None
    request = client.build_request(target.method, target.url, headers=target.headers, content=content)
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException:
        raise UpstreamUnreachable(target.endpoint, "the upstream did not answer in time") from None
    except httpx.HTTPError as exc:
        raise UpstreamUnreachable(target.endpoint, _describe(exc)) from None
    headers = answer_headers(response.headers, key)
    capture = Capture(status=response.status_code, headers=dict(headers))
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(_SSE):
        capture.is_stream = True
        stream = UpstreamStream(response, capture, started, target.endpoint)
        return UpstreamAnswer(response.status_code, headers, capture, stream=stream)
    try:
        body = await response.aread()
    except httpx.HTTPError as exc:
        raise UpstreamUnreachable(target.endpoint, f"the answer was cut off ({_describe(exc)})") from None
    finally:
        await response.aclose()
    capture.body = body.decode("utf-8", errors="replace")
    capture.duration_ms = (loop.time() - started) * 1000
    capture.complete = True
    return UpstreamAnswer(response.status_code, headers, capture, body=body)


def _describe(exc: httpx.HTTPError) -> str:
    """What went wrong, in words (httpx messages carry no credentials, but stay generic anyway)."""
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the upstream closed the connection without a valid answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the connection was reset"
    return type(exc).__name__


class UpstreamStream:
    """The upstream's SSE bytes as they arrive, parsed on the side into timed events.

    An async iterator the transport drains; ``aclose()`` releases the upstream connection whether or not the
    stream was read to the end. ``on_complete`` runs once the upstream finished its stream normally.
    """

    def __init__(self, response: httpx.Response, capture: Capture, started: float, endpoint: str) -> None:
        self._response = response
        self._capture = capture
        self._started = started
        self._endpoint = endpoint
        self._chunks = response.aiter_bytes()
        self._buffer = b""
        self._finished = False
        self.on_complete: Callable[[Capture], Awaitable[None] | None] | None = None

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            await self._finish(complete=True)
            raise
        except httpx.HTTPError as exc:
            logger.warning("upstream %s broke off a stream: %s", self._endpoint, _describe(exc))
            await self._finish(complete=False)
            error = {"error": {"message": f"The upstream endpoint broke off the stream: {_describe(exc)}.",
                               "type": "upstream_error", "param": None, "code": "upstream_disconnected"}}
            return b"data: " + orjson.dumps(error) + b"\n\n"
        self._collect(chunk)
        return chunk

    def _collect(self, chunk: bytes) -> None:
        offset_ms = round((asyncio.get_running_loop().time() - self._started) * 1000, 3)
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            event = parse_event(block.decode("utf-8", errors="replace"))
            if event is not None:
                name, data = event
                item: dict[str, Any] = {"offset_ms": offset_ms, "data": data}
                if name:
                    item["event"] = name
                self._capture.events.append(item)

    async def _finish(self, complete: bool) -> None:
        if self._finished:
            return
        self._finished = True
        capture = self._capture
        capture.duration_ms = round((asyncio.get_running_loop().time() - self._started) * 1000, 3)
        capture.complete = complete
        await self._response.aclose()
        if complete and self.on_complete is not None:
            outcome = self.on_complete(capture)
            if outcome is not None:
                await outcome

    async def aclose(self) -> None:
        """Release the connection; a stream abandoned before its end is not complete (never saved)."""
        if not self._finished:
            self._finished = True
            await self._response.aclose()


def parse_event(block: str) -> tuple[str | None, str] | None:
    """One SSE event block -> (event name or None, data); comments and blocks without data give None."""
    name = None
    data_lines = []
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        field_name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field_name == "data":
            data_lines.append(value)
        elif field_name == "event":
            name = value
    if not data_lines:
        return None
    return name, "\n".join(data_lines)
