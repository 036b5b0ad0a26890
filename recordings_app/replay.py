"""Turn a stored recording into the answer a request gets: framing (JSON or SSE) and timing.

Timing: a stream replays each recorded event at its recorded offset times the set's ``timing_factor``; a
JSON answer arrives after the recorded duration times the factor. Offsets count from the moment the
request was forwarded upstream, so they include the time to the first token. A factor of 0 sends
everything at once. A framing change spreads the events evenly over the recorded duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from recordings_app import reframe
from recordings_app.reframe import ReframeError, SseEvent

JSON_CONTENT_TYPE = b"application/json"
SSE_CONTENT_TYPE = b"text/event-stream; charset=utf-8"
# Re-computed or re-framed on every replay: never taken from the recording.
_FRAMING_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding", "date", "content-encoding"})


class InvalidRecording(ValueError):
    """A stored recording that cannot be replayed (e.g. its body was edited into invalid JSON)."""

    def __init__(self, recording_id: int, problem: str) -> None:
        super().__init__(f"recording {recording_id}: {problem}")
        self.recording_id = recording_id
        self.problem = problem

    def error_body(self) -> dict[str, Any]:
        message = (
            f"The simulator cannot replay recording {self.recording_id}: {self.problem}. "
            "Fix or disable it in the admin (Recordings)."
        )
        return {"error": {"message": message, "type": "server_error", "param": None,
                          "code": "simulator_invalid_recording"}}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    offset_ms: float
    data: str
    event: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A recording's answer as the index keeps it in memory (no ORM object on the hot path)."""

    recording_id: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str
    is_stream: bool
    events: tuple[StoredEvent, ...]
    duration_ms: float
    completion_tokens: int = 0  # from the recorded usage, for metrics and the request log
    body_problem: str = ""  # why a JSON body cannot be served (checked once, when loaded)

    @classmethod
    def from_values(
        cls,
        recording_id: int,
        status: int,
        headers: Mapping[str, Any] | None,
        body: str,
        is_stream: bool,
        stream_events: Sequence[Any] | None,
        duration_ms: float,
    ) -> StoredAnswer:
        events = []
        for position, item in enumerate(stream_events or []):
            if not isinstance(item, Mapping) or not isinstance(item.get("data"), str):
                raise InvalidRecording(recording_id, f"stream event {position} has no text 'data'")
            offset = item.get("offset_ms", 0)
            if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
                raise InvalidRecording(recording_id, f"stream event {position} has an invalid 'offset_ms'")
            name = item.get("event")
            events.append(StoredEvent(float(offset), item["data"], name if isinstance(name, str) else None))
        header_pairs = tuple(
            (str(name).lower(), str(value)) for name, value in (headers or {}).items() if value is not None
        )
        body = body or ""
        tokens, problem = 0, ""
        if is_stream:
            tokens = _recorded_completion_tokens([event.data for event in reversed(events[-3:])])
        elif _is_json(dict(header_pairs).get("content-type", "application/json")):
            try:
                tokens = _usage_tokens(orjson.loads(body))
            except orjson.JSONDecodeError as exc:
                problem = f"its stored body is not valid JSON ({exc})"
        return cls(recording_id, int(status), header_pairs, body, bool(is_stream), tuple(events),
                   float(duration_ms or 0), tokens, problem)

    def sse_events(self) -> list[SseEvent]:
        return [(event.event, event.data) for event in self.events]


def _is_json(content_type: str) -> bool:
    """JSON answers are checked and can be re-framed; others (audio as text, srt, vtt) replay as recorded."""
    return "json" in content_type.lower()


def _usage_tokens(value: Any) -> int:
    usage = value.get("usage") if isinstance(value, dict) else None
    if not isinstance(usage, dict) and isinstance(value, dict) and isinstance(value.get("response"), dict):
        usage = value["response"].get("usage")  # Responses API events carry it in their response
    if not isinstance(usage, dict):
        return 0
    tokens = usage.get("completion_tokens", usage.get("output_tokens", 0))
    return tokens if isinstance(tokens, int) else 0


def _recorded_completion_tokens(texts: list[str]) -> int:
    """What the usage in the last events of a recorded stream says; 0 when they say nothing."""
    for text in texts:
        try:
            tokens = _usage_tokens(orjson.loads(text))
        except orjson.JSONDecodeError:
            continue
        if tokens:
            return tokens
    return 0


@dataclass(slots=True)
class ReplayedJson:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    delay_s: float


@dataclass(slots=True)
class ReplayedStream:
    status: int
    headers: list[tuple[bytes, bytes]]
    frames: list[bytes]
    offsets_s: list[float]  # when each frame is due, from the start of the answer


def frame_event(name: str | None, data: str) -> bytes:
    """One SSE event in AOAI's framing; multi-line data keeps one ``data:`` line per line."""
    lines = [f"event: {name}"] if name else []
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def _headers(stored: StoredAnswer, content_type: bytes) -> list[tuple[bytes, bytes]]:
    headers = [(name.encode("latin-1"), value.encode("latin-1", "replace"))
               for name, value in stored.headers if name not in _FRAMING_HEADERS]
    headers.append((b"content-type", content_type))
    return headers


def _spread(count: int, duration_s: float) -> list[float]:
    if count <= 1:
        return [duration_s] * count
    return [duration_s * position / (count - 1) for position in range(count)]


def replay(
    stored: StoredAnswer, operation: str, *, want_stream: bool, include_usage: bool, timing_factor: float
) -> ReplayedJson | ReplayedStream:
    """The answer for a request, in the framing it asked for. Raises InvalidRecording for unusable content."""
    factor = max(0.0, timing_factor)
    if stored.is_stream and want_stream:
        frames = [frame_event(event.event, event.data) for event in stored.events]
        offsets = [event.offset_ms * factor / 1000 for event in stored.events]
        return ReplayedStream(stored.status, _headers(stored, SSE_CONTENT_TYPE), frames, offsets)
    if stored.is_stream:  # a JSON request replaying a stream recording
        try:
            body = reframe.object_from_stream(operation, stored.sse_events())
        except ReframeError as exc:
            raise InvalidRecording(stored.recording_id, str(exc)) from None
        if body is None:
            raise InvalidRecording(stored.recording_id, f"a {operation} stream cannot be answered as JSON")
        last = stored.events[-1].offset_ms if stored.events else 0.0
        delay = max(stored.duration_ms, last) * factor / 1000
        return ReplayedJson(stored.status, _headers(stored, JSON_CONTENT_TYPE), orjson.dumps(body), delay)
    if stored.body_problem:
        raise InvalidRecording(stored.recording_id, stored.body_problem)
    delay = stored.duration_ms * factor / 1000
    content_type = dict(stored.headers).get("content-type", "application/json")
    # Errors are JSON even to a stream request, as the real service answers them.
    if want_stream and stored.status < 400 and _is_json(content_type):
        parsed = orjson.loads(stored.body)
        try:
            events = reframe.stream_from_object(operation, parsed, include_usage) if isinstance(parsed, dict) else None
        except ReframeError as exc:
            raise InvalidRecording(stored.recording_id, str(exc)) from None
        if events is not None:
            frames = [frame_event(name, data) for name, data in events]
            return ReplayedStream(stored.status, _headers(stored, SSE_CONTENT_TYPE), frames,
                                  _spread(len(frames), delay))
    # As recorded (an operation that never streams, or a non-JSON answer such as audio as srt).
    return ReplayedJson(stored.status, _headers(stored, content_type.encode("latin-1", "replace")),
                        stored.body.encode(), delay)
