"""/api/limit-profiles/, /api/latency-profiles/, /api/fault-profiles/: CRUD, validation, permissions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from tests.unit.api.conftest import field_errors

RESOURCES = {
    "limit-profiles": (LimitProfile, {"name": "p1", "tokens_per_minute": 100_000}, {"tokens_per_minute": 5_000}),
    "latency-profiles": (LatencyProfile, {"name": "p1", "ttft_mean_ms": 350, "ttft_std_ms": 80}, {"itl_mean_ms": 12}),
    "fault-profiles": (FaultProfile, {"name": "p1", "error_rate": 0.05, "kinds": {"500": 3, "truncate:5": 1},
                                      "content_filter_terms": ["forbidden phrase", "completion:self_harm:oops"]},
                       {"fail_first": 2}),
}


@pytest.mark.parametrize("resource", RESOURCES)
def test_profile_crud(staff: APIClient, resource: str) -> None:
    model, payload, change = RESOURCES[resource]
    created = staff.post(f"/api/{resource}/", payload, format="json")
    assert created.status_code == 201, created.content
    assert {key: created.json()[key] for key in payload} == payload
    assert staff.get(f"/api/{resource}/").json()[0]["name"] == "p1"
    assert staff.get(f"/api/{resource}/p1/").status_code == 200

    patched = staff.patch(f"/api/{resource}/p1/", change, format="json")
    assert patched.status_code == 200, patched.content
    row = model.objects.get(name="p1")
    for key, value in change.items():
        assert getattr(row, key) == value

    replaced = staff.put(f"/api/{resource}/p1/", {**payload, "name": "with spaces.and dots"}, format="json")
    assert replaced.status_code == 200, replaced.content
    assert staff.get("/api/" + resource + "/with%20spaces.and%20dots/").status_code == 200
    assert staff.delete("/api/" + resource + "/with%20spaces.and%20dots/").status_code == 204
    assert not model.objects.exists()


@pytest.mark.parametrize("resource", RESOURCES)
def test_profile_permissions(anonymous: APIClient, non_staff: APIClient, resource: str) -> None:
    model, payload, _ = RESOURCES[resource]
    assert anonymous.get(f"/api/{resource}/").status_code == 401
    assert anonymous.post(f"/api/{resource}/", payload, format="json").status_code == 401
    assert non_staff.get(f"/api/{resource}/").status_code == 403
    assert non_staff.post(f"/api/{resource}/", payload, format="json").status_code == 403
    assert not model.objects.exists()


def test_limit_profile_defaults_rpm_the_aoai_way(staff: APIClient) -> None:
    body = staff.post("/api/limit-profiles/", {"name": "p", "tokens_per_minute": 30_000}, format="json").json()
    assert body["requests_per_minute"] is None and body["effective_requests_per_minute"] == 180
    assert body["request_window_s"] == 10 and body["on_limit"] == "reject"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tokens_per_minute": -5}, "tokens_per_minute"),
        ({"tokens_per_minute": 0}, "tokens_per_minute"),
        ({"tokens_per_minute": 2**40}, "tokens_per_minute"),
        ({"requests_per_minute": -1}, "requests_per_minute"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"request_window_s": 5}, "request_window_s"),
        ({"default_max_tokens": -1}, "default_max_tokens"),
        ({"on_limit": "explode"}, "on_limit"),
        ({"queue_max_wait_ms": 10**9}, "queue_max_wait_ms"),
        ({"name": "a/b"}, "name"),
    ],
)
def test_limit_profile_validation(staff: APIClient, payload: dict, field: str) -> None:
    response = staff.post("/api/limit-profiles/", {"name": "p", "tokens_per_minute": 1000, **payload}, format="json")
    assert field in field_errors(response)
    assert not LimitProfile.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ttft_mean_ms": -1}, "ttft_mean_ms"),
        ({"ttft_mean_ms": 100, "ttft_std_ms": 1001}, "ttft_std_ms"),  # std > 10 x mean
        ({"itl_mean_ms": 0, "itl_std_ms": 1}, "itl_std_ms"),  # a zero mean allows no spread
        ({"request_mean_ms": 600_001}, "request_mean_ms"),  # more than 10 minutes
        ({"request_mean_ms": 600_000, "request_std_ms": 600_001}, "request_std_ms"),
        ({"per_input_token_ms": 5000}, "per_input_token_ms"),
        ({"inflight_growth": -0.5}, "inflight_growth"),
        ({"inflight_growth": 11}, "inflight_growth"),
        ({"ttft_mean_ms": "fast"}, "ttft_mean_ms"),
    ],
)
def test_latency_profile_validation(staff: APIClient, payload: dict, field: str) -> None:
    response = staff.post("/api/latency-profiles/", {"name": "p", **payload}, format="json")
    assert field in field_errors(response)
    assert not LatencyProfile.objects.exists()


def test_latency_std_at_ten_times_the_mean_is_allowed(staff: APIClient) -> None:
    payload = {"name": "p", "ttft_mean_ms": 100, "ttft_std_ms": 1000}
    assert staff.post("/api/latency-profiles/", payload, format="json").status_code == 201


def test_latency_partial_update_is_checked_against_stored_means(staff: APIClient) -> None:
    staff.post("/api/latency-profiles/", {"name": "p", "itl_mean_ms": 10, "itl_std_ms": 3}, format="json")
    errors = field_errors(staff.patch("/api/latency-profiles/p/", {"itl_std_ms": 101}, format="json"))
    assert "at most 100 ms" in errors["itl_std_ms"][0]
    assert staff.patch("/api/latency-profiles/p/", {"itl_std_ms": 100}, format="json").status_code == 200
    # Lowering the mean below a tenth of the stored std dev is refused too.
    assert "itl_std_ms" in field_errors(staff.patch("/api/latency-profiles/p/", {"itl_mean_ms": 5}, format="json"))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"kinds": {"418": 1}}, "kinds"),
        ({"kinds": {"500": -1}}, "kinds"),
        ({"kinds": {"truncate": 1}}, "kinds"),  # truncate needs its K
        ({"kinds": ["500"]}, "kinds"),
        ({"content_filter_terms": "not a list"}, "content_filter_terms"),
        ({"content_filter_terms": ["completion:jailbreak:x"]}, "content_filter_terms"),  # prompts only
        ({"content_filter_terms": ["violence:"]}, "content_filter_terms"),  # no text to match
        ({"fail_first": -3}, "fail_first"),
    ],
)
def test_fault_profile_validation(staff: APIClient, payload: dict, field: str) -> None:
    response = staff.post("/api/fault-profiles/", {"name": "p", **payload}, format="json")
    assert field in field_errors(response)
    assert not FaultProfile.objects.exists()


def test_fault_weights_must_be_finite(staff: APIClient) -> None:
    # 1e999 is valid JSON that Python reads as infinity; the database could not store it.
    raw = b'{"name": "p", "kinds": {"500": 1e999}}'
    response = staff.post("/api/fault-profiles/", raw, content_type="application/json")
    assert "kinds" in field_errors(response)


def test_duplicate_profile_name_is_a_field_error(staff: APIClient) -> None:
    staff.post("/api/limit-profiles/", {"name": "p", "tokens_per_minute": 10}, format="json")
    response = staff.post("/api/limit-profiles/", {"name": "p", "tokens_per_minute": 10}, format="json")
    assert "name" in field_errors(response)
