"""Preset latency profiles, the default deployments' latency at first start, resetting "fail the first N",
and the admin pages for latency and fault profiles."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from generators_app.catalogue import MODELS, get_model
from generators_app.latency_defaults import do_apply_default_latency, realistic_profile_name
from generators_app.models import Deployment
from generators_app.services import do_seed_default_deployments
from limits_app.config import FaultProfileConfig
from limits_app.faults import FailFirstCounters, pick_fault
from limits_app.models import FaultProfile, LatencyProfile
from limits_app.profile_services import DEFAULT_LATENCY_PROFILES, do_reset_fail_first, do_seed_latency_profiles


@pytest.mark.django_db
def test_presets_are_created_once_and_never_overwritten() -> None:
    assert sorted(do_seed_latency_profiles()) == sorted(DEFAULT_LATENCY_PROFILES)
    mini = LatencyProfile.objects.get(name="realistic-gpt-4o-mini")
    assert (mini.ttft_mean_ms, mini.itl_mean_ms) == (350, 12)
    mini.ttft_mean_ms = 90
    mini.save()
    assert do_seed_latency_profiles() == []
    assert LatencyProfile.objects.get(name="realistic-gpt-4o-mini").ttft_mean_ms == 90
    zero = LatencyProfile.objects.get(name="zero")
    assert (zero.ttft_mean_ms, zero.itl_mean_ms, zero.request_mean_ms, zero.per_input_token_ms) == (0, 0, 0, 0)


def test_every_model_family_has_a_preset() -> None:
    for model in MODELS.values():
        assert realistic_profile_name(model) in DEFAULT_LATENCY_PROFILES
    families = {name: realistic_profile_name(get_model(name)) for name in
                ("gpt-4o-mini", "gpt-4.1-nano", "gpt-35-turbo", "gpt-4o", "gpt-4.1", "o3-mini", "o4-mini",
                 "text-embedding-3-large")}
    assert families == {
        "gpt-4o-mini": "realistic-gpt-4o-mini", "gpt-4.1-nano": "realistic-gpt-4o-mini",
        "gpt-35-turbo": "realistic-gpt-4o-mini", "gpt-4o": "realistic-gpt-4o", "gpt-4.1": "realistic-gpt-4o",
        "o3-mini": "realistic-o-series", "o4-mini": "realistic-o-series",
        "text-embedding-3-large": "realistic-embeddings",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "expected"), [
    ("realistic", {"gpt-4o-mini": "realistic-gpt-4o-mini", "o4-mini": "realistic-o-series",
                   "text-embedding-3-small": "realistic-embeddings"}),
    ("zero", {"gpt-4o-mini": "zero", "o4-mini": "zero", "text-embedding-3-small": "zero"}),
])
def test_default_deployments_get_the_latency_of_their_family(mode: str, expected: dict[str, str]) -> None:
    seeded = do_seed_default_deployments()
    attached = do_apply_default_latency(seeded, mode)
    assert set(attached) == set(seeded)
    for name, profile in expected.items():
        assert Deployment.objects.get(name=name).latency_profile.name == profile


@pytest.mark.django_db
def test_a_deployment_that_has_a_latency_profile_keeps_it() -> None:
    do_seed_latency_profiles()
    mine = LatencyProfile.objects.create(name="mine", ttft_mean_ms=5)
    Deployment.objects.create(name="gpt-4o", model="gpt-4o", latency_profile=mine)
    assert do_apply_default_latency(["gpt-4o"], "realistic") == {}
    assert Deployment.objects.get(name="gpt-4o").latency_profile == mine


def test_an_unknown_default_latency_mode_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="SIMULATOR_DEFAULT_LATENCY must be one of realistic, zero"):
        do_apply_default_latency([], "fast")


@pytest.mark.django_db
def test_reset_starts_fail_first_again_in_every_process() -> None:
    profile = FaultProfile.objects.create(name="twice", fail_first=2, kinds={"503": 1})
    counters = FailFirstCounters()  # a process's counts
    before = FaultProfileConfig.from_model(profile)
    assert [pick_fault(before, "d", counters=counters) is not None for _ in range(3)] == [True, True, False]

    assert do_reset_fail_first(FaultProfile.objects.filter(name="twice")) == ["twice"]
    after = FaultProfileConfig.from_model(FaultProfile.objects.get(name="twice"))  # what every snapshot reloads
    assert after.revision != before.revision
    assert [pick_fault(after, "d", counters=counters) is not None for _ in range(3)] == [True, True, False]


def _form(**values: Any) -> dict[str, Any]:
    return {key: str(value) for key, value in values.items()}


@pytest.mark.django_db
def test_admin_lists_and_validates_latency_profiles(admin_client: Client) -> None:
    do_seed_latency_profiles()
    page = admin_client.get("/admin/limits_app/latencyprofile/")
    assert page.status_code == 200
    assert b"realistic-gpt-4o-mini" in page.content and b"350 \xc2\xb1 80 ms" in page.content

    fields = dict(name="spiky", ttft_mean_ms=10, ttft_std_ms=500, itl_mean_ms=0, itl_std_ms=0, request_mean_ms=0,
                  request_std_ms=0, per_input_token_ms=0, inflight_growth=0)
    refused = admin_client.post("/admin/limits_app/latencyprofile/add/", _form(**fields))
    assert refused.status_code == 200 and b"The std dev may be at most 10 x the mean" in refused.content
    assert not LatencyProfile.objects.filter(name="spiky").exists()
    fields["ttft_std_ms"] = 5
    created = admin_client.post("/admin/limits_app/latencyprofile/add/", _form(**fields))
    assert created.status_code == 302
    assert LatencyProfile.objects.get(name="spiky").ttft_std_ms == 5


@pytest.mark.django_db
def test_admin_validates_fault_profiles_and_resets_fail_first(admin_client: Client) -> None:
    fields = dict(name="flaky", error_rate=0.1, kinds='{"500": 1, "truncate:3": 2}', timeout_ms=1000, fail_first=2,
                  content_filter_terms='["completion:"]')
    refused = admin_client.post("/admin/limits_app/faultprofile/add/", _form(**fields))
    assert refused.status_code == 200 and b"has no text to match" in refused.content
    fields["kinds"] = '{"teapot": 1}'
    fields["content_filter_terms"] = '["forbidden phrase"]'
    refused = admin_client.post("/admin/limits_app/faultprofile/add/", _form(**fields))
    assert b"unknown fault kind" in refused.content
    fields["kinds"] = '{"500": 1, "truncate:3": 2}'
    assert admin_client.post("/admin/limits_app/faultprofile/add/", _form(**fields)).status_code == 302

    profile = FaultProfile.objects.get(name="flaky")
    saved_at = profile.updated_at
    done = admin_client.post("/admin/limits_app/faultprofile/", {
        "action": "reset_fail_first", "_selected_action": [str(profile.pk)]}, follow=True)
    assert b"The fail-first count starts again for: flaky." in done.content
    assert FaultProfile.objects.get(name="flaky").updated_at > saved_at
