"""This simulator's own recording-set format: versioned, streamable, readable and hand-editable.

```yaml
format: aoai-simulator-recordings
version: 1
exported_at: "2026-01-05T10:00:00+00:00"   # informational
recording_set: {name: golden, description: "", ignore_fields: [stream, user], timing_factor: 1.0,
                save_errors: false}
recordings:
- deployment: gpt-4o-mini
  operation: chat                  # chat | completions | embeddings | responses | images | audio_*
  enabled: true
  request:
    method: POST
    body:                          # the JSON request body as nested YAML
      messages:
      - role: user
        content: What is 4200 + 42?
  response:
    status: 200
    duration_ms: 812.0
    headers:
      x-ms-region: East US
    body:                          # nested YAML, or a | literal holding the JSON text as is
      id: chatcmpl-1
- deployment: gpt-4o-mini          # a stream answer has `stream:` instead of `body:`
  ...
    stream:
    - offset_ms: 350.2
      event: response.created      # when the SSE event has a name
      data: |-
        {"type":"response.created","sequence_number":0}
    - offset_ms: 420.0
      data: "[DONE]"
```

A body that is compact JSON (what AOAI sends) is written as nested YAML and read back as compact JSON; any
other text (pretty-printed JSON) is a ``|`` literal kept byte for byte, as is every event's data. The whole
format, for users: docs/yaml-format.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from recordings_app.formats.common import KNOWN_OPERATIONS, FieldProblem, RecordingData, SetOptions, clean_headers
from recordings_app.formats.yamlwrite import after_key, block, scalar, text_after_key

FORMAT = "aoai-simulator-recordings"
VERSION = 1
MAX_TIMING_FACTOR = 1000.0

_RECORDING_KEYS = frozenset({"deployment", "operation", "enabled", "request", "response"})
_REQUEST_KEYS = frozenset({"method", "body"})
_RESPONSE_KEYS = frozenset({"status", "duration_ms", "headers", "body", "stream"})
_EVENT_KEYS = frozenset({"offset_ms", "event", "data"})
_SET_KEYS = frozenset({"name", "description", "ignore_fields", "timing_factor", "save_errors"})

Path = tuple[str | int, ...]


# --- writing --------------------------------------------------------------------------------------------


def header_text(options: SetOptions, exported_at: str) -> str:
    """Everything before the recordings, ending with the ``recordings:`` line (an empty list reads as none)."""
    head = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at,
        "recording_set": {
            "name": options.name,
            "description": options.description or "",
            "ignore_fields": list(options.ignore_fields or []),
            "timing_factor": options.timing_factor if options.timing_factor is not None else 1.0,
            "save_errors": bool(options.save_errors),
        },
    }
    return block(head) + "recordings:\n"


def _json_value(text: str, *, exact: bool) -> Any | None:
    """The parsed object/array when ``text`` is its compact JSON (exactly, or modulo surrounding whitespace)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    canonical = orjson.dumps(value).decode()
    if canonical == text or (not exact and canonical == stripped):
        return value
    return None


def _event_text(event: Mapping[str, Any]) -> str:
    out = [f"    - offset_ms: {scalar(event.get('offset_ms', 0))}\n"]
    if event.get("event"):
        out.append(f"      event: {scalar(event['event'])}\n")
    data = str(event.get("data", ""))
    # JSON data as a one-line literal, verbatim; [DONE] and anything else as a plain or quoted scalar.
    out.append("      data:" + (text_after_key(data, 6) if data.startswith(("{", "[")) else f" {scalar(data)}\n"))
    return "".join(out)


def recording_text(
    *,
    deployment_name: str,
    operation: str,
    enabled: bool,
    request_body: Any,
    status: int,
    duration_ms: float,
    headers: Mapping[str, Any],
    body: str,
    is_stream: bool,
    stream_events: list[Mapping[str, Any]],
) -> str:
    """One ``- ...`` item of the ``recordings:`` list."""
    out = [
        f"- deployment: {scalar(deployment_name)}\n",
        f"  operation: {scalar(operation)}\n",
        f"  enabled: {scalar(bool(enabled))}\n",
        "  request:\n    method: POST\n    body:", after_key(request_body, 4),
        f"  response:\n    status: {int(status)}\n    duration_ms: {scalar(float(duration_ms))}\n",
        "    headers:", after_key(dict(headers or {}), 4),
    ]
    if is_stream:
        out.append("    stream:\n" if stream_events else "    stream: []\n")
        out.extend(_event_text(event) for event in stream_events)
    else:
        value = _json_value(body or "", exact=False)
        out.append("    body:" + (after_key(value, 4) if value is not None else text_after_key(body or "", 4)))
    return "".join(out)


# --- reading --------------------------------------------------------------------------------------------


def _check_keys(value: Mapping[str, Any], allowed: frozenset[str], path: Path) -> None:
    for key in value:
        if key not in allowed:
            where = ".".join(map(str, path)) or "the recording"
            expected = ", ".join(sorted(allowed))
            raise FieldProblem((*path, key), f"unknown field '{key}' in {where} (expected: {expected})")


