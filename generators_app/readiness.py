"""Readiness: can this process reach what it serves from? The database always, Redis when configured.

Each check runs with a timeout (SIMULATOR_READY_TIMEOUT_SECONDS) so an unreachable host answers "not ready"
quickly instead of hanging the probe. The database check runs on a small dedicated thread pool (the ORM is
sync); it is a probe, not the data plane, so the thread hop is fine here.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readiness")
_redis_clients: dict[str, object] = {}
_CREDENTIALS = re.compile(r"//[^/@\s]*@")
_MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or the reason it failed

    def as_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "unavailable", "checks": self.checks}


def _ping_database() -> None:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        # The connection is persistent in this thread: drop it so the next probe reconnects from scratch.
        connection.close()
        raise


async def _ping_redis(url: str, timeout: float) -> None:
    import redis.asyncio

    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    await client.ping()  # type: ignore[attr-defined]


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "unreachable: no answer within the readiness timeout"
    text = f"{type(error).__name__}: {error}".strip()
    return "unreachable: " + _CREDENTIALS.sub("//***@", text)[:_MAX_REASON]


def redis_urls_to_check() -> dict[str, str]:
    """REDIS_URL (limiter), and the Celery broker when it is a different Redis."""
    urls = {}
    if settings.REDIS_URL:
        urls["redis"] = settings.REDIS_URL
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")) and broker != settings.REDIS_URL:
        urls["broker"] = broker
    return urls


async def check_readiness() -> ReadinessReport:
    timeout = settings.SIMULATOR_READY_TIMEOUT_SECONDS
    loop = asyncio.get_running_loop()
    probes = {"database": asyncio.wait_for(loop.run_in_executor(_executor, _ping_database), timeout)}
    for name, url in redis_urls_to_check().items():
        probes[name] = asyncio.wait_for(_ping_redis(url, timeout), timeout)
    outcomes = await asyncio.gather(*probes.values(), return_exceptions=True)
    checks = {
        name: "ok" if not isinstance(outcome, BaseException) else _reason(outcome)
        for name, outcome in zip(probes, outcomes, strict=True)
    }
    return ReadinessReport(ready=all(value == "ok" for value in checks.values()), checks=checks)
