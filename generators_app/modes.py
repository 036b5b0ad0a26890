"""A deployment's mode decides where an answer comes from: generated, replayed from a recording, or forwarded
to the real upstream (and recorded). Called by the pipeline once the request is validated and admitted.

- ``generate``: the operation's generator;
- ``replay``: the matching recording, or a 404 that names the nearest recordings and how they differ;
- ``replay_or_generate`` / ``replay_or_record``: the recording, else generate / forward and record;
- ``record``: always forward upstream and save the answer (off the response path).

The lookup is an in-process cache hit (recordings_app.index); only the first use of a recording after an
edit, and the explanation of a strict miss, read the database.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from generators_app import observability
from generators_app.answers import Answer, Headers, JsonAnswer, StreamAnswer
from generators_app.catalogue import MULTIPART_OPERATIONS
from generators_app.errors import ApiError
from generators_app.models import DeploymentMode
from generators_app.multipart_form import normalized_payload
from recordings_app import services as recordings
from recordings_app.index import hit_counter, recording_index
from recordings_app.matching import match_key, normalize_body
from recordings_app.recorder import (
    MAX_HOPS,
    Capture,
    UpstreamUnreachable,
    build_target,
    extension_target,
    forward,
    record_hops,
)
from recordings_app.replay import InvalidRecording, ReplayedJson, StoredAnswer, replay

if TYPE_CHECKING:
    from generators_app.operations import PreparedRequest
    from generators_app.pipeline import DataPlaneRequest
    from generators_app.registry import DeploymentConfig

logger = logging.getLogger(__name__)

_REPLAY_MODES = frozenset({DeploymentMode.REPLAY, DeploymentMode.REPLAY_OR_GENERATE, DeploymentMode.REPLAY_OR_RECORD})
_pending_saves: set[asyncio.Task] = set()


async def answer_for_mode(
    request: DataPlaneRequest, prepared: PreparedRequest, headers: Headers, config_version: int
) -> Answer:
    deployment = prepared.deployment
    mode = deployment.mode
    if mode == DeploymentMode.GENERATE:
        return await _generated(prepared, headers)
    if mode == DeploymentMode.RECORD:
        return await _forward_and_record(request, prepared, headers)
    if mode not in _REPLAY_MODES:
        raise ApiError(500, _simulator_error(f"Deployment '{deployment.name}' has an unknown mode '{mode}'."))
    recording_set = deployment.recording_set
    if recording_set is None:
        raise ApiError(404, _simulator_error(
            f"Simulator replay miss: deployment '{deployment.name}' is in '{mode}' mode but has no recording set.",
            "simulator_replay_miss",
        ))
    operation = prepared.operation.value
    normalized = normalize_body(_matchable_payload(prepared))
    key = match_key(request.method, operation, normalized, recording_set.ignore_fields)
    try:
        stored = await recording_index.find(config_version, recording_set.id, operation, key, deployment.name)
        observability.record_replay(stored is not None, deployment=deployment.name)
        if stored is not None:
            hit_counter.hit(stored.recording_id)
            return _replayed(stored, prepared, headers, recording_set.timing_factor, request.arrived_at)
    except InvalidRecording as problem:
        logger.warning("cannot replay: %s", problem)
        raise ApiError(500, problem.error_body()) from None
    if mode == DeploymentMode.REPLAY_OR_GENERATE:
        return await _generated(prepared, headers)
    if mode == DeploymentMode.REPLAY_OR_RECORD:
        return await _forward_and_record(request, prepared, headers)
    explanation = await recording_index.explain(
        recording_set_id=recording_set.id, recording_set=recording_set.name, operation=operation,
        deployment=deployment.name, key=key, normalized=normalized, ignore_fields=recording_set.ignore_fields,
    )
    raise ApiError(404, explanation.error_body())


async def _generated(prepared: PreparedRequest, headers: Headers) -> Answer:
    answer = prepared.generate(headers)
    return await answer if inspect.isawaitable(answer) else answer  # extension generators are coroutines


def _matchable_payload(prepared: PreparedRequest) -> dict[str, Any]:
    """The body as JSON: a multipart (audio) upload's file becomes its SHA-256 and size."""
    if prepared.operation in MULTIPART_OPERATIONS:
        return normalized_payload(prepared.payload)
    return prepared.payload


def _simulator_error(message: str, code: str = "simulator_misconfigured") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


# --- replay ---------------------------------------------------------------------------------------------


