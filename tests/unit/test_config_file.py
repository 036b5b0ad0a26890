"""The config file (SPEC §10): keys and deployments, validation with line numbers, all-or-nothing apply."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generators_app import config_file
from generators_app.config_file import (
    DEPLOYMENTS,
    SECTIONS,
    ConfigError,
    Field,
    SectionHandler,
    apply_config_file,
    apply_config_from_settings,
    apply_config_text,
    choice_field,
    plan_config_text,
    reference_field,
    register_deployment_field,
    register_section,
    upsert_by_name,
)
from generators_app.models import ApiKey, Deployment
from generators_app.services import hash_api_key

REPO = Path(__file__).resolve().parents[2]

CI_SECRET = "sim-ci-key-0123"
ENV_SECRET = "sim-env-secret-456"

FULL = """\
# a team's simulator
keys:
  - name: ci
    key: sim-ci-key-0123
  - name: from-env
    key_env: SIM_TEST_KEY
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    mode: generate
    output_tokens: {mean: 40, std: 7}
  - name: embed
    model: text-embedding-3-small
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def snapshot() -> tuple[list, list]:
    return (
        list(Deployment.objects.order_by("name").values()),
        list(ApiKey.objects.order_by("name").values()),
    )


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("SIM_TEST_KEY", ENV_SECRET)
    monkeypatch.delenv("SIM_TEST_UNSET", raising=False)
    monkeypatch.setenv("SIM_TEST_EMPTY", "")


@pytest.fixture
def existing(db):
    """Rows the file does not name, which applying must leave alone."""
    Deployment.objects.create(name="keep-me", model="gpt-4.1", output_tokens_mean=11, output_tokens_std=2)
    ApiKey.objects.create(name="old", key_hash=hash_api_key("sim-old-secret"), key_prefix="sim-old-")
    return snapshot()


@pytest.fixture
def restore_registry():
    """Tests of the extension points add sections/fields; put the module's tables back afterwards."""
    sections, fields = dict(SECTIONS), dict(DEPLOYMENTS.fields)
    yield
    SECTIONS.clear()
    SECTIONS.update(sections)
    DEPLOYMENTS.fields.clear()
    DEPLOYMENTS.fields.update(fields)


# --- a valid file -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_full_file_creates_keys_and_deployments(existing):
    report = apply_config_text(FULL, "team.yaml")

    assert report.created == {"keys": ["ci", "from-env"], "deployments": ["gpt-4o-mini", "embed"]}
    assert report.updated == {} and report.unchanged == {}
    ci = ApiKey.objects.get(name="ci")
    assert ci.key_hash == hash_api_key(CI_SECRET) and ci.key_prefix == CI_SECRET[:8] and ci.enabled
    assert ApiKey.objects.get(name="from-env").key_hash == hash_api_key(ENV_SECRET)
    mini = Deployment.objects.get(name="gpt-4o-mini")
    assert (mini.model, mini.mode, mini.output_tokens_mean, mini.output_tokens_std) == (
        "gpt-4o-mini",
        "generate",
        40,
        7,
    )
    embed = Deployment.objects.get(name="embed")
    default_mean = Deployment._meta.get_field("output_tokens_mean").default
    assert (embed.model, embed.mode, embed.output_tokens_mean) == (
        "text-embedding-3-small",
        "generate",
        default_mean,
    )
    # what the file does not name is left alone
    deployments, keys = snapshot()
    assert [d for d in deployments if d["name"] == "keep-me"] == [d for d in existing[0]]
    assert [k for k in keys if k["name"] == "old"] == existing[1]


@pytest.mark.django_db
def test_reapplying_is_idempotent():
    apply_config_text(FULL, "team.yaml")
    before = snapshot()

    report = apply_config_text(FULL, "team.yaml")

    assert not report.changed
    assert report.unchanged == {"keys": ["ci", "from-env"], "deployments": ["gpt-4o-mini", "embed"]}
    assert snapshot() == before  # not even updated_at moved
    assert "2 unchanged" in report.summary()


