"""The data plane's transport: a Channels AsyncHttpConsumer that reads the body, runs the pipeline and writes
JSON or SSE. Streams run as a task raced against the client's disconnect, so a client that goes away stops
the work at once (a consumer does not see http.disconnect while handle() runs)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings

from generators_app.answers import JsonAnswer, StreamAnswer
from generators_app.catalogue import Operation
from generators_app.errors import ApiError, body_too_large
from generators_app.pipeline import DataPlaneRequest, error_answer, handle_request

logger = logging.getLogger(__name__)

_INTERNAL_ERROR = ApiError(
    500,
    {"error": {"message": "The simulator failed to process the request.", "type": "server_error",
               "param": None, "code": "internal_error"}},
)


class DataPlaneConsumer(AsyncHttpConsumer):
    operation: Operation | None = None
    surface: str = ""

    def __init__(self, operation: Operation | None = None, surface: str = "") -> None:
        super().__init__()
        self.operation, self.surface = operation, surface
        self._body_size = 0
        self._too_large = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # One HTTP exchange and no channel layer: a plain receive loop instead of Channels' multi-source
        # dispatcher, which costs a task and an asyncio.wait per message on the hot path.
        self.scope, self.base_send, self._receive = scope, send, receive
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

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
        try:
            if self._too_large:
                await self._send_json(error_answer(body_too_large(settings.SIMULATOR_MAX_BODY_BYTES)))
            else:
                await self.handle(b"".join(self.body))
        finally:
            self.body = []
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
        )
        try:
            answer = await handle_request(request)
        except Exception:
            logger.exception("data plane failed on %s %s", scope["method"], scope["path"])
            answer = error_answer(_INTERNAL_ERROR)
        if isinstance(answer, JsonAnswer):
            await self._send_json(answer)
        else:
            await self._until_disconnect(self._send_stream(answer))

    async def _send_json(self, answer: JsonAnswer) -> None:
        answer.headers.append((b"content-length", str(len(answer.body)).encode()))
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        await self.send({"type": "http.response.body", "body": answer.body})

    async def _send_stream(self, answer: StreamAnswer) -> None:
        await self.send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
        # Without pacing the whole stream goes out in one write; the client still parses it event by event.
        await self.send({"type": "http.response.body", "body": b"".join(answer.frames)})

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
                return


