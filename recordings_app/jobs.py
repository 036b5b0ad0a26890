"""Recording jobs: create, queue and run imports and exports, tracking progress and errors in a Job row.

The one place that admin actions, the management API, the management commands and the Celery tasks call:

- ``create_import_job`` / ``create_export_job`` make the row (and keep the uploaded file under MEDIA_ROOT);
- ``enqueue`` sends it to a worker once the row is committed (eagerly, in this process, without a broker);
- ``run_job`` (what the task runs) does the work with transfer.py and records the outcome;
- ``import_files`` / ``export_to_path`` run one at once, in this process, for scripts.

While an import runs, its transaction is open on the worker's connection, so progress is written through a
second connection that commits on its own and is visible to the admin at once (``JobProgress``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import File
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from recordings_app import transfer
from recordings_app.formats import ours
from recordings_app.models import Job, JobKind, JobStatus, RecordingSet
from recordings_app.transfer import ImportFailed, ImportSource

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
_PROGRESS_FIELDS = ("processed", "progress", "total")


class JobProgress:
    """Writes a job's progress at most every ``interval`` seconds, visible to others while the job runs."""

    def __init__(self, job_id: int, interval: float = PROGRESS_INTERVAL_S,
                 echo: Callable[[int, float, int | None], None] | None = None) -> None:
        self.job_id = job_id
        self.interval = interval
        self.echo = echo
        self._last = 0.0
        self._side = None  # a second database connection, opened when a transaction hides our own writes

    def __call__(self, done: int, percent: float, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and percent < 100.0:
            return
        self._last = now
        if self.echo is not None:
            self.echo(done, percent, total)
        values = {"processed": done, "progress": round(percent, 1)}
        if total is not None:
            values["total"] = total
        if not connection.in_atomic_block:
            Job.objects.filter(pk=self.job_id).update(**values)
            return
        if connection.vendor == "sqlite":
            return  # one writer at a time: a second connection would wait for the import's own lock
        self._write_aside(values)

    def _write_aside(self, values: dict[str, Any]) -> None:
        try:
            if self._side is None:
                self._side = connections.create_connection("default")
            quote = self._side.ops.quote_name
            assignments = ", ".join(f"{quote(name)} = %s" for name in values)
            with self._side.cursor() as cursor:  # autocommit: visible at once
                cursor.execute(f"UPDATE {quote(Job._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s",
                               [*values.values(), self.job_id])
        except Exception:  # progress is a courtesy: never fail the job for it
            logger.warning("could not record the progress of job %s", self.job_id, exc_info=True)

    def close(self) -> None:
        if self._side is not None:
            with contextlib.suppress(Exception):
                self._side.close()
            self._side = None


# --- creating and queueing ------------------------------------------------------------------------------


def _user(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def create_import_job(
    upload: File, *, set_name: str = "", replace: bool = False, user: AbstractBaseUser | None = None,
) -> Job:
    """A pending import of an uploaded file (kept under MEDIA_ROOT) into ``set_name`` (or the file's own set)."""
    name = os.path.basename(upload.name or "recordings.yaml")
    job = Job(kind=JobKind.IMPORT, set_name=set_name, file_name=name, options={"replace": replace},
              created_by=_user(user))
    job.recording_set = RecordingSet.objects.filter(name=set_name).first() if set_name else None
    job.save()
    job.file.save(f"{job.pk}-{get_valid_filename(name)}", upload, save=True)
    return job


def create_export_job(
    recording_set: RecordingSet, *, recording_ids: Sequence[int] | None = None,
    user: AbstractBaseUser | None = None,
) -> Job:
    options: dict[str, Any] = {}
    if recording_ids is not None:
        options["recording_ids"] = sorted(int(pk) for pk in recording_ids)
    return Job.objects.create(kind=JobKind.EXPORT, recording_set=recording_set, set_name=recording_set.name,
                              format=ours.FORMAT, options=options, created_by=_user(user))


def enqueue(job: Job) -> None:
    """Run the job on a worker once its row is committed (at once, in this process, when Celery is eager)."""
    from recordings_app.tasks import run_recording_job

    def send() -> None:
        result = run_recording_job.delay(job.pk)
        Job.objects.filter(pk=job.pk, task_id="").update(task_id=result.id or "")

    transaction.on_commit(send)


# --- running --------------------------------------------------------------------------------------------


def _start(job: Job) -> bool:
    """Claim a pending job (a redelivered task finds it taken and does nothing)."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(status=JobStatus.RUNNING, started_at=now)
    if claimed:
        job.status, job.started_at = JobStatus.RUNNING, now
    return bool(claimed)


def _finish(job: Job, status: str, message: str, **fields: Any) -> Job:
    job.status, job.message, job.finished_at = status, message, timezone.now()
    for name, value in fields.items():
        setattr(job, name, value)
    job.save()
    return job


def run_job(job_id: int, echo: Callable[[int, float, int | None], None] | None = None) -> Job | None:
    """Run a pending job to its end. Never raises for a bad file: the job records what went wrong."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:  # deleted before a worker got to it (or a message meant for another database)
        logger.warning("recording job %s does not exist; nothing to run", job_id)
        return None
    if not _start(job):
        logger.info("job %s is already %s; not run again", job.pk, job.status)
        return job
    progress = JobProgress(job.pk, echo=echo)
    try:
        if job.kind == JobKind.IMPORT:
            return _run_import(job, [_stored_file_source(job)], progress)
        return _run_export(job, progress)
    except Exception as error:  # a bug or a lost database: the job must still end, with the reason
        logger.exception("recording job %s failed", job.pk)
        return _finish(job, JobStatus.FAILED, f"The job failed unexpectedly: {error}",
                       errors=[transfer.problem(job.file_name, 0, f"internal error: {error}")])
    finally:
        progress.close()


def _stored_file_source(job: Job) -> ImportSource:
    def open_file() -> contextlib.AbstractContextManager[IO[bytes]]:
        return job.file.open("rb")

    return ImportSource(name=job.file_name or job.file.name, open=open_file, size=job.file.size)


def path_source(path: Path) -> ImportSource:
    return ImportSource(name=path.name, open=lambda: path.open("rb"), size=path.stat().st_size)


def _run_import(job: Job, sources: list[ImportSource], progress: JobProgress) -> Job:
    try:
        outcome = transfer.import_recordings(
            sources, set_name=job.set_name or None, replace=bool(job.options.get("replace")), progress=progress,
        )
    except ImportFailed as failure:
        outcome = failure.outcome
        first = outcome.errors[0]
        where = f"{first['file']} line {first['line']}" if first["line"] else first["file"]
        return _finish(
            job, JobStatus.FAILED,
            f"Nothing was imported: {len(outcome.errors)} problem(s). First: {where}: {first['message']}",
            errors=outcome.errors, warnings=outcome.warnings, format=", ".join(dict.fromkeys(outcome.formats)),
            created_count=0, skipped_count=outcome.skipped,
        )
    recording_set = outcome.recording_set
    return _finish(
        job, JobStatus.SUCCEEDED,
        f"Imported {outcome.created} recording(s) into '{recording_set.name}'"
        + (f"; skipped {outcome.skipped} (see warnings)." if outcome.skipped else "."),
        recording_set=recording_set, set_name=recording_set.name, created_count=outcome.created,
        skipped_count=outcome.skipped, processed=outcome.created, progress=100.0, total=outcome.created,
        warnings=outcome.warnings, format=", ".join(dict.fromkeys(outcome.formats)), errors=[],
    )


def _run_export(job: Job, progress: JobProgress) -> Job:
    recording_set = job.recording_set
    if recording_set is None:
        return _finish(job, JobStatus.FAILED, f"The recording set '{job.set_name}' no longer exists.")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    relative = f"recording-jobs/export/{job.pk}-{get_valid_filename(recording_set.name)}-{stamp}.yaml"
    target = Path(settings.MEDIA_ROOT) / relative
    written = _write_atomically(target, lambda out: transfer.export_recordings(
        recording_set, out, recording_ids=job.options.get("recording_ids"), progress=progress))
    job.file.name = relative
    return _finish(job, JobStatus.SUCCEEDED, f"Exported {written} recording(s) of '{recording_set.name}'.",
                   file_name=target.name, created_count=written, processed=written, total=written, progress=100.0)


def _write_atomically(target: Path, write: Callable[[IO[str]], int]) -> int:
    """Write to a temporary name and rename at the end: a failed export leaves no half file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            written = write(out)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return written


# --- at once, for scripts -------------------------------------------------------------------------------


def import_files(
    paths: Iterable[Path], *, set_name: str = "", replace: bool = False,
    echo: Callable[[int, float, int | None], None] | None = None,
) -> Job:
    """Import local files in this process (one transaction for all of them), recorded as a Job."""
    paths = list(paths)
    job = Job.objects.create(kind=JobKind.IMPORT, set_name=set_name, options={"replace": replace},
                             file_name=", ".join(path.name for path in paths)[:255])
    _start(job)
    progress = JobProgress(job.pk, echo=echo)
    try:
        return _run_import(job, [path_source(path) for path in paths], progress)
    finally:
        progress.close()


def export_to_path(
    recording_set: RecordingSet, path: Path, echo: Callable[[int, float, int | None], None] | None = None,
) -> Job:
    """Export a set to a local file in this process, recorded as a Job (its file stays where it was written)."""
    job = create_export_job(recording_set)
    _start(job)
    progress = JobProgress(job.pk, echo=echo)
    try:
        written = _write_atomically(path, lambda out: transfer.export_recordings(recording_set, out,
                                                                                 progress=progress))
    except Exception as error:
        _finish(job, JobStatus.FAILED, f"The export failed: {error}")
        raise
    finally:
        progress.close()
    return _finish(job, JobStatus.SUCCEEDED, f"Exported {written} recording(s) of '{recording_set.name}' to {path}.",
                   file_name=str(path)[-255:], created_count=written, processed=written, total=written,
                   progress=100.0)
