"""`/healthz`, `/readyz` and `/metrics` as plain ASGI endpoints, routed in asgi.py ahead of Django.

Load balancers and Prometheus call these often, so they skip Django's middleware; and none of them runs on
the data plane's path: /metrics renders on a thread (reading every process's metric files), /readyz pings
with timeouts.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from django.urls import re_path

from generators_app import observability
from generators_app.readiness import check_readiness

_render_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")
_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


async def _respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _get_only(endpoint: Any) -> Any:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", _TEXT)
            return
        await endpoint(send)

    return app


async def healthz(send: Any) -> None:
    """Liveness: the process runs its event loop. Nothing external is checked (that is /readyz)."""
    await _respond(send, 200, b"ok\n", _TEXT)


async def readyz(send: Any) -> None:
    """200 when the database (and Redis, when configured) answer; 503 naming what does not."""
    report = await check_readiness()
    await _respond(send, 200 if report.ready else 503, orjson.dumps(report.as_dict()), _JSON)


async def metrics(send: Any) -> None:
    # This process's pending counts move on the event loop (the only thread that touches them); reading
    # all processes' files and formatting the text happens on a thread.
    observability.flush()
    body = await asyncio.get_running_loop().run_in_executor(_render_executor, observability.render)
    await _respond(send, 200, body, observability.CONTENT_TYPE.encode())


probe_urlpatterns = [
    re_path(r"^healthz/?$", _get_only(healthz)),
    re_path(r"^readyz/?$", _get_only(readyz)),
    re_path(r"^metrics/?$", _get_only(metrics)),
]
