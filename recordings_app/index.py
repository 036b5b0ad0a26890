"""The in-process recording index: a replay lookup is a dict hit, or one indexed query the first time.

Per configuration version (the stamp every admin/config/record change bumps, passed in by the caller) the
index keeps, for each recording set that was asked for, the keys of its enabled recordings (loaded in one
query) and a bounded LRU of answers (each loaded by primary key on first use). A new version drops it all,
so an edit in admin is served by the next request of every process once it sees the new version.

Hits are counted in memory and written in batches off the request path with ``QuerySet.update`` (which
sends no signal, so counting never invalidates any cache).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from recordings_app import services
from recordings_app.matching import MissExplanation, explain_miss
from recordings_app.replay import StoredAnswer

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _SetIndex:
    # (operation, match key) -> ((recording id, deployment name), ...) in creation order
    keys: dict[tuple[str, str], tuple[tuple[int, str], ...]]
    turns: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def pick(self, operation: str, key: str, deployment: str) -> int | None:
        """Same-deployment recordings first; several equal matches take turns (like re-asking the real model)."""
        entries = self.keys.get((operation, key))
        if not entries:
            return None
        own = [recording_id for recording_id, name in entries if name == deployment]
        choices = own or [recording_id for recording_id, _ in entries]
        if len(choices) == 1:
            return choices[0]
        turn_key = (operation, key, deployment)
        turn = self.turns.get(turn_key, 0)
        self.turns[turn_key] = turn + 1
        return choices[turn % len(choices)]


def _build_set_index(recording_set_id: int) -> _SetIndex:
    keys: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for entry in services.load_set_keys(recording_set_id):
        keys.setdefault((entry.operation, entry.match_key), []).append((entry.recording_id, entry.deployment_name))
    return _SetIndex({key: tuple(value) for key, value in keys.items()})


class RecordingIndex:
    def __init__(self, answer_cache_size: int | None = None) -> None:
        self._version: int | None = None
        self._sets: dict[int, _SetIndex] = {}
        self._answers: OrderedDict[int, StoredAnswer] = OrderedDict()
        self._cache_size = answer_cache_size
        self._lock: asyncio.Lock | None = None

    @property
    def cache_size(self) -> int:
        return self._cache_size or int(getattr(settings, "SIMULATOR_REPLAY_CACHE_ENTRIES", 4096))

    def _at_version(self, version: int) -> None:
        if version != self._version:
            self._version, self._sets, self._answers = version, {}, OrderedDict()

    async def find(
        self, version: int, recording_set_id: int, operation: str, key: str, deployment: str
    ) -> StoredAnswer | None:
        """The answer recorded for this key, or None (a miss). May raise replay.InvalidRecording."""
        self._at_version(version)
        set_index = self._sets.get(recording_set_id)
        if set_index is None:
            set_index = await self._load_set(version, recording_set_id)
        recording_id = set_index.pick(operation, key, deployment)
        if recording_id is None:
            return None
        answer = self._answers.get(recording_id)
        if answer is not None:
            self._answers.move_to_end(recording_id)
            return answer
        answer = await sync_to_async(services.load_stored_answer, thread_sensitive=False)(recording_id)
        if answer is not None and self._version == version:
            self._answers[recording_id] = answer
            while len(self._answers) > self.cache_size:
                self._answers.popitem(last=False)
        return answer

    async def _load_set(self, version: int, recording_set_id: int) -> _SetIndex:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            set_index = self._sets.get(recording_set_id) if self._version == version else None
            if set_index is None:
                set_index = await sync_to_async(_build_set_index, thread_sensitive=False)(recording_set_id)
                if self._version == version:
                    self._sets[recording_set_id] = set_index
        return set_index

    async def explain(
        self,
        *,
        recording_set_id: int,
        recording_set: str,
        operation: str,
        deployment: str,
        key: str,
        normalized: dict,
        ignore_fields: frozenset[str],
    ) -> MissExplanation:
        """Why nothing matched: the nearest recordings of the set and the fields that differ (an error path)."""
        candidates = await sync_to_async(services.load_candidates, thread_sensitive=False)(recording_set_id, operation)
        return explain_miss(
            recording_set=recording_set, operation=operation, deployment_name=deployment, key=key,
            normalized=normalized, ignore_fields=ignore_fields, candidates=candidates,
        )

    def reset(self) -> None:
        self._version, self._sets, self._answers, self._lock = None, {}, OrderedDict(), None


class HitCounter:
    """Counts replays per recording in memory; a background task adds them to the database in batches."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[int, object]] = {}
        self._flusher: asyncio.Task | None = None

    def hit(self, recording_id: int) -> None:
        count, _ = self._pending.get(recording_id, (0, None))
        self._pending[recording_id] = (count + 1, timezone.now())
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        interval = float(getattr(settings, "SIMULATOR_HIT_FLUSH_SECONDS", 1.0))
        while self._pending:
            await asyncio.sleep(interval)
            await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            await sync_to_async(services.add_hits, thread_sensitive=False)(batch)
        except Exception:  # the database may be restarting: keep the counts for the next round
            logger.warning("could not save %d recording hit counts; retrying later", len(batch), exc_info=True)
            for recording_id, (count, last) in batch.items():
                pending, _ = self._pending.get(recording_id, (0, None))
                self._pending[recording_id] = (pending + count, last)


recording_index = RecordingIndex()
hit_counter = HitCounter()
