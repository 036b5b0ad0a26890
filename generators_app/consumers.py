"""The data plane's transport: a Channels AsyncHttpConsumer that reads the body, runs the pipeline and writes
JSON or SSE. Streams run as a task raced against the client's disconnect, so a client that goes away stops
the work at once (a consumer does not see http.disconnect while handle() runs)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from time import monotonic, perf_counter
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings

from generators_app import observability
from generators_app.answers import Answer, DroppedConnection, JsonAnswer, StreamAnswer
from generators_app.catalogue import AnyOperation
from generators_app.errors import ApiError, body_too_large
from generators_app.extensions.registry import Route
from generators_app.pipeline import DataPlaneRequest, error_answer, handle_request
from generators_app.request_log import prompt_of, request_id_of, write_request_line

logger = logging.getLogger(__name__)

_INTERNAL_ERROR = ApiError(
    500,
    {"error": {"message": "The simulator failed to process the request.", "type": "server_error",
               "param": None, "code": "internal_error"}},
)


class DataPlaneConsumer(AsyncHttpConsumer):
    operation: AnyOperation | None = None
    surface: str = ""
    route: Route | None = None

    def __init__(self, operation: AnyOperation | None = None, surface: str = "", route: Route | None = None) -> None:
        super().__init__()
        self.operation, self.surface, self.route = operation, surface, route
        # An extension route may opt out of metrics and the request log.
        self._counted = route is None or route.metrics
        self._body_size = 0
        self._too_large = False
        # Measured per request for metrics and the request log (see _finish).
        self._started = 0.0
        self._first_byte_at: float | None = None
        self._status = 0
        self._client_gone = False
        self._request: DataPlaneRequest | None = None
        self._answer: Answer | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # One HTTP exchange and no channel layer: a plain receive loop instead of Channels' multi-source
        # dispatcher, which costs a task and an asyncio.wait per message on the hot path.
        # Every send goes through _measured_send, which notes the status and the first body byte's time.
        self.scope, self.base_send, self._receive, self._send_raw = scope, self._measured_send, receive, send
        self._arrived_at = monotonic()  # latency deadlines count from here, so our own work is inside them
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # self.base_send is a bound method of self: a reference cycle that only the cyclic garbage collector
            # would free, with the request, answer and uvicorn cycle hanging on it. Under load those pile up
            # and the full collections stall the loop (bench/latency.py p99); breaking it frees them at once.
            self.base_send = None

    async def dispatch(self, message: dict) -> None:
        # Unlike AsyncConsumer.dispatch, no database-connection housekeeping per message: the data plane never
        # touches the ORM per request, and that housekeeping is a thread hop.
        kind = message["type"]
        if kind == "http.request":
            await self.http_request(message)
        elif kind == "http.disconnect":
            raise StopConsumer()

    async def http_request(self, message: dict) -> None:
        chunk = message.get("body", b"")
        if not self._too_large:
            self._body_size += len(chunk)
            if self._body_size > settings.SIMULATOR_MAX_BODY_BYTES:
                self._too_large, self.body = True, []
            else:
                self.body.append(chunk)
        if message.get("more_body"):
            return
        self._started = perf_counter()
        if self._counted:
            observability.request_started()
        try:
            if self._too_large:
                await self._send_json(error_answer(body_too_large(settings.SIMULATOR_MAX_BODY_BYTES)))
            else:
                await self.handle(b"".join(self.body))
        finally:
            self.body = []
            self._finish()
        raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        scope = self.scope
        url_kwargs = scope.get("url_route", {}).get("kwargs", {})
        request = DataPlaneRequest(
            method=scope["method"],
            path=scope["path"],
            query_string=scope.get("query_string", b""),
            headers=scope["headers"],
            body=body,
            operation=self.operation,
            surface=self.surface,
            path_deployment=url_kwargs.get("deployment"),
            arrived_at=self._arrived_at,
            route=self.route,
            path_params=url_kwargs if self.route is not None else {},
        )
        self._request = request
        try:
            answer = await handle_request(request)
        except Exception:
            logger.exception("data plane failed on %s %s", scope["method"], scope["path"])
            answer = error_answer(_INTERNAL_ERROR)
        self._answer = answer
        if isinstance(answer, JsonAnswer):
            await self._send_json(answer)
        elif isinstance(answer, DroppedConnection):
            await self._until_disconnect(self._drop_connection(answer))
        elif isinstance(answer, StreamAnswer) and answer.source is not None:
            try:
                await self._until_disconnect(self._send_source(answer))
            finally:
                await answer.source.aclose()  # releases the upstream connection, even if the client left
        else:
            await self._until_disconnect(self._send_stream(answer))

    async def _send_json(self, answer: JsonAnswer) -> None:
        answer.headers.append((b"content-length", str(len(answer.body)).encode()))
        if answer.deliver_at:
            await sleep_until(answer.deliver_at)
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        if answer.cut_at is not None:  # fault: part of the announced body, then the connection closes
            await self.send({"type": "http.response.body", "body": answer.body[: answer.cut_at], "more_body": True})
            await self._close_connection()
            return
        await self.send({"type": "http.response.body", "body": answer.body})

    async def _send_stream(self, answer: StreamAnswer) -> None:
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        if answer.frame_deadlines or answer.cut_after is not None:
            await self._send_paced_frames(answer)
            return
        # Without pacing the whole stream goes out in one write; the client still parses it event by event.
        await self.send({"type": "http.response.body", "body": b"".join(answer.frames)})

    async def _send_paced_frames(self, answer: StreamAnswer) -> None:
        """The frames before the first token at once, each token frame at its deadline (frames already due go
        together in one write), the rest right after the last token; or, for a cut stream, the first
        ``cut_after`` frames and then the connection closes."""
        frames, deadlines = answer.frames, answer.frame_deadlines
        send = self.base_send  # what self.send calls: one coroutine less per frame
        end = len(frames) if answer.cut_after is None else min(answer.cut_after, len(frames))
        start = min(answer.first_token_frame, end)
        paced_end = min(start + len(deadlines), end)
        sent = 0
        try:
            if start:
                await send({"type": "http.response.body", "body": b"".join(frames[:start]), "more_body": True})
                sent = start
            while sent < paced_end:
                await sleep_until(deadlines[sent - start])
                now, upto = monotonic(), sent + 1
                while upto < paced_end and deadlines[upto - start] <= now:
                    upto += 1
                body = frames[sent] if upto == sent + 1 else b"".join(frames[sent:upto])
                await send({"type": "http.response.body", "body": body, "more_body": True})
                sent = upto
            cut = end < len(frames)
            await send({"type": "http.response.body", "body": b"".join(frames[sent:end]), "more_body": cut})
            sent = end
        except asyncio.CancelledError:
            logger.debug("stream stopped after %d of %d frames: the client disconnected", sent, len(frames))
            raise
        if cut:
            await self._close_connection()

    async def _drop_connection(self, answer: DroppedConnection) -> None:
        """Fault: no answer at all. A timeout holds the connection first; a reset closes it with a TCP RST."""
        if answer.close_at:
            await sleep_until(answer.close_at)
        await self._close_connection(reset=answer.kind == "reset")

    async def _close_connection(self, reset: bool = False) -> None:
        """End the connection without (the rest of) an answer. ASGI has no message for this and uvicorn answers
        500 when an app returns without a response, so this closes the transport behind uvicorn's ``send`` and
        waits until uvicorn has seen it go (then it sends nothing more). Under another server, raising is the
        only way left: the server closes the connection (or, before any byte, answers 500)."""
        cycle = getattr(self._send_raw, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            raise ConnectionAbortedError("fault injection: this server exposes no transport to close")
        if reset:
            raw_socket = transport.get_extra_info("socket")
            if raw_socket is not None:  # linger 0: close() sends RST instead of FIN
                raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()
        for _ in range(1000):  # connection_lost runs a loop iteration later (later still with unsent data)
            if getattr(cycle, "disconnected", True):
                return
            await asyncio.sleep(0.001)

    async def _send_source(self, answer: StreamAnswer) -> None:
        """Record mode: each upstream chunk goes on as it arrives, so the upstream sets the pace."""
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        async for chunk in answer.source:
            await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self.send({"type": "http.response.body", "body": b""})

    async def _until_disconnect(self, work: Any) -> None:
        work_task = asyncio.ensure_future(work)
        disconnect_task = asyncio.ensure_future(self._wait_for_disconnect())
        try:
            await asyncio.wait({work_task, disconnect_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work_task, disconnect_task):
                if not task.done():
                    task.cancel()
            await asyncio.gather(work_task, disconnect_task, return_exceptions=True)
        if work_task.done() and not work_task.cancelled() and work_task.exception() is not None:
            raise work_task.exception()  # type: ignore[misc]

    async def _wait_for_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._client_gone = True
                return

    async def _measured_send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
        elif self._first_byte_at is None and message.get("body"):
            self._first_byte_at = perf_counter()
        await self._send_raw(message)

    def _finish(self) -> None:
        """Metrics and the request log line: a few dict additions and one write(2), no await, no thread."""
        if not self._counted:
            return
        total = perf_counter() - self._started
        first_byte = None if self._first_byte_at is None else self._first_byte_at - self._started
        request, answer = self._request, self._answer
        # No status sent: 499 (nginx's "client closed request") when the client left first, 444 (nginx's "no
        # response") for a fault that drops the connection on purpose, 500 when the simulator failed.
        status = self._status or (
            499 if self._client_gone else 444 if isinstance(answer, DroppedConnection) else 500
        )
        deployment = request.deployment if request else ""
        mode = request.mode if request else ""
        prompt_tokens = request.prompt_tokens if request else 0
        completion_tokens = answer.completion_tokens if answer else 0
        operation = self.operation.value if self.operation else "unknown"
        observability.request_finished(deployment, operation, status, mode, prompt_tokens, completion_tokens,
                                       first_byte, total)
        if not settings.SIMULATOR_REQUEST_LOG:
            return
        fields = {
            "event": "request",
            "request_id": request_id_of(answer.headers) if answer else "",
            "method": self.scope["method"],
            "path": self.scope["path"],
            "deployment": deployment,
            "operation": operation,
            "mode": mode,
            "status": status,
            "stream": isinstance(answer, StreamAnswer),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "ttfb_ms": None if first_byte is None else round(first_byte * 1000, 3),
            "total_ms": round(total * 1000, 3),
            "client_disconnected": self._client_gone,
        }
        if settings.SIMULATOR_LOG_PROMPTS and request is not None:
            fields["prompt"] = prompt_of(request.body)
        write_request_line(fields)




async def sleep_until(deadline: float) -> None:
    """Sleep until a time.monotonic() deadline (not for a duration, so the work done since the request arrived
    is inside it). Timers may fire up to a millisecond early; the loop sleeps again for what is left."""
    while (remaining := deadline - monotonic()) > 0.0005:
        await asyncio.sleep(remaining)