def _replayed(
    stored: StoredAnswer, prepared: PreparedRequest, headers: Headers, timing_factor: float, arrived_at: float
) -> Answer:
    """The recorded answer, timed by its recorded offsets (scaled) instead of the deployment's latency profile."""
    options = prepared.payload.get("stream_options")
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    result = replay(stored, prepared.operation.value, want_stream=prepared.stream, include_usage=include_usage,
                    timing_factor=timing_factor)
    merged = _merge_headers(headers, result.headers, limited=prepared.deployment.limit_profile is not None)
    # Deadlines count from the request's arrival, as the recorded offsets counted from the forwarded request.
    # Set even when all zero (timing_factor 0): a timed answer is one the latency profile leaves alone.
    start = arrived_at or time.monotonic()
    if isinstance(result, ReplayedJson):
        return JsonAnswer(result.status, result.body, merged, stored.completion_tokens,
                          deliver_at=start + result.delay_s)
    deadlines = [start + offset for offset in result.offsets_s]
    return StreamAnswer(result.status, result.frames, merged, first_token_frame=0,
                        completion_tokens=stored.completion_tokens, frame_deadlines=deadlines)


def _merge_headers(own: Headers, recorded: Headers, limited: bool) -> Headers:
    """This answer's ids and region, then the recorded headers (without rate-limit ones the limiter owns)."""
    names = {name for name, _ in own}
    merged = list(own)
    for name, value in recorded:
        if name in names or (limited and name.startswith(b"x-ratelimit-")):
            continue
        merged.append((name, value))
    return merged


# --- record ---------------------------------------------------------------------------------------------


async def _forward_and_record(request: DataPlaneRequest, prepared: PreparedRequest, headers: Headers) -> Answer:
    deployment = prepared.deployment
    chosen = await prepared.extension.upstream() if prepared.extension is not None else None
    if chosen is None and not deployment.upstream_endpoint:
        raise ApiError(502, _simulator_error(
            f"Deployment '{deployment.name}' is in '{deployment.mode}' mode but has no upstream endpoint."
        ))
    if record_hops(request.headers) >= MAX_HOPS:
        raise ApiError(508, _simulator_error(
            f"Deployment '{deployment.name}' forwards in a loop: the request already went through {MAX_HOPS} "
            "record-mode simulators. Check its upstream_endpoint (it may point at this simulator itself).",
            "simulator_forwarding_loop",
        ))
    if chosen is not None:  # an extension's forwarder chose the upstream
        target = extension_target(chosen, request.body, request.headers)
    else:
        target = build_target(
            endpoint=deployment.upstream_endpoint, key=deployment.upstream_key, path=request.path,
            query_string=request.query_string, client_headers=request.headers, body=request.body,
            model=deployment.model.name, method=request.method,
        )
    try:
        upstream = await forward(target, deployment.upstream_key)
    except UpstreamUnreachable as problem:
        logger.warning("record mode: upstream %s unreachable for %s: %s", problem.endpoint, deployment.name,
                       problem.reason)
        raise ApiError(502, problem.error_body()) from None
    answer_headers = [(name.encode("latin-1"), value.encode("latin-1", "replace")) for name, value in upstream.headers]
    if not any(name == b"x-request-id" for name, _ in answer_headers):
        answer_headers.extend(header for header in headers if header[0] == b"x-request-id")

    def save(capture: Capture) -> None:
        _save_later(request, prepared, capture)

    if upstream.stream is not None:
        upstream.stream.on_complete = save
        return StreamAnswer(upstream.status, [], answer_headers, source=upstream.stream)
    save(upstream.capture)
    # Due now: the upstream took its own time, so the deployment's latency profile adds none (shaping.py).
    return JsonAnswer(upstream.status, upstream.body, answer_headers, deliver_at=time.monotonic())


def _save_later(request: DataPlaneRequest, prepared: PreparedRequest, capture: Capture) -> None:
    """Save in a worker thread, in a task of its own: the client's answer never waits for the database."""
    deployment: DeploymentConfig = prepared.deployment
    recording_set = deployment.recording_set
    if recording_set is None:
        logger.warning("record mode: deployment %s has no recording set; answer not saved", deployment.name)
        return
    if not recordings.should_save(capture, recording_set.save_errors):
        return
    save = sync_to_async(recordings.save_recording, thread_sensitive=False)
    task = asyncio.get_running_loop().create_task(save(
        recording_set_id=recording_set.id, deployment_name=deployment.name, operation=prepared.operation.value,
        method=request.method, request_payload=_matchable_payload(prepared), capture=capture,
        save_errors=recording_set.save_errors,
    ))
    _pending_saves.add(task)
    task.add_done_callback(_saved)


def _saved(task: asyncio.Task) -> None:
    _pending_saves.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("record mode: could not save a recording", exc_info=task.exception())
