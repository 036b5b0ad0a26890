"""/api/deployments/ and /api/keys/: CRUD, validation, write-only secrets, and cache invalidation."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from generators_app.models import ApiKey, Deployment
from generators_app.services import hash_api_key, read_config_version
from limits_app.models import LatencyProfile, LimitProfile
from recordings_app.models import RecordingSet
from tests.unit.api.conftest import field_errors

UPSTREAM_SECRET = "upstream-secret-value-42"


@pytest.fixture
def profiles(db) -> None:
    LimitProfile.objects.create(name="small", tokens_per_minute=1000)
    LatencyProfile.objects.create(name="snappy", ttft_mean_ms=5, itl_mean_ms=1)
    RecordingSet.objects.create(name="golden")


def test_deployment_crud(staff: APIClient, profiles: None) -> None:
    created = staff.post("/api/deployments/", {
        "name": "gpt-4.1-team", "model": "gpt-4.1", "limit_profile": "small", "latency_profile": "snappy",
    }, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["model"] == "gpt-4.1" and body["mode"] == "generate" and body["enabled"] is True
    assert body["limit_profile"] == "small" and body["fault_profile"] is None

    # Names with dots are addressable (no format-suffix route swallows ".1-team").
    detail = staff.get("/api/deployments/gpt-4.1-team/")
    assert detail.status_code == 200 and detail.json()["latency_profile"] == "snappy"
    assert [d["name"] for d in staff.get("/api/deployments/").json()] == ["gpt-4.1-team"]

    patched = staff.patch("/api/deployments/gpt-4.1-team/", {"limit_profile": None, "output_tokens_mean": 9},
                          format="json")
    assert patched.status_code == 200, patched.content
    row = Deployment.objects.get(name="gpt-4.1-team")
    assert row.limit_profile is None and row.output_tokens_mean == 9 and row.latency_profile.name == "snappy"

    replaced = staff.put("/api/deployments/gpt-4.1-team/", {"name": "renamed", "model": "gpt-4o-mini"},
                         format="json")
    assert replaced.status_code == 200, replaced.content
    assert staff.get("/api/deployments/gpt-4.1-team/").status_code == 404
    assert staff.delete("/api/deployments/renamed/").status_code == 204
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"model": "gpt-9-ultra"}, "model", "Unknown model"),
        ({"limit_profile": "nope"}, "limit_profile", "No limit profile named 'nope'"),
        ({"latency_profile": "nope"}, "latency_profile", "No latency profile named 'nope'"),
        ({"fault_profile": "nope"}, "fault_profile", "No fault profile named 'nope'"),
        ({"recording_set": "nope"}, "recording_set", "No recording set named 'nope'"),
        ({"output_tokens_mean": -1}, "output_tokens_mean", "greater than or equal to 0"),
        ({"tool_call_probability": 1.5}, "tool_call_probability", "less than or equal to 1"),
        ({"mode": "psychic"}, "mode", "not a valid choice"),
        ({"name": "a/b"}, "name", ""),
        ({"upstream_endpoint": "not a url"}, "upstream_endpoint", "valid URL"),
        # Whole-deployment rules (Deployment.clean): record modes need an upstream and a recording set.
        ({"mode": "record", "recording_set": "golden"}, "upstream_endpoint", "upstream endpoint"),
        ({"mode": "replay"}, "recording_set", "needs a recording set"),
    ],
)
def test_deployment_validation_errors_name_the_field(
    staff: APIClient, profiles: None, payload: dict, field: str, fragment: str
) -> None:
    response = staff.post("/api/deployments/", {"name": "d1", "model": "gpt-4o", **payload}, format="json")
    errors = field_errors(response)
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert not Deployment.objects.exists()


def test_deployment_names_are_unique(staff: APIClient, db) -> None:
    Deployment.objects.create(name="taken", model="gpt-4o")
    assert "name" in field_errors(staff.post("/api/deployments/", {"name": "taken", "model": "gpt-4o"}, format="json"))


def test_partial_update_is_checked_with_the_stored_values(staff: APIClient, profiles: None) -> None:
    Deployment.objects.create(name="d1", model="gpt-4o")
    errors = field_errors(staff.patch("/api/deployments/d1/", {"mode": "replay"}, format="json"))
    assert "recording_set" in errors
    assert Deployment.objects.get(name="d1").mode == "generate"


def test_upstream_key_is_write_only(staff: APIClient, profiles: None) -> None:
    created = staff.post("/api/deployments/", {
        "name": "rec", "model": "gpt-4o-mini", "mode": "record", "recording_set": "golden",
        "upstream_endpoint": "https://example.openai.azure.com", "upstream_key": UPSTREAM_SECRET,
    }, format="json")
    assert created.status_code == 201, created.content
    assert Deployment.objects.get(name="rec").upstream_key == UPSTREAM_SECRET
    for response in (created, staff.get("/api/deployments/rec/"), staff.get("/api/deployments/")):
        assert UPSTREAM_SECRET.encode() not in response.content
    assert created.json()["has_upstream_key"] is True
    assert "upstream_key" not in created.json()

    staff.patch("/api/deployments/rec/", {"enabled": False}, format="json")
    assert Deployment.objects.get(name="rec").upstream_key == UPSTREAM_SECRET  # left out: kept
    staff.patch("/api/deployments/rec/", {"upstream_key": ""}, format="json")
    assert Deployment.objects.get(name="rec").upstream_key == ""
    assert staff.get("/api/deployments/rec/").json()["has_upstream_key"] is False


def test_deleting_a_profile_in_use_is_a_conflict(staff: APIClient, profiles: None) -> None:
    staff.post("/api/deployments/", {"name": "d1", "model": "gpt-4o", "limit_profile": "small"}, format="json")
    response = staff.delete("/api/limit-profiles/small/")
    assert response.status_code == 409
    assert response.json()["in_use_by"] == ["d1 (gpt-4o)"]
    assert LimitProfile.objects.filter(name="small").exists()


def test_api_changes_bump_the_shared_config_version(
    staff: APIClient, profiles: None, django_capture_on_commit_callbacks
) -> None:
    before = read_config_version()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/api/deployments/", {"name": "d1", "model": "gpt-4o"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        staff.patch("/api/limit-profiles/small/", {"tokens_per_minute": 2000}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/api/keys/", {"name": "k"}, format="json")
    assert read_config_version() == before + 3


# --- keys -------------------------------------------------------------------------------------------------

def test_key_secret_is_shown_once_on_create(staff: APIClient, db) -> None:
    created = staff.post("/api/keys/", {"name": "ci"}, format="json")
    assert created.status_code == 201, created.content
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    secret = body["key"]
    assert secret.startswith("sim-") and body["key_prefix"] == secret[:8] and body["enabled"] is True
    row = ApiKey.objects.get(name="ci")
    assert row.key_hash == hash_api_key(secret)
    for response in (staff.get("/api/keys/"), staff.get("/api/keys/ci/")):
        assert response.status_code == 200
        assert secret.encode() not in response.content
        assert row.key_hash.encode() not in response.content
        assert b"key_hash" not in response.content
    assert staff.get("/api/keys/ci/").json() == {
        "name": "ci", "key_prefix": secret[:8], "enabled": True, "created_at": body["created_at"],
    }


def test_key_with_a_chosen_secret(staff: APIClient, db) -> None:
    created = staff.post("/api/keys/", {"name": "ci", "key": "my-chosen-secret-1"}, format="json")
    assert created.json()["key"] == "my-chosen-secret-1"
    assert ApiKey.objects.get(name="ci").key_hash == hash_api_key("my-chosen-secret-1")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "other", "key": "my-chosen-secret-1"}, "key"),  # the same secret twice
        ({"name": "ci"}, "name"),  # the same name twice
        ({"name": "short", "key": "abc"}, "key"),
        ({"name": "a/b"}, "name"),
        ({}, "name"),
    ],
)
def test_key_validation(staff: APIClient, db, payload: dict, field: str) -> None:
    staff.post("/api/keys/", {"name": "ci", "key": "my-chosen-secret-1"}, format="json")
    assert field in field_errors(staff.post("/api/keys/", payload, format="json"))
    assert ApiKey.objects.count() == 1


def test_key_rotate_update_delete(staff: APIClient, db) -> None:
    first = staff.post("/api/keys/", {"name": "ci"}, format="json").json()["key"]
    rotated = staff.post("/api/keys/ci/rotate/", {}, format="json")
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    second = rotated.json()["key"]
    assert second != first and ApiKey.objects.get(name="ci").key_hash == hash_api_key(second)
    chosen = staff.post("/api/keys/ci/rotate/", {"key": "rotated-by-hand-1"}, format="json").json()["key"]
    assert chosen == "rotated-by-hand-1"

    disabled = staff.patch("/api/keys/ci/", {"enabled": False, "key_prefix": "forged"}, format="json")
    assert disabled.status_code == 200
    row = ApiKey.objects.get(name="ci")
    assert row.enabled is False and row.key_prefix == "rotated-"  # read-only fields are ignored
    assert staff.delete("/api/keys/ci/").status_code == 204
    assert staff.get("/api/keys/ci/").status_code == 404


def test_nul_characters_in_names_are_refused_not_crashed(staff: APIClient, profiles: None) -> None:
    # PostgreSQL cannot store or compare a text with NUL: a 400 or a 404, never a 500.
    errors = field_errors(staff.post("/api/deployments/", {"name": "d1", "model": "gpt-4o", "limit_profile": "sm\x00"},
                                     format="json"))
    assert "limit_profile" in errors
    assert "name" in field_errors(staff.post("/api/keys/", {"name": "k\x00"}, format="json"))
    assert staff.get("/api/deployments/a%00b/").status_code == 404
    assert staff.delete("/api/keys/a%00b/").status_code == 404
