"""The config file's recording sets and the deployments' record/replay fields (SPEC §10)."""

from __future__ import annotations

import textwrap

import pytest

from generators_app.config_file import ConfigError, apply_config_text, plan_config_text
from generators_app.models import Deployment
from recordings_app.models import RecordingSet

UPSTREAM_SECRET = "upstream-secret-do-not-print-9f2c"


def config(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


FILE = config("""
    recording_sets:
      - name: golden
        description: answers from the real service
        ignore_fields: [stream, user]
        timing_factor: 0.5
        save_errors: true
    deployments:
      - name: recorder
        model: gpt-4o-mini
        mode: replay_or_record
        recording_set: golden
        upstream_endpoint: https://example.openai.azure.com/
        upstream_key_env: SIM_TEST_UPSTREAM
      - name: strict
        model: gpt-4o-mini
        mode: replay
        recording_set: golden
""")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_TEST_UPSTREAM", UPSTREAM_SECRET)
    monkeypatch.delenv("SIM_TEST_UNSET_UPSTREAM", raising=False)


@pytest.mark.django_db
def test_sets_and_deployment_fields_are_applied() -> None:
    report = apply_config_text(FILE, "team.yaml")
    assert report.created == {"recording_sets": ["golden"], "deployments": ["recorder", "strict"]}
    golden = RecordingSet.objects.get(name="golden")
    assert (golden.description, golden.ignore_fields, golden.timing_factor, golden.save_errors) == (
        "answers from the real service", ["stream", "user"], 0.5, True)
    recorder = Deployment.objects.get(name="recorder")
    assert (recorder.mode, recorder.recording_set, recorder.upstream_endpoint, recorder.upstream_key_env) == (
        "replay_or_record", golden, "https://example.openai.azure.com", "SIM_TEST_UPSTREAM")
    assert recorder.upstream_key == ""  # the key stays in the environment
    assert apply_config_text(FILE, "team.yaml").changed is False


@pytest.mark.django_db
def test_a_written_upstream_key_is_stored_but_never_reported(capsys: pytest.CaptureFixture[str]) -> None:
    text = FILE.replace("upstream_key_env: SIM_TEST_UPSTREAM", f"upstream_key: {UPSTREAM_SECRET}")
    report = apply_config_text(text, "team.yaml")
    assert Deployment.objects.get(name="recorder").upstream_key == UPSTREAM_SECRET
    assert UPSTREAM_SECRET not in report.summary() + repr(plan_config_text(text).items)
    # Naming a variable later clears the stored key, so the variable is what the server uses.
    apply_config_text(FILE, "team.yaml")
    assert Deployment.objects.get(name="recorder").upstream_key == ""
    too_long = FILE.replace("upstream_key_env: SIM_TEST_UPSTREAM", f"upstream_key: {UPSTREAM_SECRET * 40}")
    with pytest.raises(ConfigError) as caught:
        apply_config_text(too_long, "team.yaml")
    assert UPSTREAM_SECRET not in str(caught.value)
    assert UPSTREAM_SECRET not in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "message", "line"), [
    (("    recording_set: golden\n    upstream_endpoint", "    upstream_endpoint"),
     "mode 'replay_or_record' needs a recording_set", 10),
    (("    upstream_endpoint: https://example.openai.azure.com/\n", ""),
     "mode 'replay_or_record' needs an upstream_endpoint", 10),
    (("SIM_TEST_UPSTREAM", "SIM_TEST_UNSET_UPSTREAM"),
     "the environment variable 'SIM_TEST_UNSET_UPSTREAM' is not set", 13),
    (("upstream_key_env: SIM_TEST_UPSTREAM", "upstream_key_env: SIM_TEST_UPSTREAM\n    upstream_key: x"),
     "give only one of 'upstream_key' or 'upstream_key_env'", 13),
    (("https://example.openai.azure.com/", "https://user:pw@example.openai.azure.com"),
     "must not carry credentials", 12),
    (("https://example.openai.azure.com/", "not a url"), "upstream_endpoint is not valid", 12),
    (("timing_factor: 0.5", "timing_factor: -1"), "timing_factor must be at least 0", 5),
    (("mode: replay\n", "mode: replay_or_guess\n"), "unknown mode 'replay_or_guess'", 16),
])
def test_mistakes_are_reported_with_their_line(change: tuple[str, str], message: str, line: int) -> None:
    broken = FILE.replace(*change)
    assert broken != FILE
    with pytest.raises(ConfigError) as caught:
        plan_config_text(broken, "team.yaml")
    assert message in str(caught.value)
    assert caught.value.line == line, str(caught.value)
    assert not RecordingSet.objects.exists()


@pytest.mark.django_db
def test_a_mode_change_alone_uses_what_the_database_has() -> None:
    apply_config_text(FILE, "team.yaml")
    report = apply_config_text(config("""
        deployments:
          - name: recorder
            model: gpt-4o-mini
            mode: record
    """), "switch.yaml")
    assert report.updated == {"deployments": ["recorder"]}
    assert Deployment.objects.get(name="recorder").mode == "record"
