"""Recording sets and recordings (record / replay modes)."""

from __future__ import annotations

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
