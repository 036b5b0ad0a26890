"""Any change to what the data plane caches bumps the version stamp that every process polls."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from generators_app.models import ApiKey, Deployment
from generators_app.services import bump_config_version
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from recordings_app.models import Recording, RecordingSet
from recordings_app.signals import recordings_changed

# What the data plane's snapshot holds (registry.load_snapshot), and recordings, whose in-process index
# (recordings_app.index) is rebuilt per version. Hit counts are written with QuerySet.update: no signal.
CACHED_MODELS = (Deployment, ApiKey, LimitProfile, LatencyProfile, FaultProfile, RecordingSet, Recording)


@receiver(post_save)
@receiver(post_delete)
def invalidate_on_change(sender, **kwargs) -> None:
    if sender in CACHED_MODELS:
        bump_config_version()


@receiver(recordings_changed)
def invalidate_on_bulk_recording_change(sender, **kwargs) -> None:
    bump_config_version()