@pytest.mark.django_db
def test_reapplying_updates_changed_values_only(monkeypatch):
    apply_config_text(FULL, "team.yaml")
    embed_before = Deployment.objects.filter(name="embed").values().get()
    monkeypatch.setenv("SIM_TEST_KEY", "sim-rotated-secret")
    changed = (
        FULL.replace("key: sim-ci-key-0123", "key: sim-ci-key-9999")
        .replace("{mean: 40, std: 7}", "{mean: 80}")
        .replace("model: gpt-4o-mini", "model: gpt-4o")
    )

    report = apply_config_text(changed, "team.yaml")

    assert report.updated == {"keys": ["ci", "from-env"], "deployments": ["gpt-4o-mini"]}
    assert report.unchanged == {"deployments": ["embed"]}
    assert ApiKey.objects.get(name="ci").key_hash == hash_api_key("sim-ci-key-9999")
    assert ApiKey.objects.get(name="from-env").key_hash == hash_api_key("sim-rotated-secret")
    mini = Deployment.objects.get(name="gpt-4o-mini")
    # std was left out this time: it keeps its value
    assert (mini.model, mini.output_tokens_mean, mini.output_tokens_std) == ("gpt-4o", 80, 7)
    assert Deployment.objects.filter(name="embed").values().get() == embed_before


@pytest.mark.django_db
def test_omitted_optional_fields_keep_their_values_on_update():
    Deployment.objects.create(name="d", model="gpt-4o", output_tokens_mean=123, output_tokens_std=45)

    report = apply_config_text("deployments:\n  - name: d\n    model: gpt-4o\n")

    assert report.unchanged == {"deployments": ["d"]}
    d = Deployment.objects.get(name="d")
    assert (d.output_tokens_mean, d.output_tokens_std) == (123, 45)


@pytest.mark.django_db
def test_a_disabled_key_named_by_the_file_is_enabled_again():
    apply_config_text(FULL)
    ApiKey.objects.filter(name="ci").update(enabled=False)

    report = apply_config_text(FULL)

    assert report.updated == {"keys": ["ci"]}
    assert ApiKey.objects.get(name="ci").enabled


@pytest.mark.django_db
def test_empty_sections_and_empty_mapping_apply_nothing(existing):
    assert apply_config_text("keys:\ndeployments: []\n").actions == []
    assert apply_config_text("{}\n").summary() == "Applied <config>: nothing to do"
    assert snapshot() == existing


@pytest.mark.django_db
def test_a_key_may_take_over_a_secret_its_file_moves_away():
    """Secrets are unique; a file may point 'new' at the secret it takes away from 'old' (old comes first)."""
    apply_config_text("keys:\n  - name: a-old\n    key: sim-shared-1\n")

    apply_config_text(
        "keys:\n  - name: a-old\n    key: sim-other-2\n  - name: b-new\n    key: sim-shared-1\n"
    )

    assert ApiKey.objects.get(name="b-new").key_hash == hash_api_key("sim-shared-1")


# --- errors: each names the line, and the database is unchanged ---------------------------------------------

