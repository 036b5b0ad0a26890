"""Import and export of recordings: the database side of recording jobs (jobs.py runs them, with a Job row).

Import: every source file is read item by item (formats.read_recordings) and saved in batches inside ONE
transaction: if any file has an error, nothing is saved and every problem found (up to ``MAX_ERRORS``) is
reported with its file and line. Each recording is normalized and keyed with recordings_app.matching, as
record mode does (services.save_recording), with the target set's ignored fields.

Export: one set, streamed in primary-key order with a chunked query and written one recording at a time, so
memory stays flat whatever the size of the set.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import DatabaseError, transaction
from django.db.models import Value
from django.utils import timezone

from recordings_app.formats import (
    Detected,
    Invalid,
    RecordingData,
    SetOptions,
    Skipped,
    YamlFormatError,
    ours,
    read_recordings,
)
from recordings_app.matching import match_key, normalize_body
from recordings_app.models import Recording, RecordingSet
from recordings_app.signals import recordings_changed

logger = logging.getLogger(__name__)

MAX_ERRORS = 20
BATCH_SIZE = 500
MAX_DEPLOYMENT_NAME = 64
NO_TARGET_SET = "no recording set to import into: choose one (the set in the admin form, or --set NAME)"

# (recordings done, percent done, total or None): called often; the callee throttles.
Progress = Callable[[int, float, int | None], None]


def _no_progress(done: int, percent: float, total: int | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ImportSource:
    """A file to import: its name for messages, how to open it (binary), and its size for progress."""

    name: str
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
    size: int


@dataclass(slots=True)
class ImportOutcome:
    recording_set: RecordingSet | None = None
    created: int = 0
    skipped: int = 0
    formats: list[str] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


class ImportFailed(Exception):
    """The import changed nothing; ``errors`` are ``{"file", "line", "message"}`` in file order."""

    def __init__(self, outcome: ImportOutcome) -> None:
        super().__init__(f"{len(outcome.errors)} problem(s)")
        self.outcome = outcome


def problem(file: str, line: int, message: str) -> dict[str, Any]:
    return {"file": file, "line": line, "message": message}


class _Importer:
    def __init__(self, set_name: str | None, replace: bool, progress: Progress, total_bytes: int) -> None:
        self.set_name = set_name
        self.replace = replace
        self.progress = progress
        self.total_bytes = max(total_bytes, 1)
        self.done_bytes = 0
        self.outcome = ImportOutcome()
        self.batch: list[Recording] = []
        self.seen = 0

    # -- the target set ------------------------------------------------------------------------------
    def target(self, options: SetOptions | None, file: str) -> RecordingSet | None:
        """The set recordings go to: --set NAME, else the file's own set name; created on first need."""
        current = self.outcome.recording_set
        if current is not None:
            if options is not None and _differs(current, options):
                self.warn(file, options.line, f"the set '{current.name}' keeps its own options; the file's "
                                              "recording_set options were not applied")
            return current
        name = self.set_name or (options.name if options else None)
        if not name:
            return None
        recording_set = RecordingSet.objects.filter(name=name).first()
        if recording_set is None:
            recording_set = RecordingSet(name=name)
            if options is not None:
                for attr in ("description", "ignore_fields", "timing_factor", "save_errors"):
                    value = getattr(options, attr)
                    if value is not None:
                        setattr(recording_set, attr, value)
            recording_set.save()
        elif options is not None and _differs(recording_set, options):
            self.warn(file, options.line, f"the existing set '{name}' keeps its own options; the file's "
                                          "recording_set options were not applied")
        if self.replace:
            # One DELETE, not one per row with signals: the index reloads once, from recordings_changed.
            Recording.objects.filter(recording_set=recording_set)._raw_delete(Recording.objects.db)
        self.outcome.recording_set = recording_set
        return recording_set

    def warn(self, file: str, line: int, message: str) -> None:
        if len(self.outcome.warnings) < MAX_ERRORS:
            self.outcome.warnings.append(problem(file, line, message))

    def fail(self, file: str, line: int, message: str) -> None:
        self.outcome.errors.append(problem(file, line, message))
        self.batch.clear()  # nothing more is saved; reading goes on to report further problems

    @property
    def failing(self) -> bool:
        return bool(self.outcome.errors)

    # -- reading -------------------------------------------------------------------------------------
    def read(self, source: ImportSource) -> None:
        with source.open() as stream:
            try:
                for item in read_recordings(stream):
                    self._take(item, source)
                    if len(self.outcome.errors) >= MAX_ERRORS:
                        return
                    if self.seen % 50 == 0:
                        self._report(stream)
            except YamlFormatError as error:
                self.fail(source.name, error.line, error.message)
        self.done_bytes += source.size

    def _report(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            position = self.done_bytes + stream.tell()
            self.progress(self.outcome.created + len(self.batch), min(99.0, 100.0 * position / self.total_bytes),
                          None)

    def _take(self, item: Any, source: ImportSource) -> None:
        if isinstance(item, Detected):
            self.outcome.formats.append(item.format)
        elif isinstance(item, SetOptions):
            self.target(item, source.name)
        elif isinstance(item, Skipped):
            self.outcome.skipped += 1
            self.warn(source.name, item.line, f"skipped: {item.reason}")
        elif isinstance(item, Invalid):
            self.fail(source.name, item.line, item.message)
        elif isinstance(item, RecordingData):
            self.seen += 1
            self._add(item, source)

    def _add(self, data: RecordingData, source: ImportSource) -> None:
        if len(data.deployment_name) > MAX_DEPLOYMENT_NAME:
            self.fail(source.name, data.line, f"the deployment name is longer than {MAX_DEPLOYMENT_NAME} characters")
            return
        recording_set = self.target(None, source.name)
        if recording_set is None:
            self.fail(source.name, data.line, NO_TARGET_SET)
            return
        if self.failing:
            return
        normalized = normalize_body(data.request_body)
        self.batch.append(Recording(
            recording_set=recording_set,
            deployment_name=data.deployment_name,
            operation=data.operation,
            match_key=match_key(data.method, data.operation, normalized, recording_set.ignore_fields or []),
            request_body=normalized,
            status=data.status,
            headers=data.headers,
            body=data.body,
            is_stream=data.is_stream,
            stream_events=data.stream_events,
            duration_ms=data.duration_ms,
            enabled=data.enabled,
            # An expression in every row keeps Django's PostgreSQL bulk insert on plain multi-row VALUES: its
            # UNNEST form sends text arrays that psycopg quotes character by character in Python, which for
            # JSON-heavy rows cost more than all the rest of an import (measured: bench/recordings_io.py).
            hit_count=Value(0),
        ))
        if len(self.batch) >= BATCH_SIZE:
            self.flush(source.name, data.line)

    def flush(self, file: str, line: int) -> None:
        if not self.batch or self.failing:
            return
        try:
            Recording.objects.bulk_create(self.batch, batch_size=BATCH_SIZE)
        except DatabaseError as error:  # e.g. a NUL character PostgreSQL cannot store in JSON
            self.fail(file, line, f"the database refused the recordings before this line: {error}".strip())
            raise ImportFailed(self.outcome) from None
        self.outcome.created += len(self.batch)
        self.batch.clear()


def _differs(recording_set: RecordingSet, options: SetOptions) -> bool:
    ignored = sorted(recording_set.ignore_fields or [])
    return (
        (options.ignore_fields is not None and sorted(options.ignore_fields) != ignored)
        or (options.timing_factor is not None and options.timing_factor != recording_set.timing_factor)
        or (options.save_errors is not None and options.save_errors != recording_set.save_errors)
    )


def import_recordings(
    sources: Iterable[ImportSource], *, set_name: str | None = None, replace: bool = False,
    progress: Progress = _no_progress,
) -> ImportOutcome:
    """Import every source into one set, all or nothing. Raises ImportFailed (nothing changed) on any error."""
    sources = list(sources)
    importer = _Importer(set_name, replace, progress, sum(source.size for source in sources))
    with transaction.atomic():
        for source in sources:
            importer.read(source)
            importer.flush(source.name, 0)
            if len(importer.outcome.errors) >= MAX_ERRORS:
                break
        outcome = importer.outcome
        if not outcome.errors and outcome.recording_set is None:
            outcome.errors.append(problem(sources[0].name if sources else "", 0, NO_TARGET_SET))
        if outcome.errors:
            raise ImportFailed(outcome)
        recordings_changed.send(sender=Recording)  # every process reloads its index once this commits
    progress(outcome.created, 100.0, outcome.created)
    return outcome


# --- export ---------------------------------------------------------------------------------------------

_EXPORTED_FIELDS = ("deployment_name", "operation", "enabled", "request_body", "status", "duration_ms", "headers",
                    "body", "is_stream", "stream_events")


def set_options(recording_set: RecordingSet) -> SetOptions:
    return SetOptions(name=recording_set.name, description=recording_set.description,
                      ignore_fields=list(recording_set.ignore_fields or []),
                      timing_factor=recording_set.timing_factor, save_errors=recording_set.save_errors)


def _rows(recording_set: RecordingSet, recording_ids: list[int] | None) -> Iterator[dict[str, Any]]:
    query = Recording.objects.filter(recording_set=recording_set)
    if recording_ids is not None:
        query = query.filter(pk__in=recording_ids)
    # iterator(): a server-side cursor on PostgreSQL, fetchmany on SQLite; rows are never all in memory.
    return query.order_by("pk").values(*_EXPORTED_FIELDS).iterator(chunk_size=BATCH_SIZE)


def count_for_export(recording_set: RecordingSet, recording_ids: list[int] | None = None) -> int:
    query = Recording.objects.filter(recording_set=recording_set)
    if recording_ids is not None:
        query = query.filter(pk__in=recording_ids)
    return query.count()


def export_recordings(
    recording_set: RecordingSet, out: IO[str], *, recording_ids: list[int] | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Write the set (or the given recordings of it) in our format to ``out``; returns how many were written."""
    total = count_for_export(recording_set, recording_ids)
    out.write(ours.header_text(set_options(recording_set), timezone.now().isoformat(timespec="seconds")))
    written = 0
    progress(0, 0.0, total)
    for row in _rows(recording_set, recording_ids):
        out.write(ours.recording_text(**row))
        written += 1
        if written % 200 == 0:
            progress(written, min(99.0, 100.0 * written / max(total, 1)), total)
    progress(written, 100.0, written)
    return written
