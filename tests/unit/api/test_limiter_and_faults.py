"""Limiter state per deployment (read, reset), per limit profile, and the fault profiles' fail-first reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from generators_app.models import Deployment
from generators_app.services import read_config_version
from limits_app.config import FaultProfileConfig, LimitProfileConfig
from limits_app.faults import fail_first_counters, pick_fault
from limits_app.limiter import MemoryBackend, rule_for, set_limiter
from limits_app.models import FaultProfile, LimitProfile


@pytest.fixture
def limiter() -> Iterator[MemoryBackend]:
    backend = MemoryBackend()
    set_limiter(backend)
    yield backend
    set_limiter(None)


@pytest.fixture
def small(db) -> LimitProfile:
    profile = LimitProfile.objects.create(name="small", tokens_per_minute=1000, requests_per_minute=60)
    Deployment.objects.create(name="alpha", model="gpt-4o-mini", limit_profile=profile)
    Deployment.objects.create(name="beta", model="gpt-4o-mini", limit_profile=profile)
    Deployment.objects.create(name="free", model="gpt-4o-mini")
    return profile


def _use(limiter: MemoryBackend, deployment: str, profile: LimitProfile, tokens: int) -> None:
    assert limiter.admit_sync(deployment, rule_for(LimitProfileConfig.from_model(profile)), tokens).admitted


def test_read_and_reset_a_deployments_limiter(staff: APIClient, limiter: MemoryBackend, small: LimitProfile) -> None:
    _use(limiter, "alpha", small, 300)
    _use(limiter, "alpha", small, 100)
    state = staff.get("/api/deployments/alpha/limiter/").json()
    assert state == {
        "deployment": "alpha", "profile": "small", "backend": "memory",
        "tokens_per_minute": 1000, "requests_per_minute": 60, "request_window_s": 10, "window_request_limit": 10,
        "tokens_used": 400, "requests_used": 2, "window_requests_used": 2,
        "remaining_tokens": 600, "remaining_requests": 58,
    }
    assert staff.get("/api/deployments/alpha/limiter/").json()["tokens_used"] == 400  # reading consumes nothing

    reset = staff.post("/api/deployments/alpha/limiter/reset/")
    assert reset.status_code == 200
    assert reset.json()["tokens_used"] == 0 and reset.json()["remaining_tokens"] == 1000


def test_a_deployment_without_limit_profile_has_no_limiter(staff: APIClient, limiter: MemoryBackend,
                                                           small: LimitProfile) -> None:
    for response in (staff.get("/api/deployments/free/limiter/"), staff.post("/api/deployments/free/limiter/reset/")):
        assert response.status_code == 404
        assert "no limit profile" in response.json()["detail"]
    assert staff.get("/api/deployments/missing/limiter/").status_code == 404


def test_profile_state_and_reset(staff: APIClient, limiter: MemoryBackend, small: LimitProfile) -> None:
    _use(limiter, "alpha", small, 200)
    _use(limiter, "beta", small, 50)
    states = staff.get("/api/limit-profiles/small/state/").json()
    assert [(s["deployment"], s["tokens_used"]) for s in states] == [("alpha", 200), ("beta", 50)]
    assert staff.post("/api/limit-profiles/small/reset/").json() == {"deployments": ["alpha", "beta"]}
    assert [s["tokens_used"] for s in staff.get("/api/limit-profiles/small/state/").json()] == [0, 0]


def test_limiter_endpoints_need_staff(anonymous: APIClient, non_staff: APIClient, limiter: MemoryBackend,
                                      small: LimitProfile) -> None:
    _use(limiter, "alpha", small, 200)
    for client, status in ((anonymous, 401), (non_staff, 403)):
        assert client.get("/api/deployments/alpha/limiter/").status_code == status
        assert client.post("/api/deployments/alpha/limiter/reset/").status_code == status
        assert client.post("/api/limit-profiles/small/reset/").status_code == status
        assert client.post("/api/fault-profiles/any/reset-fail-first/").status_code == status
    # Nothing was reset by those refused calls.
    assert limiter.admit_sync("alpha", rule_for(LimitProfileConfig.from_model(small)), 0, peek=True).tokens_used == 200


def test_reset_fail_first_starts_the_count_again(
    staff: APIClient, db, django_capture_on_commit_callbacks
) -> None:
    profile = FaultProfile.objects.create(name="flaky-start", fail_first=2)
    Deployment.objects.create(name="d1", model="gpt-4o-mini", fault_profile=profile)

    def config() -> FaultProfileConfig:
        return FaultProfileConfig.from_model(FaultProfile.objects.get(pk=profile.pk))

    fail_first_counters.reset()
    before = config()
    assert [pick_fault(before, "d1") is not None for _ in range(3)] == [True, True, False]

    version = read_config_version()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post("/api/fault-profiles/flaky-start/reset-fail-first/")
    assert response.status_code == 200
    assert response.json() == {"profile": "flaky-start", "deployments": ["d1"]}
    assert read_config_version() == version + 1  # every process sees the new revision
    after = config()
    assert [pick_fault(after, "d1") is not None for _ in range(3)] == [True, True, False]
    assert staff.post("/api/fault-profiles/missing/reset-fail-first/").status_code == 404
