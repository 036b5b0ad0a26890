"""Reading and resetting limiter state (services and the admin action), AOAI's cost estimate, and the 429."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from generators_app.catalogue import Operation, get_model
from generators_app.errors import Surface, rate_limited
from generators_app.limiting import estimate_cost
from generators_app.models import Deployment
from generators_app.operations import prepare
from generators_app.registry import DeploymentConfig
from limits_app import services
from limits_app.config import LimitProfileConfig
from limits_app.limiter import FailoverLimiter, MemoryBackend, rule_for, set_limiter
from limits_app.models import LimitProfile
from limits_app.redis_backend import RedisBackend
from tests.unit.test_limiter import REDIS_URL, needs_redis


@pytest.fixture
def memory_limiter() -> Iterator[MemoryBackend]:
    limiter = MemoryBackend()
    set_limiter(limiter)
    yield limiter
    set_limiter(None)


@pytest.fixture
def redis_limiter() -> Iterator[FailoverLimiter]:
    backend = RedisBackend(REDIS_URL, key_prefix=f"test-services-{uuid.uuid4().hex}")
    limiter = FailoverLimiter(backend, MemoryBackend())
    set_limiter(limiter)
    yield limiter
    set_limiter(None)
    for key in backend._sync_client.scan_iter(f"{backend.key_prefix}:*") if backend._sync_client else []:
        backend._sync_client.delete(key)


@pytest.fixture
def limited(db) -> LimitProfile:
    profile = LimitProfile.objects.create(name="small", tokens_per_minute=1000, requests_per_minute=60)
    Deployment.objects.create(name="alpha", model="gpt-4o-mini", limit_profile=profile)
    Deployment.objects.create(name="beta", model="gpt-4o-mini", limit_profile=profile)
    Deployment.objects.create(name="free", model="gpt-4o-mini")
    return profile


def _rule(profile: LimitProfile):
    return rule_for(LimitProfileConfig.from_model(profile))


def test_state_is_read_without_consuming_and_reset_per_deployment(limited, memory_limiter) -> None:
    memory_limiter.admit_sync("alpha", _rule(limited), 300)
    memory_limiter.admit_sync("beta", _rule(limited), 100)

    state = services.read_limiter_state("alpha", limited)
    assert (state.tokens_used, state.requests_used, state.window_requests_used) == (300, 1, 1)
    assert (state.remaining_tokens, state.remaining_requests, state.window_request_limit) == (700, 59, 10)
    assert state.backend == "memory" and state.profile == "small"
    assert services.read_limiter_state("alpha", limited) == state  # reading consumed nothing

    assert services.reset_limiter_state("alpha") == "memory"
    assert services.read_limiter_state("alpha", limited).tokens_used == 0
    assert services.read_limiter_state("beta", limited).tokens_used == 100
    assert [s.deployment for s in services.read_profile_states(limited)] == ["alpha", "beta"]


@needs_redis
def test_with_redis_the_services_read_and_reset_the_shared_state(limited, redis_limiter) -> None:
    redis_limiter.redis.admit_sync("alpha", _rule(limited), 250)
    state = services.read_limiter_state("alpha", limited)
    assert (state.backend, state.tokens_used) == ("redis", 250)
    assert services.reset_limiter_state("alpha") == "redis"
    assert services.read_limiter_state("alpha", limited).tokens_used == 0


@pytest.fixture
def admin_client(db) -> Client:
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


def test_admin_shows_usage_and_the_action_resets_the_profile_deployments(limited, memory_limiter, admin_client):
    memory_limiter.admit_sync("alpha", _rule(limited), 300)
    page = admin_client.get(f"/admin/limits_app/limitprofile/{limited.pk}/change/")
    assert page.status_code == 200
    assert "<b>alpha</b>: 300 of 1000 tokens and 1 of 60 requests" in page.content.decode()

    listing = admin_client.get("/admin/limits_app/limitprofile/")
    assert listing.status_code == 200 and "alpha, beta" in listing.content.decode()

    response = admin_client.post(
        "/admin/limits_app/limitprofile/",
        {"action": "reset_limiter_state", "_selected_action": [limited.pk]},
        follow=True,
    )
    assert "Rate-limit state reset for: alpha, beta." in response.content.decode()
    assert services.read_limiter_state("alpha", limited).tokens_used == 0


# --- the cost AOAI counts at arrival ----------------------------------------------------------------------


def _deployment(model: str, default_max_tokens: int = 16) -> DeploymentConfig:
    profile = LimitProfileConfig("p", 100_000, 600, 10, default_max_tokens, "reject", 0)
    return DeploymentConfig(name="d", model=get_model(model), mode="generate", output_tokens_mean=50,
                            output_tokens_std=0, limit_profile=profile)


def test_chat_costs_prompt_plus_max_tokens_times_n() -> None:
    deployment = _deployment("gpt-4o-mini")
    messages = [{"role": "user", "content": "What is 4200 + 42?"}]  # 16 prompt tokens, as real AOAI counts
    prepared = prepare(Operation.CHAT, {"messages": messages, "max_tokens": 100, "n": 3}, deployment)
    assert estimate_cost(prepared, deployment.limit_profile) == 16 + 300
    without_cap = prepare(Operation.CHAT, {"messages": messages}, deployment)
    assert estimate_cost(without_cap, deployment.limit_profile) == 16 + 16  # the profile's default
    new_name = prepare(Operation.CHAT, {"messages": messages, "max_completion_tokens": 40}, deployment)
    assert estimate_cost(new_name, deployment.limit_profile) == 16 + 40


def test_completions_count_every_prompt_and_embeddings_only_their_input() -> None:
    completions = _deployment("gpt-35-turbo-instruct", default_max_tokens=10)
    prepared = prepare(Operation.COMPLETIONS, {"prompt": ["a b", "c d"], "max_tokens": 5, "n": 2}, completions)
    assert estimate_cost(prepared, completions.limit_profile) == prepared.prompt_tokens + 5 * 4

    embeddings = _deployment("text-embedding-3-small")
    prepared = prepare(Operation.EMBEDDINGS, {"input": ["hello world", "again"]}, embeddings)
    assert prepared.prompt_tokens == 3
    assert estimate_cost(prepared, embeddings.limit_profile) == 3


# --- the 429 --------------------------------------------------------------------------------------------------


def _limit_headers() -> list[tuple[bytes, bytes]]:
    return [(b"x-ratelimit-remaining-tokens", b"0")]


def test_aoai_429_names_operation_version_and_cause_with_whole_seconds_rounded_up() -> None:
    error = rate_limited(Surface.AZURE, Operation.EMBEDDINGS, "2024-10-21", "d", cause="tokens",
                         retry_after_ms=6_001, limit=1000, used=990, requested=20, headers=_limit_headers())
    assert error.status == 429
    message = orjson.loads(error.render())["error"]["message"]
    assert orjson.loads(error.render())["error"]["code"] == "429"
    assert message == (
        "Requests to the Embeddings_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "
        "token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. Please go here: "
        "https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
    )
    headers = dict(error.headers)
    assert headers[b"retry-after"] == b"7" and headers[b"retry-after-ms"] == b"6001"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"0"

    calls = rate_limited(Surface.AZURE_V1, Operation.CHAT, None, "d", cause="requests", retry_after_ms=400,
                         limit=60, used=60, requested=1, headers=[])
    text = orjson.loads(calls.render())["error"]["message"]
    assert "ChatCompletions_Create" in text and "exceeded call rate limit" in text
    assert "Please retry after 1 second." in text


def test_openai_surface_429_has_openai_shape() -> None:
    error = rate_limited(Surface.OPENAI, Operation.CHAT, None, "gpt-4o-mini", cause="requests", retry_after_ms=2_500,
                         limit=60, used=60, requested=1, headers=[])
    body = orjson.loads(error.render())["error"]
    assert body["type"] == "requests" and body["code"] == "rate_limit_exceeded"
    assert "on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 2.5s." in body["message"]
