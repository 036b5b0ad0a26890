"""Keep recordings consistent with their set: changing a set's ignored fields re-keys its recordings."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from recordings_app.models import Job, RecordingSet
from recordings_app.services import rekey_set


@receiver(pre_save, sender=RecordingSet)
def remember_ignored_fields(sender: type[RecordingSet], instance: RecordingSet, **kwargs: Any) -> None:
    previous = None
    if instance.pk is not None:
        previous = RecordingSet.objects.filter(pk=instance.pk).values_list("ignore_fields", flat=True).first()
    instance._previous_ignore_fields = previous


@receiver(post_save, sender=RecordingSet)
def rekey_when_ignored_fields_change(
    sender: type[RecordingSet], instance: RecordingSet, created: bool, **kwargs: Any
) -> None:
    previous = getattr(instance, "_previous_ignore_fields", None)
    if not created and previous is not None and sorted(previous) != sorted(instance.ignore_fields or []):
        rekey_set(instance)


@receiver(post_delete, sender=Job)
def delete_job_file(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    """A deleted import/export job takes its file under MEDIA_ROOT (the upload or the export) with it."""
    if instance.file:
        instance.file.delete(save=False)
