"""Actions on recording sets and recordings: the one place that the data plane, admin, commands and the API call.

Reads used by the data plane (``load_set_keys``, ``load_stored_answer``, ``load_candidates``) are plain sync
functions the in-process index (index.py) runs off the event loop, once per configuration version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import transaction
from django.db.models import F, QuerySet

from recordings_app.matching import Candidate, match_key, normalize_body
from recordings_app.models import Recording, RecordingSet
from recordings_app.recorder import HOP_BY_HOP, Capture, is_secret_header
from recordings_app.replay import StoredAnswer
from recordings_app.signals import recordings_changed

logger = logging.getLogger(__name__)

CANDIDATES_LIMIT = 1000  # how many recordings a miss explanation compares against (most recent first)


class InvalidContent(ValueError):
    """Content an editor or an import tried to store that a replay could not serve."""


# --- recording ------------------------------------------------------------------------------------------


def should_save(capture: Capture, save_errors: bool) -> bool:
    """Complete answers only; error answers (status >= 400) only when the set says so."""
    return capture.complete and (capture.status < 400 or save_errors)


def save_recording(
    *,
    recording_set_id: int,
    deployment_name: str,
    operation: str,
    method: str,
    request_payload: Mapping[str, Any],
    capture: Capture,
    save_errors: bool,
) -> Recording | None:
    """Store what record mode captured; None when the set does not keep this answer."""
    if not should_save(capture, save_errors):
        return None
    recording_set = RecordingSet.objects.get(pk=recording_set_id)
    normalized = normalize_body(request_payload)
    return Recording.objects.create(
        recording_set=recording_set,
        deployment_name=deployment_name,
        operation=operation,
        match_key=match_key(method, operation, normalized, recording_set.ignore_fields or []),
        request_body=normalized,
        status=capture.status,
        headers=capture.headers,
        body="" if capture.is_stream else capture.body,
        is_stream=capture.is_stream,
        stream_events=capture.events if capture.is_stream else [],
        duration_ms=capture.duration_ms,
    )


def refresh_key(recording: Recording, recording_set: RecordingSet | None = None) -> str:
    """Recompute (and set, without saving) a recording's key from its body and its set's ignored fields."""
    target = recording_set or recording.recording_set
    recording.match_key = match_key("POST", recording.operation, recording.request_body, target.ignore_fields or [])
    return recording.match_key


# --- reads for the in-process index ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyEntry:
    recording_id: int
    operation: str
    match_key: str
    deployment_name: str


def load_set_keys(recording_set_id: int) -> list[KeyEntry]:
    """Every enabled recording of a set, as its key only (small: bodies load on first use)."""
    rows = (
        Recording.objects.filter(recording_set_id=recording_set_id, enabled=True)
        .order_by("pk")
        .values_list("pk", "operation", "match_key", "deployment_name")
    )
    return [KeyEntry(*row) for row in rows]


def load_stored_answer(recording_id: int) -> StoredAnswer | None:
    """One recording's answer by primary key; None if it is gone or disabled since the index was built."""
    row = (
        Recording.objects.filter(pk=recording_id, enabled=True)
        .values_list("status", "headers", "body", "is_stream", "stream_events", "duration_ms")
        .first()
    )
    if row is None:
        return None
    status, headers, body, is_stream, events, duration_ms = row
    return StoredAnswer.from_values(recording_id, status, headers, body, is_stream, events, duration_ms)


def load_candidates(recording_set_id: int, operation: str, limit: int = CANDIDATES_LIMIT) -> list[Candidate]:
    rows = (
        Recording.objects.filter(recording_set_id=recording_set_id, operation=operation, enabled=True)
        .order_by("-pk")
        .values_list("pk", "deployment_name", "request_body")[:limit]
    )
    return [Candidate(pk, deployment, body if isinstance(body, dict) else {}) for pk, deployment, body in rows]


def add_hits(hits: Mapping[int, tuple[int, datetime]]) -> None:
    """Add counted replays (``{id: (count, last_hit_at)}``). ``update()`` sends no signal: no cache reload."""
    for recording_id, (count, last_hit_at) in hits.items():
        Recording.objects.filter(pk=recording_id).update(hit_count=F("hit_count") + count, last_hit_at=last_hit_at)


