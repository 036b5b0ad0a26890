"""Actions on latency and fault profiles that admin, commands and the start-up preparation share."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from limits_app.models import FaultProfile, LatencyProfile

ZERO_PROFILE = "zero"

# Named presets created at first start (never overwritten afterwards: edit them in admin or the config file).
# Figures of a lightly loaded pay-as-you-go (Standard) deployment: time to first token and per-token time of
# the model family, embeddings per request plus a little per input token.
DEFAULT_LATENCY_PROFILES: dict[str, dict[str, float]] = {
    "realistic-gpt-4o-mini": {"ttft_mean_ms": 350, "ttft_std_ms": 80, "itl_mean_ms": 12, "itl_std_ms": 3,
                              "request_mean_ms": 60, "request_std_ms": 15, "per_input_token_ms": 0.005},
    "realistic-gpt-4o": {"ttft_mean_ms": 500, "ttft_std_ms": 120, "itl_mean_ms": 20, "itl_std_ms": 5,
                         "request_mean_ms": 80, "request_std_ms": 20, "per_input_token_ms": 0.005},
    # Reasoning models think before the first visible token.
    "realistic-o-series": {"ttft_mean_ms": 2500, "ttft_std_ms": 800, "itl_mean_ms": 10, "itl_std_ms": 3,
                           "request_mean_ms": 80, "request_std_ms": 20, "per_input_token_ms": 0.005},
    "realistic-embeddings": {"request_mean_ms": 60, "request_std_ms": 15, "per_input_token_ms": 0.005},
    # An image takes seconds to draw; speech to text is ~0.5 s plus ~50 ms per audio second (audio requests
    # count 10 input tokens per second, see docs/images-audio.md).
    "realistic-images": {"request_mean_ms": 9000, "request_std_ms": 2500},
    "realistic-audio": {"request_mean_ms": 500, "request_std_ms": 150, "per_input_token_ms": 5},
    ZERO_PROFILE: {},
}


def do_seed_latency_profiles() -> list[str]:
    """Create the preset latency profiles that do not exist yet; returns the names created."""
    created = []
    for name, values in DEFAULT_LATENCY_PROFILES.items():
        _, was_created = LatencyProfile.objects.get_or_create(name=name, defaults=values)
        if was_created:
            created.append(name)
    return created


def do_reset_fail_first(profiles: Iterable[FaultProfile]) -> list[str]:
    """Start the "fail the first N requests" scenario again for every deployment using these profiles, in
    every process: the save gives each profile a new revision and bumps the configuration version that every
    process polls, and a count belongs to a revision. Returns the names reset."""
    names = []
    with transaction.atomic():
        for profile in profiles:
            profile.updated_at = timezone.now()
            profile.save(update_fields=["updated_at"])
            names.append(profile.name)
    return names
