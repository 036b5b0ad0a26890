"""Any change to what the data plane caches bumps the version stamp that every process polls."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from generators_app.models import ApiKey, Deployment
from generators_app.services import bump_config_version
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from recordings_app.models import RecordingSet

# What the data plane's snapshot holds (registry.load_snapshot); recordings themselves are indexed by
# recordings_app, which owns their cache.
CACHED_MODELS = (Deployment, ApiKey, LimitProfile, LatencyProfile, FaultProfile, RecordingSet)


@receiver(post_save)
@receiver(post_delete)
def invalidate_on_change(sender, **kwargs) -> None:
    if sender in CACHED_MODELS:
        bump_config_version()