# --- curation -------------------------------------------------------------------------------------------


def _changed() -> None:
    """Announce a bulk change (no post_save was sent); the listener bumps the version when the transaction commits."""
    recordings_changed.send(sender=Recording)


def set_enabled(recordings: QuerySet[Recording], enabled: bool) -> int:
    count = recordings.update(enabled=enabled)
    _changed()
    return count


def duplicate_recordings(recordings: Iterable[Recording]) -> list[Recording]:
    """Copies with fresh hit counts; the copy serves the same requests (matches rotate), so edit or disable one."""
    copies = []
    with transaction.atomic():
        for original in recordings:
            copy = Recording.objects.get(pk=original.pk)
            copy.pk = None
            copy.hit_count, copy.last_hit_at = 0, None
            copy.save(force_insert=True)
            copies.append(copy)
    return copies


def move_recordings(recordings: QuerySet[Recording], target: RecordingSet) -> int:
    """Move to another set, re-keyed with that set's ignored fields."""
    moved = list(recordings.only("pk", "operation", "request_body", "match_key", "recording_set"))
    for recording in moved:
        recording.recording_set = target
        refresh_key(recording, target)
    with transaction.atomic():
        Recording.objects.bulk_update(moved, ["recording_set", "match_key"], batch_size=500)
        _changed()
    return len(moved)


def rekey_set(recording_set: RecordingSet) -> int:
    """After a set's ignored fields changed: recompute its recordings' keys (lossless: bodies keep all fields)."""
    changed = []
    for recording in Recording.objects.filter(recording_set=recording_set).only("pk", "operation", "request_body",
                                                                                 "match_key"):
        old = recording.match_key
        if refresh_key(recording, recording_set) != old:
            changed.append(recording)
    if changed:
        Recording.objects.bulk_update(changed, ["match_key"], batch_size=500)
        _changed()
    return len(changed)


def normalize_request(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A request body as recordings store it (see matching.normalize_body)."""
    return normalize_body(payload)


def clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Answer headers as stored: lower-case names; credentials refused, hop-by-hop ones dropped."""
    cleaned = {}
    for name, value in headers.items():
        lowered = name.lower()
        if is_secret_header(lowered):
            raise InvalidContent(f"the header '{lowered}' is a credential: recordings never keep one")
        if lowered not in HOP_BY_HOP:
            cleaned[lowered] = value
    return cleaned


def parse_json_text(text: str, what: str = "the body") -> Any:
    """Parse editor text; InvalidContent names the line and column of the first problem."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidContent(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def validate_stream_events(value: Any) -> list[dict[str, Any]]:
    """A list of ``{"offset_ms": number >= 0, "data": text, "event": optional name}`` in time order.

    Each ``data`` must be JSON or ``[DONE]``: that is what the SDKs parse."""
    if not isinstance(value, list):
        raise InvalidContent("the stream events must be a JSON list")
    events: list[dict[str, Any]] = []
    previous = 0.0
    for position, item in enumerate(value):
        where = f"stream event {position}"
        if not isinstance(item, dict):
            raise InvalidContent(f"{where} must be an object with 'offset_ms' and 'data'")
        unknown = set(item) - {"offset_ms", "data", "event"}
        if unknown:
            raise InvalidContent(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        offset = item.get("offset_ms", 0)
        if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
            raise InvalidContent(f"{where}: 'offset_ms' must be a number of milliseconds, at least 0")
        if offset < previous:
            raise InvalidContent(f"{where}: 'offset_ms' goes back in time ({offset} after {previous})")
        previous = float(offset)
        data = item.get("data")
        if not isinstance(data, str):
            raise InvalidContent(f"{where}: 'data' must be text")
        if data.strip() != "[DONE]":
            try:
                orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidContent(f"{where}: 'data' is neither JSON nor [DONE] ({exc})") from None
        if "event" in item and not isinstance(item["event"], str):
            raise InvalidContent(f"{where}: 'event' must be text")
        events.append(item)
    return events
