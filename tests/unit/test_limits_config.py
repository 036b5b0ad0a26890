"""The config file's limit_profiles section and the deployments' limit_profile field (SPEC §10)."""

from __future__ import annotations

import textwrap

import pytest

from generators_app.config_file import ConfigError, apply_config_text, plan_config_text
from generators_app.models import Deployment
from limits_app.config import LimitProfileConfig
from limits_app.models import LimitProfile

SPEC_EXAMPLE = """\
limit_profiles:
  - name: standard-100k
    tokens_per_minute: 100000
    requests_per_minute: 600          # default: 6 per 1000 TPM
    request_window_s: 10              # 10 or 1
    default_max_tokens: 16            # the estimate used when a request has no max_tokens
    on_limit: reject                  # or queue
    queue_max_wait_ms: 0
  - name: small-queued
    tokens_per_minute: 2000
    request_window_s: 1
    on_limit: queue
    queue_max_wait_ms: 1500
deployments:
  - name: limited
    model: gpt-4o-mini
    limit_profile: standard-100k
"""


@pytest.mark.django_db
def test_the_spec_example_creates_profiles_and_links_the_deployment() -> None:
    report = apply_config_text(SPEC_EXAMPLE)

    assert report.names("limit_profiles", "created") == ["standard-100k", "small-queued"]
    standard = LimitProfile.objects.get(name="standard-100k")
    assert (standard.tokens_per_minute, standard.requests_per_minute, standard.request_window_s) == (100000, 600, 10)
    assert (standard.default_max_tokens, standard.on_limit, standard.queue_max_wait_ms) == (16, "reject", 0)
    small = LimitProfile.objects.get(name="small-queued")
    assert small.requests_per_minute is None and small.effective_requests_per_minute == 12  # 6 per 1000 TPM
    assert LimitProfileConfig.from_model(small).requests_per_minute == 12
    assert (small.request_window_s, small.on_limit, small.queue_max_wait_ms) == (1, "queue", 1500)
    assert Deployment.objects.get(name="limited").limit_profile == standard


@pytest.mark.django_db
def test_applying_again_changes_nothing_and_an_update_keeps_what_it_does_not_name() -> None:
    apply_config_text(SPEC_EXAMPLE)
    again = apply_config_text(SPEC_EXAMPLE)
    assert not again.changed

    update = apply_config_text("limit_profiles:\n  - name: standard-100k\n    tokens_per_minute: 50000\n")
    assert update.names("limit_profiles", "updated") == ["standard-100k"]
    standard = LimitProfile.objects.get(name="standard-100k")
    assert (standard.tokens_per_minute, standard.requests_per_minute) == (50000, 600)


@pytest.mark.django_db
def test_a_deployment_may_name_a_profile_already_in_the_database() -> None:
    LimitProfile.objects.create(name="existing", tokens_per_minute=1000)
    apply_config_text("deployments:\n  - name: d\n    model: gpt-4o\n    limit_profile: existing\n")
    assert Deployment.objects.get(name="d").limit_profile.name == "existing"


ERRORS = [
    ("window", "    request_window_s: 5\n", 4, "request_window_s must be 10 or 1"),
    ("on_limit", "    on_limit: wait\n", 4, "unknown on_limit 'wait'"),
    ("negative tpm", "    tokens_per_minute: -1\n", 3, "at least 1"),
    ("unknown key", "    tokens_per_second: 5\n", 4, "unknown key 'tokens_per_second'"),
    ("text rpm", "    requests_per_minute: lots\n", 4, "requests_per_minute must be a whole number"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("extra", "line", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_profiles_name_the_line_and_write_nothing(extra: str, line: int, fragment: str) -> None:
    tpm = "-1" if "tokens_per_minute: -1" in extra else "1000"
    text = f"limit_profiles:\n  - name: p\n    tokens_per_minute: {tpm}\n"
    if "tokens_per_minute" not in extra:
        text += extra
    with pytest.raises(ConfigError) as caught:
        apply_config_text(text)
    assert caught.value.line == line and fragment in str(caught.value)
    assert not LimitProfile.objects.exists()


@pytest.mark.django_db
def test_a_missing_tpm_and_an_unknown_profile_are_refused() -> None:
    with pytest.raises(ConfigError, match="missing the required key 'tokens_per_minute'"):
        plan_config_text("limit_profiles:\n  - name: p\n")
    text = textwrap.dedent("""\
        deployments:
          - name: d
            model: gpt-4o
            limit_profile: nowhere
        """)
    with pytest.raises(ConfigError) as caught:
        apply_config_text(text)
    assert caught.value.line == 4 and "neither in this file's 'limit_profiles' nor in the database" in str(caught.value)
    assert not Deployment.objects.filter(name="d").exists()
