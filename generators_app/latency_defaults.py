"""Which preset latency profile a model family gets, and giving it to the default deployments at first start
(SIMULATOR_DEFAULT_LATENCY: "realistic", or "zero" for throughput tests)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured

from generators_app.catalogue import ModelSpec, Operation, get_model
from generators_app.models import Deployment
from limits_app.models import LatencyProfile
from limits_app.profile_services import ZERO_PROFILE, do_seed_latency_profiles

REALISTIC, ZERO = "realistic", "zero"
DEFAULT_LATENCY_MODES = (REALISTIC, ZERO)


def realistic_profile_name(model: ModelSpec) -> str:
    """The preset of limits_app.profile_services.DEFAULT_LATENCY_PROFILES for the model's family."""
    if Operation.EMBEDDINGS in model.operations:
        return "realistic-embeddings"
    if model.image is not None:
        return "realistic-images"
    if model.audio is not None:
        return "realistic-audio"
    if model.reasoning:
        return "realistic-o-series"
    if any(small in model.name for small in ("mini", "nano", "gpt-35")):
        return "realistic-gpt-4o-mini"
    return "realistic-gpt-4o"


def do_apply_default_latency(deployment_names: Iterable[str], mode: str) -> dict[str, str]:
    """Seed the preset profiles, then give each named deployment that has no latency profile the preset of
    its model family ("realistic") or the zero profile ("zero"). Returns deployment -> profile name."""
    if mode not in DEFAULT_LATENCY_MODES:
        raise ImproperlyConfigured(
            f"SIMULATOR_DEFAULT_LATENCY must be one of {', '.join(DEFAULT_LATENCY_MODES)}, got '{mode}'"
        )
    do_seed_latency_profiles()
    profiles = {profile.name: profile for profile in LatencyProfile.objects.all()}
    attached: dict[str, str] = {}
    for deployment in Deployment.objects.filter(name__in=list(deployment_names), latency_profile__isnull=True):
        model = get_model(deployment.model)
        if model is None:
            continue
        name = realistic_profile_name(model) if mode == REALISTIC else ZERO_PROFILE
        deployment.latency_profile = profiles[name]
        deployment.save(update_fields=["latency_profile", "updated_at"])
        attached[deployment.name] = name
    return attached
