"""Recording sets and recordings (record / replay modes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

DEFAULT_IGNORED_FIELDS = ["stream", "user", "seed", "metadata", "stream_options"]


def default_ignored_fields() -> list[str]:
    return list(DEFAULT_IGNORED_FIELDS)


class RecordingSet(models.Model):
    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    ignore_fields = models.JSONField(default=default_ignored_fields, blank=True,
                                     help_text="Body fields left out of matching.")
    timing_factor = models.FloatField(default=1.0, help_text="Replay timing multiplier; 0 = as fast as possible.")
    save_errors = models.BooleanField(default=False, help_text="Also record upstream error answers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Recording(models.Model):
    recording_set = models.ForeignKey(RecordingSet, on_delete=models.CASCADE, related_name="recordings")
    deployment_name = models.CharField(max_length=64, db_index=True)
    operation = models.CharField(max_length=32)
    match_key = models.CharField(max_length=64, help_text="Hash of the method, operation and normalized body.")
    request_body = models.JSONField(help_text="The normalized request body that the key hashes.")
    status = models.PositiveSmallIntegerField(default=200)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True, help_text="The JSON answer (empty for a stream).")
    is_stream = models.BooleanField(default=False)
    stream_events = models.JSONField(
        default=list, blank=True, help_text='[{"offset_ms": 12.5, "data": "..."}] in order.'
    )
    duration_ms = models.FloatField(default=0)
    enabled = models.BooleanField(default=True)
    hit_count = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["recording_set", "created_at"]
        indexes = [models.Index(fields=["recording_set", "operation", "match_key"], name="recording_lookup")]

    def __str__(self) -> str:
        return f"{self.operation} {self.deployment_name} #{self.pk}"


# --- import / export jobs (recordings_app.jobs) ---------------------------------------------------------


class JobKind(models.TextChoices):
    IMPORT = "import", "import"
    EXPORT = "export", "export"


class JobStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


def job_file_path(job: Job, filename: str) -> str:
    return f"recording-jobs/{job.kind}/{filename}"


class Job(models.Model):
    """One import or export of recordings, run by a Celery task; what admin and the API show while it runs."""

    kind = models.CharField(max_length=16, choices=JobKind.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    recording_set = models.ForeignKey(RecordingSet, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="jobs")
    set_name = models.CharField(max_length=64, blank=True, help_text="The set's name, kept if it is deleted later.")
    file = models.FileField(upload_to=job_file_path, max_length=255, blank=True,
                            help_text="Import: the uploaded file. Export: the file produced.")
    file_name = models.CharField(max_length=255, blank=True, help_text="The file's original name(s).")
    format = models.CharField(max_length=32, blank=True, help_text="The detected (import) or written format.")
    options = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Recordings to process, when known.")
    processed = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0, help_text="Percent done.")
    created_count = models.PositiveIntegerField(default=0, help_text="Recordings imported or exported.")
    skipped_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"file": ..., "line": ..., "message": ...}]')
    warnings = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.set_name} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
