"""Immutable, in-process views of the profiles, built once per configuration version (see
generators_app.registry), so the hot path reads plain attributes and never the ORM."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from limits_app.models import FaultProfile, LatencyProfile, LimitProfile


@dataclass(frozen=True, slots=True)
class LimitProfileConfig:
    name: str
    tokens_per_minute: int
    requests_per_minute: int
    request_window_s: int
    default_max_tokens: int
    on_limit: str
    queue_max_wait_ms: int

    @classmethod
    def from_model(cls, row: LimitProfile) -> LimitProfileConfig:
        return cls(
            name=row.name,
            tokens_per_minute=row.tokens_per_minute,
            requests_per_minute=row.effective_requests_per_minute,
            request_window_s=row.request_window_s,
            default_max_tokens=row.default_max_tokens,
            on_limit=row.on_limit,
            queue_max_wait_ms=row.queue_max_wait_ms,
        )


@dataclass(frozen=True, slots=True)
class LatencyProfileConfig:
    name: str
    ttft_mean_ms: float
    ttft_std_ms: float
    itl_mean_ms: float
    itl_std_ms: float
    request_mean_ms: float
    request_std_ms: float
    per_input_token_ms: float
    inflight_growth: float

    @classmethod
    def from_model(cls, row: LatencyProfile) -> LatencyProfileConfig:
        return cls(
            name=row.name,
            ttft_mean_ms=row.ttft_mean_ms,
            ttft_std_ms=row.ttft_std_ms,
            itl_mean_ms=row.itl_mean_ms,
            itl_std_ms=row.itl_std_ms,
            request_mean_ms=row.request_mean_ms,
            request_std_ms=row.request_std_ms,
            per_input_token_ms=row.per_input_token_ms,
            inflight_growth=row.inflight_growth,
        )


@dataclass(frozen=True, slots=True)
class FaultProfileConfig:
    name: str
    error_rate: float
    kinds: Mapping[str, float]
    timeout_ms: int
    fail_first: int
    content_filter_terms: tuple[str, ...]
    # The profile's last save: "fail the first N" counts start again when it changes (limits_app.faults).
    revision: str = ""

    @classmethod
    def from_model(cls, row: FaultProfile) -> FaultProfileConfig:
        return cls(
            name=row.name,
            error_rate=row.error_rate,
            kinds=MappingProxyType({str(k): float(v) for k, v in (row.kinds or {}).items()}),
            timeout_ms=row.timeout_ms,
            fail_first=row.fail_first,
            content_filter_terms=tuple(str(term) for term in (row.content_filter_terms or [])),
            revision=row.updated_at.isoformat() if row.updated_at else "",
        )
