"""Limiter state per deployment, read and reset: the one place admin actions and the management API call.

These are synchronous (Django views and admin actions are). With REDIS_URL set they talk to Redis directly
(the state every process shares); if Redis does not answer, or without REDIS_URL, they see this process's
in-process limiter -- which, with several worker processes and no Redis, is only this worker's share.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from limits_app.config import LimitProfileConfig
from limits_app.limiter import REDIS_ERRORS, Decision, FailoverLimiter, LimitRule, get_limiter, rule_for
from limits_app.models import LimitProfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LimiterState:
    """What a deployment has used of its limits right now."""

    deployment: str
    profile: str
    backend: str  # "redis" or "memory"
    tokens_per_minute: int
    requests_per_minute: int
    request_window_s: int
    window_request_limit: int
    tokens_used: int  # over the last minute (estimates counted at arrival)
    requests_used: int  # over the last minute
    window_requests_used: int  # over the last request window
    remaining_tokens: int
    remaining_requests: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _profile_config(profile: LimitProfile | LimitProfileConfig) -> LimitProfileConfig:
    return LimitProfileConfig.from_model(profile) if isinstance(profile, LimitProfile) else profile


def _peek(deployment: str, rule: LimitRule) -> tuple[Decision, str]:
    limiter = get_limiter()
    if isinstance(limiter, FailoverLimiter):
        try:
            return limiter.redis.peek_sync(deployment, rule), "redis"
        except REDIS_ERRORS as error:
            logger.warning("rate limiter: Redis unreachable while reading %s (%s); showing this process's state",
                           deployment, type(error).__name__)
            return limiter.memory.admit_sync(deployment, rule, 0, peek=True), "memory"
    return limiter.admit_sync(deployment, rule, 0, peek=True), "memory"


def read_limiter_state(deployment: str, profile: LimitProfile | LimitProfileConfig) -> LimiterState:
    """The deployment's usage under ``profile`` (the profile it is limited by); consumes nothing."""
    config = _profile_config(profile)
    rule = rule_for(config)
    decision, backend = _peek(deployment, rule)
    return LimiterState(
        deployment=deployment,
        profile=config.name,
        backend=backend,
        tokens_per_minute=rule.tokens_per_minute,
        requests_per_minute=rule.requests_per_minute,
        request_window_s=rule.window_s,
        window_request_limit=rule.window_requests,
        tokens_used=decision.tokens_used,
        requests_used=decision.requests_used,
        window_requests_used=decision.window_requests_used,
        remaining_tokens=decision.remaining_tokens,
        remaining_requests=decision.remaining_requests,
    )


def reset_limiter_state(deployment: str) -> str:
    """Forget what the deployment has used: its next request starts on a full quota. Returns the backend."""
    limiter = get_limiter()
    if isinstance(limiter, FailoverLimiter):
        limiter.memory.reset_sync(deployment)
        try:
            limiter.redis.reset_sync(deployment)
        except REDIS_ERRORS as error:
            logger.warning("rate limiter: Redis unreachable while resetting %s (%s); reset this process only",
                           deployment, type(error).__name__)
            return "memory"
        logger.info("rate limiter: state of %s reset", deployment)
        return "redis"
    limiter.reset_sync(deployment)
    logger.info("rate limiter: state of %s reset", deployment)
    return "memory"


def limited_deployments(profile: LimitProfile) -> list[str]:
    """Names of the deployments a profile limits (the reverse of Deployment.limit_profile)."""
    return list(profile.deployments.order_by("name").values_list("name", flat=True))


def read_profile_states(profile: LimitProfile) -> list[LimiterState]:
    config = LimitProfileConfig.from_model(profile)
    return [read_limiter_state(name, config) for name in limited_deployments(profile)]


def reset_profile_deployments(profile: LimitProfile) -> list[str]:
    """Reset every deployment the profile limits; returns their names."""
    names = limited_deployments(profile)
    for name in names:
        reset_limiter_state(name)
    return names
