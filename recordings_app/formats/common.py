"""What every reader produces, and the facts the readers share: routes, headers, SSE text, JSON bodies.

A reader turns a file into a stream of ``Detected`` (which format it is), ``SetOptions`` (our format's
header), ``RecordingData`` (one recording, not yet keyed: transfer.py normalizes and keys it with
``matching``, exactly as record mode does), ``Skipped`` (an entry that is valid in its format but cannot
be replayed, e.g. a multipart audio upload; the job lists it as a warning) and ``Invalid`` (an entry with
an error, at a line). A file that is not YAML at all raises ``YamlFormatError``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from recordings_app.formats.yamlio import YamlFormatError
from recordings_app.recorder import HOP_BY_HOP, is_secret_header, parse_event

__all__ = [
    "KNOWN_OPERATIONS",
    "Detected",
    "FieldProblem",
    "Invalid",
    "RecordingData",
    "SetOptions",
    "Skipped",
    "YamlFormatError",
    "clean_headers",
    "decode_text",
    "operation_for_path",
    "parse_sse_text",
    "spread_offsets",
]


@dataclass(frozen=True, slots=True)
class Detected:
    format: str  # "aoai-simulator-recordings" | "aoai-api-simulator" | "vcr"


@dataclass(slots=True)
class SetOptions:
    """A recording set's metadata and matching options, as a file states them (None: not stated)."""

    name: str | None = None
    description: str | None = None
    ignore_fields: list[str] | None = None
    timing_factor: float | None = None
    save_errors: bool | None = None
    line: int = 0


@dataclass(slots=True)
class RecordingData:
    """One recording as read from a file; ``request_body`` is the request as sent (normalized on save)."""

    deployment_name: str
    operation: str
    request_body: dict[str, Any]
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    is_stream: bool = False
    stream_events: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    enabled: bool = True
    method: str = "POST"
    line: int = 0


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry valid in its format that cannot be replayed here (a warning, not an error)."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """An entry that is wrong: the import fails, but reading goes on to report the next problems too."""

    line: int
    message: str


class FieldProblem(ValueError):
    """A field of one entry is wrong; the reader turns ``path`` into a line number."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- routes ---------------------------------------------------------------------------------------------

# (path pattern, operation). A ``deployment`` group names the deployment; otherwise it is the body's model.
_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), operation)
    for pattern, operation in (
        (r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$", "chat"),
        (r"^/openai/deployments/(?P<deployment>[^/]+)/completions/?$", "completions"),
        (r"^/openai/deployments/(?P<deployment>[^/]+)/embeddings/?$", "embeddings"),
        (r"^/openai/deployments/(?P<deployment>[^/]+)/images/generations/?$", "images"),
        (r"^/openai/deployments/(?P<deployment>[^/]+)/audio/transcriptions/?$", "audio_transcriptions"),
        (r"^/openai/deployments/(?P<deployment>[^/]+)/audio/translations/?$", "audio_translations"),
        (r"^(?:/openai)?(?:/v1)?/responses/?$", "responses"),
        (r"^(?:/openai)?/v1/chat/completions/?$", "chat"),
        (r"^(?:/openai)?/v1/completions/?$", "completions"),
        (r"^(?:/openai)?/v1/embeddings/?$", "embeddings"),
        (r"^(?:/openai)?/v1/images/generations/?$", "images"),
        (r"^(?:/openai)?/v1/audio/transcriptions/?$", "audio_transcriptions"),
        (r"^(?:/openai)?/v1/audio/translations/?$", "audio_translations"),
    )
)
# The operations a recording can be for (the values of generators_app.catalogue.Operation that replay).
KNOWN_OPERATIONS = frozenset(operation for _, operation in _ROUTES)


def operation_for_path(uri: str) -> tuple[str, str | None] | None:
    """``(operation, deployment or None)`` for a data-plane URL or path; None for anything else."""
    path = urlsplit(uri).path or uri
    for pattern, operation in _ROUTES:
        found = pattern.match(path)
        if found:
            return operation, found.groupdict().get("deployment")
    return None


# --- headers, text, streams -----------------------------------------------------------------------------


def clean_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Answer headers as record mode keeps them: lower-case names, one text value each (a vcr list is
    joined), without credentials, session state or hop-by-hop/framing headers."""
    cleaned: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lowered = str(name).lower()
        if lowered in HOP_BY_HOP or is_secret_header(lowered) or value is None:
            continue
        if isinstance(value, list | tuple):
            text = ", ".join(str(item) for item in value if item is not None)
        else:
            text = str(value)
        cleaned[lowered] = text
    return cleaned


def decode_text(value: Any, compressed: bool = False) -> str | None:
    """A body as text: a YAML string as is, ``!!binary`` bytes decoded (gunzipped first when the answer was
    gzip-encoded); None when it is not UTF-8 text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if compressed or raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def parse_sse_text(text: str) -> list[tuple[str | None, str]]:
    """An SSE body (``event:``/``data:`` blocks separated by blank lines) -> ``[(event name, data)]``."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event = parse_event(block)
        if event is not None:
            events.append(event)
    return events


def looks_like_sse(text: str) -> bool:
    start = text.lstrip()[:6]
    return start.startswith(("data:", "event:"))


def spread_offsets(count: int, duration_ms: float) -> list[float]:
    """Offsets for events whose own times were not recorded: evenly over the duration (as replay re-frames)."""
    if duration_ms <= 0:
        return [0.0] * count
    if count == 1:
        return [round(duration_ms, 3)]
    return [round(duration_ms * position / (count - 1), 3) for position in range(count)]


def stream_events(events: Iterable[tuple[str | None, str]], offsets: Iterable[float]) -> list[dict[str, Any]]:
    """The stored shape of stream events (recorder.UpstreamStream): offset_ms, data, and event when named."""
    stored = []
    for (name, data), offset in zip(events, offsets, strict=True):
        item: dict[str, Any] = {"offset_ms": offset, "data": data}
        if name:
            item["event"] = name
        stored.append(item)
    return stored


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a request body holds, or None when it is not one."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True
