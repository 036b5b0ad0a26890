"""Where the pipeline meets the rate limiter (limits_app.limiter): estimate a request's cost as AOAI does,
admit it (or queue it, or answer 429), and put the x-ratelimit-* headers on every answer of a limited
deployment."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import parse_qs

from generators_app import observability
from generators_app.answers import Headers
from generators_app.catalogue import Operation
from generators_app.errors import ApiError, rate_limited
from generators_app.operations import PreparedRequest
from generators_app.registry import DeploymentConfig
from limits_app.config import LimitProfileConfig
from limits_app.limiter import REASON_TOKENS, Decision, get_limiter, rule_for

_RATE_LIMIT_HEADER = b"x-ratelimit-limit-tokens"
# Waiters woken by the same bucket leaving the window would all retry at once; spread them a little.
_QUEUE_JITTER_S = 0.005


def estimate_cost(prepared: PreparedRequest, profile: LimitProfileConfig) -> int:
    """AOAI's estimate at arrival: prompt tokens plus max_tokens (or the profile's default) per choice;
    embeddings count their input only."""
    if prepared.operation is Operation.EMBEDDINGS:
        return prepared.prompt_tokens
    completion = prepared.max_tokens if prepared.max_tokens is not None else profile.default_max_tokens
    return prepared.prompt_tokens + completion * max(1, prepared.n)


def _api_version(query_string: bytes) -> str | None:
    versions = parse_qs(query_string.decode("latin-1")).get("api-version")
    return versions[0] if versions else None


def _refusal(decision: Decision, prepared: PreparedRequest, cost: int, surface: str, query_string: bytes
             ) -> ApiError:
    rule = decision.rule
    tokens = decision.reason == REASON_TOKENS
    return rate_limited(
        surface,
        prepared.operation,
        _api_version(query_string),
        prepared.deployment.name,
        cause="tokens" if tokens else "requests",
        retry_after_ms=decision.retry_after_ms,
        limit=rule.tokens_per_minute if tokens else rule.requests_per_minute,
        used=decision.tokens_used if tokens else decision.requests_used,
        requested=cost if tokens else 1,
        headers=decision.headers(),
    )


async def admit(prepared: PreparedRequest, surface: str, query_string: bytes) -> Headers:
    """The x-ratelimit-* headers for an admitted request (none when the deployment has no limit profile);
    raises the 429 ApiError when it is refused (after waiting, in queue mode)."""
    profile = prepared.deployment.limit_profile
    if profile is None:
        return []
    rule = rule_for(profile)
    cost = estimate_cost(prepared, profile)
    limiter = get_limiter()
    name = prepared.deployment.name
    decision = await limiter.admit(name, rule, cost)
    if not decision.admitted and profile.on_limit == "queue" and profile.queue_max_wait_ms > 0:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + profile.queue_max_wait_ms / 1000
        while not decision.admitted:
            wait = decision.retry_after_ms / 1000 + random.uniform(0, _QUEUE_JITTER_S)
            if loop.time() + wait > deadline:
                break  # it cannot be admitted within the bound: answer 429 now rather than later
            await asyncio.sleep(wait)
            decision = await limiter.admit(name, rule, cost)
    if not decision.admitted:
        observability.record_rate_limited(name, decision.reason)
        raise _refusal(decision, prepared, cost, surface, query_string)
    return decision.headers()


async def error_headers(error: ApiError, deployment: DeploymentConfig | None) -> Headers:
    """Errors of a limited deployment carry the x-ratelimit-* headers too (what is left; nothing consumed)."""
    if deployment is None or deployment.limit_profile is None:
        return []
    if any(name == _RATE_LIMIT_HEADER for name, _ in error.headers):
        return []
    decision = await get_limiter().peek(deployment.name, rule_for(deployment.limit_profile))
    return decision.headers()
