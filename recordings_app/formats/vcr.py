"""vcr.py cassettes: ``interactions: [{request: {method, uri, body, headers}, response: {status: {code},
headers, body: {string}}}]``, ``version: 1``.

The real AOAI traffic in tests/reference/aoai-recordings is in this format. A cassette keeps no timing, so
stream events get offset 0 (replay then sends them as fast as the client reads; the set's timing factor has
nothing to scale). Request headers are not kept at all (a recording is found by its body); answer headers
lose credentials and hop-by-hop ones. Interactions that are valid in a cassette but cannot replay here
(not a data-plane route, not a JSON request, a binary answer) are skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recordings_app.formats.common import (
    FieldProblem,
    RecordingData,
    Skipped,
    clean_headers,
    decode_text,
    is_json,
    json_object,
    looks_like_sse,
    operation_for_path,
    parse_sse_text,
    spread_offsets,
    stream_events,
)

FORMAT = "vcr"
SUPPORTED_VERSION = 1


def _mapping(value: Any, path: tuple[str | int, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldProblem(path, f"'{'.'.join(map(str, path))}' must be a mapping")
    return value


def _status(response: Mapping[str, Any]) -> int:
    status = response.get("status")
    code = status.get("code") if isinstance(status, Mapping) else status
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        raise FieldProblem(("response", "status", "code"), "'response.status.code' must be an HTTP status (100-599)")
    return code


def _response_body(response: Mapping[str, Any]) -> Any:
    body = response.get("body")
    if isinstance(body, Mapping):
        return body.get("string")
    return response.get("content", body)


def recording_from_interaction(
    interaction: Any, line: int, *, duration_ms: float = 0.0, deployment_hint: str | None = None
) -> RecordingData | Skipped:
    """One interaction as a recording, or why it is skipped. FieldProblem when the interaction is malformed."""
    interaction = _mapping(interaction, ())
    request = _mapping(interaction.get("request"), ("request",))
    response = _mapping(interaction.get("response"), ("response",))
    uri = request.get("uri")
    if not isinstance(uri, str) or not uri:
        raise FieldProblem(("request", "uri"), "'request.uri' must be the URL the request went to")
    status = _status(response)
    method = str(request.get("method") or "POST").upper()
    route = operation_for_path(uri)
    if route is None:
        return Skipped(line, f"{method} {uri} is not a data-plane operation the simulator replays")
    if method != "POST":
        return Skipped(line, f"{method} {uri}: only POST requests are replayed")
    operation, deployment = route
    request_text = decode_text(request.get("body"))
    if request_text is None and request.get("body") is not None:
        return Skipped(line, f"{uri}: the request body is not text (multipart uploads are not replayed)")
    payload = json_object(request_text or "")
    if payload is None:
        return Skipped(line, f"{uri}: the request body is not a JSON object (only JSON requests are matched)")
    deployment = deployment or deployment_hint or (payload.get("model") if isinstance(payload.get("model"), str)
                                                   else None)
    if not deployment:
        return Skipped(line, f"{uri}: no deployment in the path and no 'model' in the body")
    raw_headers = _mapping(response.get("headers") or {}, ("response", "headers"))
    headers = clean_headers(raw_headers)  # content-encoding goes: the stored body is decoded
    compressed = any(str(name).lower() == "content-encoding" and "gzip" in str(value).lower()
                     for name, value in raw_headers.items())
    text = decode_text(_response_body(response), compressed=compressed)
    if text is None:
        return Skipped(line, f"{uri}: the answer is binary, not text")
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/event-stream") or (not content_type and looks_like_sse(text)):
        events = parse_sse_text(text)
        if not events:
            return Skipped(line, f"{uri}: the stream answer holds no events")
        return RecordingData(
            deployment_name=deployment, operation=operation, request_body=payload, status=status, headers=headers,
            is_stream=True, stream_events=stream_events(events, spread_offsets(len(events), duration_ms)),
            duration_ms=duration_ms, method=method, line=line,
        )
    if not is_json(text):
        return Skipped(line, f"{uri}: the answer is not JSON ({content_type or 'no content type'})")
    return RecordingData(
        deployment_name=deployment, operation=operation, request_body=payload, status=status, headers=headers,
        body=text, duration_ms=duration_ms, method=method, line=line,
    )
