"""Latency and faults for one request: where the pipeline meets limits_app.latency and limits_app.faults.

``plan(...)``, before the answer is produced, reads the override headers (when SIMULATOR_ALLOW_OVERRIDES is
on), matches the fault profile's content-filter terms and picks a fault; it raises ``ApiError`` for a refused
prompt and for the HTTP faults (429, 500, 503). ``Shaping.apply(answer)``, after, turns the latency draws
into deadlines on the answer (``JsonAnswer.deliver_at``, ``StreamAnswer.frame_deadlines``) and marks the
transport faults (timeout, reset, truncate, malformed); consumers.py sleeps until the deadlines, cuts or
drops the connection. Deadlines count from the request's arrival, so the simulator's own processing time
is inside the configured latency, not added to it.

``plan`` returns None when there is nothing to do (no latency or a zero one, no fault profile, no override
header): the throughput path pays one attribute check per profile and a scan of the header names.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from django.conf import settings

from generators_app import observability
from generators_app.answers import Answer, DroppedConnection, JsonAnswer, StreamAnswer
from generators_app.catalogue import AnyOperation, Operation
from generators_app.errors import (
    ApiError,
    invalid_request,
    prompt_filtered,
    rate_limited,
    server_error,
    service_unavailable,
)
from generators_app.generation.content_filter import filter_json_body, filter_stream_frames
from limits_app import latency
from limits_app.config import LatencyProfileConfig
from limits_app.faults import (
    CONNECTION_KINDS,
    HTTP_ERROR_KINDS,
    PROMPT,
    Fault,
    match_terms,
    parse_fault,
    parse_terms,
    pick_fault,
    prompt_text,
)

if TYPE_CHECKING:
    from generators_app.operations import PreparedRequest
    from generators_app.pipeline import DataPlaneRequest
    from generators_app.registry import DeploymentConfig

LATENCY_HEADER = b"x-simulator-latency-ms"
FAULT_HEADER = b"x-simulator-fault"
_OVERRIDE_PREFIX = b"x-simulator-"
# Timed by time to first token + one inter-token latency per token, and subject to the content filter.
# The other operations (embeddings, images, audio) take one per-request latency.
TOKEN_TIMED = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.RESPONSES})
# What the 429 fault says to wait (Retry-After: 1, retry-after-ms: 1000), as a short AOAI call-rate 429 does.
FAULT_RETRY_AFTER_MS = 1000

_rng = random.Random()


@dataclass(slots=True)
class Shaping:
    """What ``plan`` decided for one request, applied to its answer by ``apply``."""

    deployment: DeploymentConfig | None  # None: an extension route without a deployment (latency only)
    operation: AnyOperation
    prompt_tokens: int
    arrived_at: float  # time.monotonic() when the transport received the request
    latency: LatencyProfileConfig | None = None  # None: no profile delay
    latency_override: tuple[float, float] | None = None  # (TTFT or request ms, ITL ms) from the header
    fault: Fault | None = None  # a transport fault (timeout, reset, truncate, malformed)
    completion_filter: str | None = None  # the category when a `completion:` content-filter term matched

    def apply(self, answer: Answer) -> Answer:
        fault = self.fault
        if fault is not None and fault.kind in CONNECTION_KINDS:
            return self._dropped(answer)
        if not 200 <= answer.status < 300 or isinstance(answer, DroppedConnection):
            return answer  # an error answers at once, as the real service's do (an extension's 202 is paced)
        paced = token_frame_count(answer) if isinstance(answer, StreamAnswer) else 0
        # Fewer frames than tokens (frames carrying several tokens): each gap covers that many tokens' ITL.
        tokens_per_frame = max(1.0, answer.completion_tokens / paced) if paced else 1.0
        if self.completion_filter is not None:
            paced = _filter_completion(answer, self.completion_filter, paced)
        if self.latency is not None or self.latency_override is not None:
            self._schedule(answer, paced, tokens_per_frame)
        if fault is not None:
            _mark_fault(answer, fault)
        return answer

    def _dropped(self, answer: Answer) -> DroppedConnection:
        fault = self.fault
        assert fault is not None
        close_at = 0.0
        if fault.kind == "timeout":
            profile = self.deployment.fault_profile if self.deployment is not None else None
            hold_ms = fault.argument if fault.argument is not None else (
                profile.timeout_ms if profile is not None else _DEFAULT_TIMEOUT_MS)
            close_at = self.arrived_at + hold_ms / 1000
        source = getattr(answer, "source", None)
        if source is not None:  # a forwarded upstream stream nobody will read: release its connection now
            asyncio.get_running_loop().create_task(source.aclose())
        return DroppedConnection(fault.kind, close_at, answer.headers)

    def _schedule(self, answer: JsonAnswer | StreamAnswer, paced: int, tokens_per_frame: float) -> None:
        if _already_timed(answer):
            return  # a replayed answer keeps its recorded timing
        profile, override = self.latency, self.latency_override
        now = time.monotonic()
        factor = 1.0
        tracked = override is None and profile is not None and profile.inflight_growth > 0
        if tracked:
            assert profile is not None and self.deployment is not None
            factor = latency.load_factor(profile, latency.in_flight.count(self.deployment.name, now))
        if isinstance(answer, JsonAnswer):
            delay_ms = self._json_delay_ms(answer.completion_tokens, factor)
            answer.deliver_at = done_at = self.arrived_at + delay_ms / 1000
        else:
            if paced <= 0:
                return
            answer.frame_deadlines = self._frame_deadlines(paced, tokens_per_frame, factor)
            done_at = answer.frame_deadlines[-1]
        if tracked:
            assert self.deployment is not None
            latency.in_flight.add(self.deployment.name, done_at)

    def _json_delay_ms(self, completion_tokens: int, factor: float) -> float:
        override, profile = self.latency_override, self.latency
        token_timed = self.operation in TOKEN_TIMED
        if override is not None:
            return override[0] + override[1] * completion_tokens if token_timed else override[0]
        assert profile is not None
        if token_timed:
            return (latency.draw_ttft_ms(profile, _rng, factor)
                    + latency.draw_itl_total_ms(profile, completion_tokens, _rng, factor))
        return latency.draw_request_ms(profile, self.prompt_tokens, _rng, factor)

    def _frame_deadlines(self, paced: int, tokens_per_frame: float, factor: float) -> list[float]:
        """The first content frame at TTFT, each later one ``tokens_per_frame`` ITLs after the previous one."""
        override, profile = self.latency_override, self.latency
        if override is not None:
            ttft_ms, gaps_ms = override[0], [override[1]] * (paced - 1)
        else:
            assert profile is not None
            ttft_ms = latency.draw_ttft_ms(profile, _rng, factor)
            gaps_ms = latency.draw_itls_ms(profile, paced - 1, _rng, factor)
        scale = tokens_per_frame / 1000
        return list(accumulate((gap * scale for gap in gaps_ms), initial=self.arrived_at + ttft_ms / 1000))


_DEFAULT_TIMEOUT_MS = 30_000  # the `timeout` header fault on a deployment without a fault profile


def token_frame_count(answer: StreamAnswer) -> int:
    """How many frames from ``first_token_frame`` on carry tokens (and are paced): one per completion token,
    never the last frame ([DONE] or the closing event), which follows the last token at once."""
    return max(0, min(answer.completion_tokens, len(answer.frames) - answer.first_token_frame - 1))


def _already_timed(answer: JsonAnswer | StreamAnswer) -> bool:
    if isinstance(answer, JsonAnswer):
        return answer.deliver_at > 0
    # An answer whose frames come from elsewhere (a forwarded upstream stream) is paced by its source.
    return bool(answer.frame_deadlines) or answer.source is not None


def _filter_completion(answer: JsonAnswer | StreamAnswer, category: str, paced: int) -> int:
    """Stop the answer with the output filter; returns how many token frames are left to pace."""
    if isinstance(answer, JsonAnswer):
        answer.body = filter_json_body(answer.body, category)
    elif answer.source is None:
        answer.frames = filter_stream_frames(answer.frames, answer.first_token_frame, paced, category)
        return paced // 2
    return paced


def _mark_fault(answer: JsonAnswer | StreamAnswer, fault: Fault) -> None:
    """truncate: a stream cut after K events (a JSON body cut in half), the connection then closed;
    malformed: a broken event in place of the first content event (a JSON body that does not parse)."""
    if isinstance(answer, JsonAnswer):
        if fault.kind == "truncate":
            answer.cut_at = len(answer.body) // 2
        elif fault.kind == "malformed":
            answer.body = answer.body[: len(answer.body) // 2]
        return
    if answer.source is not None:
        return
    if fault.kind == "truncate":
        answer.cut_after = fault.argument or 0
    elif fault.kind == "malformed" and answer.frames:
        index = min(answer.first_token_frame, len(answer.frames) - 1)
        frame = answer.frames[index]
        answer.frames = [*answer.frames[:index], frame[: max(7, len(frame) // 2)] + b"\n\n",
                         *answer.frames[index + 1:]]


# --- planning -----------------------------------------------------------------------------------------------


def _overrides(request: DataPlaneRequest) -> tuple[tuple[float, float] | None, Fault | None]:
    latency_override = fault = None
    for name, value in request.headers:
        if not name.startswith(_OVERRIDE_PREFIX):
            continue
        text = value.decode("latin-1")
        try:
            if name == LATENCY_HEADER:
                latency_override = latency.parse_latency_override(text)
            elif name == FAULT_HEADER:
                fault = parse_fault(text, header=True)
        except ValueError as problem:
            header = name.decode("latin-1")
            raise invalid_request(f"Invalid {header} header: {problem}.", header, "invalid_header") from None
    return latency_override, fault


def _http_fault(fault: Fault, request: DataPlaneRequest, prepared: PreparedRequest) -> ApiError:
    if fault.kind == "500":
        return server_error(request.surface)
    if fault.kind == "503":
        return service_unavailable(request.surface)
    versions = parse_qs(request.query_string.decode("latin-1")).get("api-version")
    limits = prepared.deployment.limit_profile
    limit = limits.requests_per_minute if limits is not None else 1
    return rate_limited(
        request.surface, prepared.operation, versions[0] if versions else None, prepared.deployment.name,
        cause="requests", retry_after_ms=FAULT_RETRY_AFTER_MS, limit=limit, used=limit, requested=1, headers=[],
    )


def plan(request: DataPlaneRequest, deployment: DeploymentConfig, prepared: PreparedRequest) -> Shaping | None:
    """Decide latency and faults for an admitted request; raise ApiError for an HTTP fault or a refused prompt."""
    latency_override, fault = _overrides(request) if settings.SIMULATOR_ALLOW_OVERRIDES else (None, None)
    profile = deployment.latency_profile
    if latency.is_zero(profile):
        profile = None
    faults = deployment.fault_profile
    if faults is None and profile is None and latency_override is None and fault is None:
        return None
    completion_filter = None
    if faults is not None:
        if faults.content_filter_terms and prepared.operation in TOKEN_TIMED:
            term = match_terms(parse_terms(faults.content_filter_terms), prompt_text(prepared.payload))
            if term is not None:
                observability.record_fault(deployment.name, "content_filter")
            if term is not None and term.target == PROMPT:
                raise prompt_filtered(term.category)
            completion_filter = term.category if term is not None else None
        if fault is None:
            fault = pick_fault(faults, deployment.name)
    if fault is not None and fault.kind == "none":
        fault = None
    if fault is not None:
        observability.record_fault(deployment.name, fault.kind)
    if fault is not None and fault.kind in HTTP_ERROR_KINDS:
        raise _http_fault(fault, request, prepared)
    arrived_at = getattr(request, "arrived_at", 0.0) or time.monotonic()
    return Shaping(deployment, prepared.operation, prepared.prompt_tokens, arrived_at, profile, latency_override,
                   fault, completion_filter)


def with_latency(
    shaped: Shaping | None,
    answer: Answer,
    decided: tuple[float, float],
    *,
    deployment: DeploymentConfig | None,
    operation: AnyOperation,
    prompt_tokens: int,
    arrived_at: float,
) -> Shaping:
    """An extension latency function's (first ms, per-token ms) in place of the latency profile; an
    x-simulator-latency-ms header, already in ``shaped``, still wins. A complete answer of an operation that is
    not token-timed waits first + per-token x its completion tokens."""
    first_ms, per_token_ms = decided
    if isinstance(answer, JsonAnswer) and operation not in TOKEN_TIMED:
        first_ms += per_token_ms * answer.completion_tokens
    if shaped is None:
        return Shaping(deployment, operation, prompt_tokens, arrived_at or time.monotonic(), None,
                       (first_ms, per_token_ms))
    if shaped.latency_override is None:
        shaped.latency_override = (first_ms, per_token_ms)
    return shaped