ERRORS = [
    # (id, text, line, column or None, a fragment of the message)
    ("empty file", "", 1, 1, "empty"),
    ("only comments", "# nothing here\n\n", 1, 1, "empty"),
    ("top level is a list", "- keys\n- deployments\n", 1, 1, "top level must be a mapping"),
    ("top level is a scalar", "\n\nhello\n", 3, 1, "top level must be a mapping"),
    (
        "unknown top-level key",
        "keys: []\nnonsense_profiles:\n  - name: x\n",
        2,
        1,
        "unknown key 'nonsense_profiles'",
    ),
    ("an unknown section lists the known ones", "widgets: []\n", 1, 1, "allowed: keys, "),
    ("yaml syntax", "keys:\n  - name: a\n    key: [oops\n", 4, None, "invalid YAML"),
    ("yaml bad indentation", "deployments:\n  - name: a\n   model: gpt-4o\n", 3, None, "invalid YAML"),
    ("yaml tab", "keys:\n\t- name: a\n", 2, 1, "invalid YAML"),
    ("two documents", "keys: []\n---\nkeys: []\n", 2, 1, "single document"),
    ("string where a list is expected", "\ndeployments: gpt-4o\n", 2, 14, "'deployments' must be a list"),
    ("mapping where a list is expected", "keys:\n  name: a\n", 2, 3, "'keys' must be a list"),
    (
        "entry not a mapping",
        "deployments:\n  - name: a\n    model: gpt-4o\n  - b\n",
        4,
        5,
        "must be a mapping",
    ),
    (
        "unknown key in an entry",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            modle: gpt-4o
        """),
        4,
        5,
        "unknown key 'modle'",
    ),
    (
        "unknown key in output_tokens",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens:
              mean: 10
              stdev: 2
        """),
        6,
        7,
        "unknown key 'stdev' in output_tokens",
    ),
    (
        "unknown key in a key entry",
        "keys:\n  - name: a\n    key: sim-a\n    secret: x\n",
        4,
        5,
        "unknown key",
    ),
    ("missing name", "deployments:\n  - model: gpt-4o\n", 2, 5, "required key 'name'"),
    ("missing model", "deployments:\n  - name: a\n    mode: generate\n", 2, 5, "required key 'model'"),
    (
        "negative number",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: {mean: 10, std: -3}
        """),
        4,
        36,
        "at least 0",
    ),
    (
        "zero mean",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: {mean: 0}
        """),
        4,
        27,
        "at least 1",
    ),
    (
        "decimal where a whole number is expected",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: {mean: 1.5}
        """),
        4,
        27,
        "whole number",
    ),
    (
        "boolean where a number is expected",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: {mean: true}
        """),
        4,
        27,
        "whole number",
    ),
    (
        "string where a number is expected",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: {mean: "10"}
        """),
        4,
        27,
        "whole number",
    ),
    (
        "output_tokens not a mapping",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
            output_tokens: 10
        """),
        4,
        20,
        "output_tokens must be a mapping",
    ),
    ("unknown model", "deployments:\n  - name: a\n    model: gpt-5o\n", 3, 12, "unknown model 'gpt-5o'"),
    (
        "unknown mode",
        "deployments:\n  - name: a\n    model: gpt-4o\n    mode: teleport\n",
        4,
        11,
        "unknown mode",
    ),
    (
        "invalid deployment name",
        "deployments:\n  - name: 'has space'\n    model: gpt-4o\n",
        2,
        11,
        "name is not valid",
    ),
    ("name too long", f"keys:\n  - name: {'k' * 65}\n    key: sim-x\n", 2, 11, "name is not valid"),
    ("name is a number", "deployments:\n  - name: 42\n    model: gpt-4o\n", 2, 11, "name must be a string"),
    ("empty name", "deployments:\n  - name: ''\n    model: gpt-4o\n", 2, 11, "must not be empty"),
    (
        "duplicate deployment name",
        dedent("""
        deployments:
          - name: a
            model: gpt-4o
          - name: b
            model: gpt-4o
          - name: a
            model: gpt-4.1
        """),
        6,
        11,
        "duplicate deployment name 'a'",
    ),
    (
        "duplicate key name",
        "keys:\n  - name: ci\n    key: sim-1\n  - name: ci\n    key: sim-2\n",
        4,
        11,
        "duplicate key name 'ci'",
    ),
    (
        "repeated mapping key",
        "deployments:\n  - name: a\n    model: gpt-4o\n    model: gpt-4.1\n",
        4,
        5,
        "duplicate key 'model'",
    ),
    ("repeated section", "keys: []\nkeys: []\n", 2, 1, "duplicate key 'keys'"),
    (
        "key and key_env",
        "keys:\n  - name: a\n    key: sim-a\n    key_env: SIM_TEST_KEY\n",
        4,
        5,
        "only one of",
    ),
    ("neither key nor key_env", "keys:\n  - name: a\n", 2, 5, "give one of 'key' or 'key_env'"),
    ("key_env not set", "keys:\n  - name: a\n    key_env: SIM_TEST_UNSET\n", 3, 14, "SIM_TEST_UNSET"),
    ("key_env empty", "keys:\n  - name: a\n    key_env: SIM_TEST_EMPTY\n", 3, 14, "not set or is empty"),
    ("key is a number", "keys:\n  - name: a\n    key: 12345\n", 3, 10, "must be a string"),
    ("key is empty", "keys:\n  - name: a\n    key: ''\n", 3, 10, "must not be empty"),
    (
        "same secret twice",
        "keys:\n  - name: a\n    key: sim-same\n  - name: b\n    key: sim-same\n",
        4,
        5,
        "same secret as key 'a'",
    ),
    (
        "secret of an existing key",
        "keys:\n  - name: a\n    key: sim-old-secret\n",
        2,
        5,
        "same secret as the existing key 'old'",
    ),
    ("unknown tag", "deployments:\n  - name: !custom a\n    model: gpt-4o\n", 2, 11, "constructor"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_name_the_line_and_change_nothing(existing, text, line, column, fragment):
    with pytest.raises(ConfigError) as caught:
        apply_config_text(text, "team.yaml")

    error = caught.value
    assert fragment in str(error)
    assert (error.source, error.line) == ("team.yaml", line), str(error)
    if column is not None:
        assert error.column == column, str(error)
    assert str(error).startswith(f"team.yaml, line {line}")
    assert snapshot() == existing


@pytest.mark.django_db
def test_an_error_late_in_the_file_writes_nothing_from_earlier_sections(existing):
    text = FULL + "  - name: broken\n    model: no-such-model\n"

    with pytest.raises(ConfigError) as caught:
        apply_config_text(text, "team.yaml")

    assert caught.value.line == text.count("\n")  # the last line
    assert snapshot() == existing


@pytest.mark.django_db
def test_a_failure_while_applying_rolls_everything_back(existing, monkeypatch):
    real_apply = DEPLOYMENTS.apply

    def fail_on_embed(item):
        if item.name == "embed":
            raise ValueError("disk on fire")
        return real_apply(item)

    monkeypatch.setattr(DEPLOYMENTS, "apply", fail_on_embed)

    with pytest.raises(ConfigError) as caught:
        apply_config_text(FULL, "team.yaml")

    assert "could not apply deployment 'embed': disk on fire" in str(caught.value)
    assert caught.value.line == 12  # the 'embed' entry
    assert snapshot() == existing  # the keys and gpt-4o-mini written before it are gone


@pytest.mark.django_db
def test_secrets_never_appear_in_messages_or_reports(capsys):
    secret = "sim-very-secret-value"
    broken = [
        f"keys:\n  - name: a\n    key: {secret}\n  - name: a\n    key: {secret}x\n",  # duplicate name
        f'keys:\n  - name: a\n    key: "{secret}\n',  # unterminated quote on the secret's own line
        f"keys:\n  - name: a\n    key: {secret}\n  - name: b\n    key: {secret}\n",  # same secret
        f"keys:\n  - name: a\n    key: {secret}\n    key: {secret}\n",  # repeated key
        f"keys:\n  - name: a\n    key: [{secret}]\n",  # wrong type
    ]
    for text in broken:
        with pytest.raises(ConfigError) as caught:
            apply_config_text(text)
        assert secret not in str(caught.value), str(caught.value)

    report = apply_config_text(f"keys:\n  - name: a\n    key: {secret}\n")
    assert secret not in report.summary() and secret not in repr(report)
    assert secret not in repr(config_file.plan_config_text(f"keys:\n  - name: b\n    key: {secret}2\n").items)
    assert secret not in capsys.readouterr().out


# --- files, settings ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_apply_config_file_names_the_file(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(FULL)
    report = apply_config_file(path)
    assert report.created["deployments"] == ["gpt-4o-mini", "embed"]
    assert report.summary().startswith(f"Applied {path}:")

    bad = tmp_path / "bad.yaml"
    bad.write_text("deployments:\n  - name: a\n    model: nope\n")
    expected = re.escape(f"{bad}, line 3, column 12: deployment 'a': unknown model 'nope'")
    with pytest.raises(ConfigError, match=f"^{expected}"):
        apply_config_file(str(bad))

    with pytest.raises(ConfigError, match="no such file"):
        apply_config_file(tmp_path / "missing.yaml")

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"keys: []\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="line 2: the file is not UTF-8"):
        apply_config_file(binary)


@pytest.mark.django_db
def test_apply_config_from_settings(settings, tmp_path):
    settings.SIMULATOR_CONFIG = ""
    assert apply_config_from_settings() is None

    path = tmp_path / "team.yaml"
    path.write_text(FULL)
    settings.SIMULATOR_CONFIG = str(path)
    report = apply_config_from_settings()
    assert report is not None and report.created["keys"] == ["ci", "from-env"]
    assert Deployment.objects.filter(name="embed").exists()


# --- the command --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_applies_and_prints_a_summary(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(FULL)
    out = io.StringIO()

    call_command("apply_config", str(path), stdout=out)

    text = out.getvalue()
    assert f"Applied {path}:" in text
    assert "keys: 2 created (ci, from-env)" in text
    assert "deployments: 2 created (gpt-4o-mini, embed)" in text
    assert CI_SECRET not in text and ENV_SECRET not in text

    out = io.StringIO()
    call_command("apply_config", str(path), stdout=out)
    assert "keys: 2 unchanged" in out.getvalue()


@pytest.mark.django_db
def test_command_check_validates_without_writing(tmp_path, existing):
    path = tmp_path / "team.yaml"
    path.write_text(FULL)
    out = io.StringIO()

    call_command("apply_config", str(path), "--check", stdout=out)

    assert "is valid: 2 keys, 2 deployments" in out.getvalue()
    assert snapshot() == existing


@pytest.mark.django_db
def test_command_error_is_a_command_error_with_the_line(tmp_path, existing):
    path = tmp_path / "team.yaml"
    path.write_text("keys:\n  - name: ci\n    key: sim-x\ndeployments:\n  - name: a\n    model: gpt-9\n")

    with pytest.raises(
        CommandError, match=rf"{re.escape(str(path))}, line 6, column 12: .*unknown model 'gpt-9'"
    ):
        call_command("apply_config", str(path))
    assert snapshot() == existing


def test_command_exits_non_zero_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("keys:\n  - name: ci\n    key: [sim-x\n")
    env = {**os.environ, "SIMULATOR_DATA_DIR": str(tmp_path / "data")}

    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "apply_config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )

    assert result.returncode != 0
    assert f"{path}, line 4" in result.stderr and "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- the extension points -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_section_and_a_reference_field_plug_in(restore_registry):
    """What later work does for limit_profiles etc.: a section before 'deployments', a field naming it."""
    spare = register_section(
        SectionHandler(
            key="spare_deployments",
            item_label="spare deployment",
            model=Deployment,
            fields={"model": DEPLOYMENTS.fields["model"], "mode": choice_field("mode", lambda: ["generate"])},
            apply=upsert_by_name(Deployment),
        ),
        before="deployments",
    )
    # Sections other work registered (limit_profiles, ...) sit between; the new one goes just before.
    order = list(SECTIONS)
    assert order[:1] == ["keys"] and order[-2:] == ["spare_deployments", "deployments"]
    seen = {}

    def read_twin(ctx, node, what):
        ref = ctx.reference(node, what, "spare_deployments", Deployment)
        seen["ref"] = ref
        return {}

    register_deployment_field(Field("twin", read_twin))
    assert "twin" in DEPLOYMENTS.fields
    assert reference_field("twin", "spare_deployments", Deployment).key == "twin"

    text = dedent("""
        deployments:
          - name: main
            model: gpt-4o
            twin: spare
        spare_deployments:
          - name: spare
            model: gpt-4.1
        """)
    report = apply_config_text(text)

    assert [a[:2] for a in report.actions] == [("spare_deployments", "spare"), ("deployments", "main")]
    assert seen["ref"].resolve() == Deployment.objects.get(name="spare")
    again = config_file.PlanItem("spare_deployments", "spare", None, {"model": "gpt-4.1"})
    assert spare.apply(again) == "unchanged"

    with pytest.raises(ConfigError) as caught:
        plan_config_text("deployments:\n  - name: x\n    model: gpt-4o\n    twin: nowhere\n")
    assert caught.value.line == 4 and "neither in this file's 'spare_deployments' nor in the database" in str(
        caught.value
    )
