"""The store behind previous_response_id: bounded in time and size, chains walked back to their start."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from generators_app import response_store as store_module
from generators_app.response_store import MemoryResponseStore, context_items, response_store, save_turn


@pytest.fixture(autouse=True)
def fresh_store(settings):
    settings.REDIS_URL = ""
    response_store.reset()
    yield
    response_store.reset()


def test_entries_expire_after_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = MemoryResponseStore(max_entries=10, max_bytes=1000, ttl_seconds=60)
    now = time.monotonic()
    monkeypatch.setattr(store_module.time, "monotonic", lambda: now)
    memory.put("a", b"x")
    assert memory.get("a") == b"x"
    monkeypatch.setattr(store_module.time, "monotonic", lambda: now + 61)
    assert memory.get("a") is None and len(memory) == 0


def test_oldest_entries_go_first_beyond_the_count_and_byte_bounds() -> None:
    memory = MemoryResponseStore(max_entries=3, max_bytes=10, ttl_seconds=60)
    for name in "abcd":
        memory.put(name, b"12")
    assert memory.get("a") is None and [memory.get(n) for n in "bcd"] == [b"12"] * 3
    memory.put("e", b"12345678")  # 14 bytes with c, d, e: b and c go
    assert memory.get("b") is None and memory.get("c") is None and memory.get("e") is not None
    memory.put("huge", b"x" * 11)  # larger than the whole store: not kept, nothing evicted for it
    assert memory.get("huge") is None and memory.get("e") is not None


def test_a_chain_is_walked_back_to_its_start_and_a_gap_makes_it_unknown() -> None:
    save_turn("r1", None, [{"role": "user", "content": "one"}, {"type": "message", "role": "assistant"}])
    save_turn("r2", "r1", [{"role": "user", "content": "two"}])
    save_turn("r3", "r2", [{"type": "function_call_output", "call_id": "c", "output": "3"}])
    assert [item.get("content", item.get("output")) for item in context_items("r3")] == ["one", None, "two", "3"]
    assert context_items("nope") is None
    response_store.memory.clear()
    save_turn("r3", "r2", [])
    assert context_items("r3") is None  # its ancestor was evicted


def test_without_redis_preload_is_a_no_op() -> None:
    asyncio.run(store_module.preload({"previous_response_id": "resp_x"}))
    assert not response_store.shared and context_items("resp_x") is None


def _redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_with_redis_another_process_continues_the_chain(settings) -> None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not _redis_available(url):
        pytest.skip("no Redis to share responses through")
    settings.REDIS_URL = url
    response_store.reset()
    first, second = f"resp_{uuid.uuid4().hex}", f"resp_{uuid.uuid4().hex}"

    async def scenario() -> list[dict] | None:
        save_turn(first, None, [{"role": "user", "content": "hello"}])
        save_turn(second, first, [{"role": "user", "content": "again"}])
        await asyncio.sleep(0.2)  # the write-behind lands
        response_store.memory.clear()  # as seen from a process that served neither turn
        assert context_items(second) is None
        await store_module.preload({"previous_response_id": second})
        return context_items(second)

    items = asyncio.run(scenario())
    assert [item["content"] for item in items or []] == ["hello", "again"]
