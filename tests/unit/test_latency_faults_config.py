"""The config file's latency_profiles and fault_profiles sections, the deployments' latency_profile and
fault_profile fields (SPEC §10), and what the data plane's snapshot makes of them."""

from __future__ import annotations

import textwrap

import pytest

from generators_app.config_file import ConfigError, apply_config_text, plan_config_text
from generators_app.models import Deployment
from generators_app.registry import load_snapshot
from limits_app.models import FaultProfile, LatencyProfile

SPEC_EXAMPLE = """\
latency_profiles:
  - name: realistic-4o-mini
    ttft_ms: {mean: 350, std: 80}
    itl_ms: {mean: 12, std: 3}
    request_ms: {mean: 60, std: 15}   # embeddings, images, audio
    per_input_token_ms: 0.005
fault_profiles:
  - name: flaky
    error_rate: 0.05
    kinds: {"500": 3, "503": 1, "429": 1, timeout: 1, reset: 1, "truncate:5": 1}
    timeout_ms: 30000
    fail_first: 0
    content_filter_terms: ["forbidden phrase"]
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    latency_profile: realistic-4o-mini
    fault_profile: flaky
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.mark.django_db
def test_the_spec_example_creates_both_profiles_and_links_the_deployment() -> None:
    report = apply_config_text(SPEC_EXAMPLE)
    assert report.names("latency_profiles", "created") == ["realistic-4o-mini"]
    assert report.names("fault_profiles", "created") == ["flaky"]
    latency = LatencyProfile.objects.get(name="realistic-4o-mini")
    assert (latency.ttft_mean_ms, latency.ttft_std_ms, latency.itl_mean_ms, latency.itl_std_ms) == (350, 80, 12, 3)
    assert (latency.request_mean_ms, latency.request_std_ms, latency.per_input_token_ms) == (60, 15, 0.005)
    faults = FaultProfile.objects.get(name="flaky")
    assert faults.error_rate == 0.05 and faults.timeout_ms == 30000 and faults.fail_first == 0
    assert faults.kinds == {"500": 3, "503": 1, "429": 1, "timeout": 1, "reset": 1, "truncate:5": 1}
    assert faults.content_filter_terms == ["forbidden phrase"]
    deployment = Deployment.objects.get(name="gpt-4o-mini")
    assert deployment.latency_profile == latency and deployment.fault_profile == faults

    config = load_snapshot().deployments["gpt-4o-mini"]
    assert config.latency_profile is not None and config.latency_profile.ttft_mean_ms == 350
    assert config.fault_profile is not None and dict(config.fault_profile.kinds)["truncate:5"] == 1.0
    assert config.fault_profile.revision  # the profile's last save


@pytest.mark.django_db
def test_reapplying_changes_nothing_and_updates_keep_what_they_do_not_name() -> None:
    apply_config_text(SPEC_EXAMPLE)
    revision = load_snapshot().deployments["gpt-4o-mini"].fault_profile.revision
    assert not apply_config_text(SPEC_EXAMPLE).changed
    assert load_snapshot().deployments["gpt-4o-mini"].fault_profile.revision == revision  # fail-first count kept

    apply_config_text("latency_profiles:\n  - name: realistic-4o-mini\n    ttft_ms: {mean: 500}\n"
                      "    inflight_growth: 0.25\n")
    latency = LatencyProfile.objects.get(name="realistic-4o-mini")
    assert (latency.ttft_mean_ms, latency.ttft_std_ms, latency.itl_mean_ms, latency.inflight_growth) == (500, 80, 12,
                                                                                                          0.25)


@pytest.mark.django_db
def test_unquoted_numeric_kinds_and_seeded_profile_names() -> None:
    LatencyProfile.objects.create(name="zero")  # seeded at start; a file may name it without declaring it
    apply_config_text(dedent("""
        fault_profiles:
          - name: errors
            error_rate: 1
            kinds:
              500: 2
              truncate:3: 0.5
        deployments:
          - name: quick
            model: gpt-4o-mini
            latency_profile: zero
            fault_profile: errors
        """))
    assert FaultProfile.objects.get(name="errors").kinds == {"500": 2, "truncate:3": 0.5}
    assert Deployment.objects.get(name="quick").latency_profile.name == "zero"


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "line", "message"), [
    ("latency_profiles:\n  - name: a\n    ttft_ms: {mean: -1}\n", 3, "ttft_ms.mean must be at least 0"),
    ("latency_profiles:\n  - name: a\n    ttft_ms: {mean: 10, std: 500}\n", 3, "ttft_ms: The std dev may be at most"),
    ("latency_profiles:\n  - name: a\n    itl_ms: 12\n", 3, "itl_ms must be a mapping"),
    ("latency_profiles:\n  - name: a\n    ttft: {mean: 1}\n", 3, "unknown key 'ttft'"),
    ("fault_profiles:\n  - name: f\n    error_rate: 1.5\n", 3, "error_rate must be at most 1"),
    ("fault_profiles:\n  - name: f\n    kinds: {\"404\": 1}\n", 3, "unknown fault '404'"),
    ("fault_profiles:\n  - name: f\n    kinds: {truncate: 1}\n", 3, "'truncate' needs the number of events"),
    ("fault_profiles:\n  - name: f\n    kinds: {\"500\": -1}\n", 3, "must be at least 0"),
    ("fault_profiles:\n  - name: f\n    kinds:\n      \"500\": 1\n      \"500\": 2\n", 5, "duplicate key '500'"),
    ("fault_profiles:\n  - name: f\n    content_filter_terms: [ok, \"completion:\"]\n", 3, "has no text to match"),
    ("fault_profiles:\n  - name: f\n    timeout_ms: 9999999\n", 3, "timeout_ms must be at most 600000"),
    ("deployments:\n  - name: d\n    model: gpt-4o-mini\n    latency_profile: nowhere\n", 4,
     "latency_profile 'nowhere' is neither in this file's 'latency_profiles' nor in the database"),
    ("deployments:\n  - name: d\n    model: gpt-4o-mini\n    fault_profile: nowhere\n", 4,
     "fault_profile 'nowhere' is neither"),
])
def test_mistakes_are_reported_with_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_config_text(text, "team.yaml")
    assert caught.value.line == line, str(caught.value)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"team.yaml, line {line}")


@pytest.mark.django_db
def test_a_bad_entry_changes_nothing() -> None:
    with pytest.raises(ConfigError):
        apply_config_text(SPEC_EXAMPLE + "  - name: broken\n    model: gpt-4o-mini\n    fault_profile: missing\n")
    assert not LatencyProfile.objects.exists() and not FaultProfile.objects.exists()
