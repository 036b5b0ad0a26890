"""Responses kept for `previous_response_id`: what a follow-up request continues from.

Each stored response keeps only its own turn — its input items and its output, written as input items — and
the id of the response it continued, so a conversation of N turns costs N entries, not N² items; the context
of a follow-up is the chain walked back to its start.

Bounded: entries expire after SIMULATOR_RESPONSES_TTL_SECONDS, and the oldest are dropped beyond
SIMULATOR_RESPONSES_MAX_STORED entries or SIMULATOR_RESPONSES_MAX_BYTES. A follow-up to a dropped response
gets the real service's 400 `previous_response_not_found`.

Processes: the store is per process. With REDIS_URL set, every stored response is also written to Redis
(with the same TTL) and a follow-up whose chain is not in this process is fetched from Redis first, so any
worker or replica can continue any conversation. Without Redis, several worker processes do not share
responses: run one worker (or set REDIS_URL) when clients use `previous_response_id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

logger = logging.getLogger(__name__)

__all__ = ["StoredTurn", "context_items", "preload", "response_store", "save_turn"]

_REDIS_PREFIX = "sim:resp:"
_MAX_CHAIN = 10_000
# A follow-up can reach another process before the write-behind to Redis has landed: look again briefly.
_REDIS_MISS_RETRIES_S = (0.005, 0.02, 0.05)
_REDIS_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class StoredTurn:
    previous_response_id: str | None
    items: list[dict[str, Any]]  # this turn's input items, then its output as input items


class MemoryResponseStore:
    """An insertion-ordered map with a TTL and two size bounds; O(1) per operation (amortised)."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, response_id: str) -> bytes | None:
        entry = self._entries.get(response_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._drop(response_id)
            return None
        return entry[1]

    def put(self, response_id: str, data: bytes) -> None:
        if response_id in self._entries:
            self._drop(response_id)
        if len(data) > self.max_bytes:
            return  # larger than the whole store: keeping it would evict everything else
        self._entries[response_id] = (time.monotonic() + self.ttl_seconds, data)
        self._bytes += len(data)
        self._evict()

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, response_id: str) -> None:
        _, data = self._entries.pop(response_id)
        self._bytes -= len(data)

    def _evict(self) -> None:
        now = time.monotonic()
        entries = self._entries
        while entries:
            oldest_id, (expires_at, _) = next(iter(entries.items()))
            if expires_at >= now and len(entries) <= self.max_entries and self._bytes <= self.max_bytes:
                return
            self._drop(oldest_id)


class _RedisMirror:
    """Write-behind and read-through to Redis; any Redis failure is logged and treated as a miss."""

    def __init__(self, url: str, ttl_seconds: float) -> None:
        self.url = url
        self.ttl_seconds = max(int(ttl_seconds), 1)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_warning = 0.0

    def _redis(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio

            self._client = redis.asyncio.from_url(
                self.url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
            )
            self._loop = loop
        return self._client

    def _warn(self, action: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            logger.warning("response store: Redis %s failed; serving from this process only", action, exc_info=True)

    def save_later(self, response_id: str, data: bytes) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._save(response_id, data))
        except RuntimeError:  # no running loop (a management command): nothing to share with
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, response_id: str, data: bytes) -> None:
        try:
            await self._redis().set(_REDIS_PREFIX + response_id, data, ex=self.ttl_seconds)
        except Exception:
            self._warn("write")

    async def fetch(self, response_id: str) -> bytes | None:
        try:
            return await self._redis().get(_REDIS_PREFIX + response_id)
        except Exception:
            self._warn("read")
            return None


class ResponseStore:
    def __init__(self) -> None:
        self._memory: MemoryResponseStore | None = None
        self._redis: _RedisMirror | None = None
        self._configured = False

    def _configure(self) -> None:
        ttl = float(getattr(settings, "SIMULATOR_RESPONSES_TTL_SECONDS", 3600))
        self._memory = MemoryResponseStore(
            int(getattr(settings, "SIMULATOR_RESPONSES_MAX_STORED", 10_000)),
            int(getattr(settings, "SIMULATOR_RESPONSES_MAX_BYTES", 16 * 1024 * 1024)),
            ttl,
        )
        url = getattr(settings, "REDIS_URL", "")
        self._redis = _RedisMirror(url, ttl) if url else None
        self._configured = True

    @property
    def memory(self) -> MemoryResponseStore:
        if not self._configured:
            self._configure()
        assert self._memory is not None
        return self._memory

    @property
    def shared(self) -> bool:
        if not self._configured:
            self._configure()
        return self._redis is not None

    def get(self, response_id: str) -> StoredTurn | None:
        data = self.memory.get(response_id)
        if data is None:
            return None
        raw = orjson.loads(data)
        return StoredTurn(raw.get("previous_response_id"), raw.get("items") or [])

    def put(self, response_id: str, turn: StoredTurn) -> None:
        record = {"previous_response_id": turn.previous_response_id, "items": turn.items}
        try:
            data = orjson.dumps(record)
        except TypeError:  # an integer beyond 64 bits in a client's item: the standard library writes it
            data = json.dumps(record).encode()
        self.memory.put(response_id, data)
        if self._redis is not None:
            self._redis.save_later(response_id, data)

    async def fetch_chain(self, response_id: str) -> None:
        """Bring the chain ending at `response_id` into this process (a no-op without Redis)."""
        if not self.shared or self._redis is None:
            return
        current: str | None = response_id
        first = True
        for _ in range(_MAX_CHAIN):
            if current is None or self.memory.get(current) is not None:
                return
            data = await self._redis.fetch(current)
            if data is None and first:
                for delay in _REDIS_MISS_RETRIES_S:
                    await asyncio.sleep(delay)
                    data = await self._redis.fetch(current)
                    if data is not None:
                        break
            if data is None:
                return
            self.memory.put(current, data)
            current = orjson.loads(data).get("previous_response_id")
            first = False

    def reset(self) -> None:
        """Forget everything and re-read the settings (tests)."""
        self._memory, self._redis, self._configured = None, None, False


response_store = ResponseStore()


async def preload(payload: object) -> None:
    """Before a Responses request is prepared: make its `previous_response_id` chain available locally."""
    if not isinstance(payload, dict) or not response_store.shared:
        return
    previous = payload.get("previous_response_id")
    if isinstance(previous, str) and previous:
        await response_store.fetch_chain(previous)


def context_items(response_id: str) -> list[dict[str, Any]] | None:
    """Every item of the conversation that ends with `response_id`, oldest first; None when it is unknown
    (never stored, expired or evicted — or an ancestor was)."""
    turns: list[list[dict[str, Any]]] = []
    current: str | None = response_id
    for _ in range(_MAX_CHAIN):
        if current is None:
            break
        turn = response_store.get(current)
        if turn is None:
            return None
        turns.append(turn.items)
        current = turn.previous_response_id
    return [item for items in reversed(turns) for item in items]


def save_turn(response_id: str, previous_response_id: str | None, items: list[dict[str, Any]]) -> None:
    response_store.put(response_id, StoredTurn(previous_response_id, items))