def _mapping(value: Any, path: Path, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldProblem(path, f"{what} must be a mapping")
    return value


def _number(value: Any, path: Path, what: str, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
        maximum is not None and value > maximum
    ):
        limit = f" and at most {maximum:g}" if maximum is not None else ""
        raise FieldProblem(path, f"{what} must be a number, at least 0{limit}")
    return float(value)


def _json_text(value: Any, path: Path, what: str, allow_done: bool = False) -> str:
    """A body or event data: nested YAML becomes compact JSON; text must already be JSON."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if not isinstance(value, str):
        raise FieldProblem(path, f"{what} must be nested YAML or JSON text")
    if allow_done and value.strip() == "[DONE]":
        return value
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise FieldProblem(path, f"{what} is not valid JSON ({exc})") from None
    return value


def read_set_options(value: Any, line: int) -> SetOptions:
    options = _mapping(value, (), "'recording_set'")
    _check_keys(options, _SET_KEYS, ())
    name = options.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 64 or "/" in name):
        raise FieldProblem(("name",), "the set's name must be text of 1 to 64 characters without '/'")
    description = options.get("description")
    if description is not None and not isinstance(description, str):
        raise FieldProblem(("description",), "the description must be text")
    ignore = options.get("ignore_fields")
    if ignore is not None and (not isinstance(ignore, list) or not all(isinstance(item, str) for item in ignore)):
        raise FieldProblem(("ignore_fields",), "ignore_fields must be a list of field names")
    factor = options.get("timing_factor")
    if factor is not None:
        factor = _number(factor, ("timing_factor",), "timing_factor", MAX_TIMING_FACTOR)
    save_errors = options.get("save_errors")
    if save_errors is not None and not isinstance(save_errors, bool):
        raise FieldProblem(("save_errors",), "save_errors must be true or false")
    return SetOptions(name=name, description=description, ignore_fields=ignore, timing_factor=factor,
                      save_errors=save_errors, line=line)


def _stream(value: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(value, list):
        raise FieldProblem(("response", "stream"), "'response.stream' must be a list of events")
    previous = 0.0
    for position, event in enumerate(value):
        path: Path = ("response", "stream", position)
        event = _mapping(event, path, f"stream event {position}")
        _check_keys(event, _EVENT_KEYS, path)
        offset = _number(event.get("offset_ms", 0), (*path, "offset_ms"), "offset_ms")
        if offset < previous:
            raise FieldProblem((*path, "offset_ms"), f"offset_ms goes back in time ({offset:g} after {previous:g})")
        previous = offset
        if "data" not in event:
            raise FieldProblem(path, f"stream event {position} has no 'data'")
        stored: dict[str, Any] = {
            "offset_ms": offset,
            "data": _json_text(event["data"], (*path, "data"), "the event's data", allow_done=True),
        }
        name = event.get("event")
        if name is not None:
            if not isinstance(name, str):
                raise FieldProblem((*path, "event"), "the event's name must be text")
            stored["event"] = name
        yield stored


def read_recording(value: Any, line: int) -> RecordingData:
    item = _mapping(value, (), "a recording")
    _check_keys(item, _RECORDING_KEYS, ())
    deployment = item.get("deployment")
    if not isinstance(deployment, str) or not deployment.strip() or len(deployment) > 64:
        raise FieldProblem(("deployment",), "'deployment' must be the deployment's name (1 to 64 characters)")
    operation = item.get("operation")
    if operation not in KNOWN_OPERATIONS:
        raise FieldProblem(("operation",), f"'operation' must be one of {', '.join(sorted(KNOWN_OPERATIONS))}")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FieldProblem(("enabled",), "'enabled' must be true or false")
    request = _mapping(item.get("request"), ("request",), "'request'")
    _check_keys(request, _REQUEST_KEYS, ("request",))
    method = request.get("method", "POST")
    if not isinstance(method, str) or not method.isalpha():
        raise FieldProblem(("request", "method"), "'request.method' must be an HTTP method such as POST")
    body = request.get("body")
    if not isinstance(body, Mapping):
        raise FieldProblem(("request", "body"), "'request.body' must be the JSON request body, as a mapping")
    response = _mapping(item.get("response"), ("response",), "'response'")
    _check_keys(response, _RESPONSE_KEYS, ("response",))
    status = response.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FieldProblem(("response", "status"), "'response.status' must be an HTTP status (100-599)")
    headers = _mapping(response.get("headers") or {}, ("response", "headers"), "'response.headers'")
    if ("body" in response) == ("stream" in response):
        raise FieldProblem(("response",), "a response has either 'body' (JSON) or 'stream' (events), not both")
    events: list[dict[str, Any]] = []
    text = ""
    if "stream" in response:
        events = list(_stream(response["stream"]))
    else:
        text = _json_text(response["body"], ("response", "body"), "'response.body'")
    default_duration = events[-1]["offset_ms"] if events else 0.0
    duration = _number(response.get("duration_ms", default_duration), ("response", "duration_ms"), "duration_ms")
    return RecordingData(
        deployment_name=deployment,
        operation=operation,
        request_body=dict(body),
        status=status,
        headers=clean_headers(_header_texts(headers)),  # a hand-added credential is dropped, as on any import
        body=text,
        is_stream="stream" in response,
        stream_events=events,
        duration_ms=duration,
        enabled=enabled,
        method=method.upper(),
        line=line,
    )


def _header_texts(headers: Mapping[str, Any]) -> dict[str, str]:
    """Header values as text; a hand-written ``true`` or ``300`` means the text, not a YAML type."""
    texts = {}
    for name, value in headers.items():
        if isinstance(value, dict | list):
            raise FieldProblem(("response", "headers", name), f"'response.headers' must map names to text ('{name}')")
        if isinstance(value, bool):
            value = "true" if value else "false"
        texts[str(name).lower()] = "" if value is None else str(value)
    return texts


def check_version(value: Any) -> None:
    if value != VERSION or isinstance(value, bool):
        raise FieldProblem((), f"unsupported version {value!r}: this simulator reads version {VERSION} of {FORMAT}")


def check_format(value: Any) -> None:
    if value != FORMAT:
        raise FieldProblem((), f"unknown format {value!r}: expected '{FORMAT}'")
