"""Helpers over the ground truth copied into ``tests/reference/``.

The simulator is only useful if its answers look like the real service's, so the tests compare our
answers against two kinds of evidence kept in the repository (never read from ``../shared`` at test
time, so a fresh clone is self-contained):

* real Azure OpenAI traffic recorded with vcr.py (``tests/reference/aoai-recordings/*.yaml``);
* the published Azure OpenAI inference spec, 2024-10-21 GA
  (``tests/reference/specs/azure-openai-inference-stable-2024-10-21.json``, OpenAPI 3.0).

The recordings are newer than the spec and carry fields the spec does not know (``obfuscation``,
``annotations`` ...). Since no schema in the spec sets ``additionalProperties: false`` those extras pass;
the few places where real traffic really contradicts the spec are listed in ``KNOWN_SPEC_DISCREPANCIES``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema.exceptions import ValidationError, best_match
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"
RECORDINGS_DIR = REFERENCE_DIR / "aoai-recordings"
SPEC_PATH = REFERENCE_DIR / "specs" / "azure-openai-inference-stable-2024-10-21.json"

# Names under components.schemas of the 2024-10-21 spec, for the answers the simulator produces.
CHAT_COMPLETION_RESPONSE = "createChatCompletionResponse"
CHAT_COMPLETION_CHUNK = "createChatCompletionStreamResponse"
COMPLETION_RESPONSE = "createCompletionResponse"  # the spec uses the same shape for stream chunks
ERROR_RESPONSE = "errorResponse"
IMAGES_RESPONSE = "generateImagesResponse"
# The embeddings answer has no component of its own: its schema is written inline in the path, so it is
# addressed with a JSON pointer into the spec (validate_against_spec accepts either form).
EMBEDDINGS_RESPONSE = (
    "#/paths/~1deployments~1{deployment-id}~1embeddings/post/responses/200/content/application~1json/schema"
)

_SPEC_URI = "urn:aoai-spec:2024-10-21"

# Where recorded Azure traffic (Nov 2025) is rejected by the 2024-10-21 spec. Keys are
# (recording, schema); values say why. The unit tests assert these stay exactly the rejections seen,
# so a simulator that copies the real service knows which spec checks to relax.
KNOWN_SPEC_DISCREPANCIES: dict[tuple[str, str], str] = {
    ("basic-chat-stream", CHAT_COMPLETION_CHUNK): (
        "Azure's first chunk carries only prompt_filter_results, with object '' (the spec's enum only "
        "allows 'chat.completion.chunk'), model '' and created 0"
    ),
    ("max-tokens-chat-stream", CHAT_COMPLETION_CHUNK): "same leading prompt_filter_results chunk, object ''",
    ("tools-chat-stream", CHAT_COMPLETION_CHUNK): "same leading prompt_filter_results chunk, object ''",
    ("refusal-chat-sync", ERROR_RESPONSE): (
        "error.type is null (spec: string, not nullable); the recording also uses 'innererror' and "
        "'content_filter_result' where the spec says 'inner_error' / 'content_filter_results', and an "
        "undocumented integer 'status' (extra keys pass, the spec forbids none)"
    ),
    ("refusal-chat-stream", ERROR_RESPONSE): "same 400 content_filter body as refusal-chat-sync",
}


# --------------------------------------------------------------------------------------------------------
# Cassettes


@dataclass(frozen=True)
class RecordedRequest:
    """The request half of a recorded interaction; ``body`` is parsed JSON when it is JSON."""

    method: str
    uri: str
    headers: dict[str, str]
    body: Any

    @property
    def path(self) -> str:
        """Path plus query string, so a test can replay the request against our own base URL."""
        parts = urlsplit(self.uri)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class RecordedResponse:
    """The response half: ``headers`` keys are lower-cased, each with its first value only.

    ``body`` is parsed JSON for JSON answers and a list of SSE events (see ``parse_sse``) for
    ``text/event-stream`` answers; ``raw`` keeps the exact recorded text.
    """

    status: int
    headers: dict[str, str]
    body: Any
    raw: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def is_stream(self) -> bool:
        return self.content_type.startswith("text/event-stream")


@dataclass(frozen=True)
class Interaction:
    request: RecordedRequest
    response: RecordedResponse
    name: str = field(default="")


def _first_values(headers: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        first = value[0] if isinstance(value, list) and value else value
        out[str(key).lower()] = "" if first is None else str(first)
    return out


def _as_text(body: Any) -> str:
    """vcr.py stores bodies as a plain string, ``{"string": ...}`` or ``!!binary`` bytes."""
    if isinstance(body, Mapping):
        body = body.get("string")
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8")
    return str(body)


def _maybe_json(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_cassette(name: str) -> list[Interaction]:
    """Load ``tests/reference/aoai-recordings/NAME.yaml`` (``.yaml`` optional) as parsed interactions."""
    stem = name.removesuffix(".yaml")
    path = RECORDINGS_DIR / f"{stem}.yaml"
    if not path.is_file():
        available = ", ".join(cassette_names())
        raise FileNotFoundError(f"no cassette {stem!r} in {RECORDINGS_DIR} (available: {available})")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    interactions: list[Interaction] = []
    for item in document.get("interactions", []):
        req, resp = item["request"], item["response"]
        request = RecordedRequest(
            method=str(req["method"]).upper(),
            uri=str(req["uri"]),
            headers=_first_values(req.get("headers")),
            body=_maybe_json(_as_text(req.get("body"))),
        )
        raw = _as_text(resp.get("body"))
        headers = _first_values(resp.get("headers"))
        is_stream = headers.get("content-type", "").startswith("text/event-stream")
        response = RecordedResponse(
            status=int(resp["status"]["code"]),
            headers=headers,
            body=parse_sse(raw) if is_stream else _maybe_json(raw),
            raw=raw,
        )
        interactions.append(Interaction(request=request, response=response, name=stem))
    return interactions


def cassette_names() -> list[str]:
    """Every recording's name, sorted, so tests can parametrize over all of them."""
    return sorted(p.stem for p in RECORDINGS_DIR.glob("*.yaml"))


# --------------------------------------------------------------------------------------------------------
# Server-sent events


def parse_sse(text: str, *, allow_unterminated: bool = False) -> list[dict[str, Any]]:
    """Parse an SSE body into ``[{"event": name_or_None, "data": parsed_json_or_"[DONE]"}, ...]``.

    Follows the WHATWG event-stream rules (CRLF/LF/CR line ends, ``:`` comments, multi-line ``data``,
    one optional space after the colon, events without data are dropped) because that is what the
    OpenAI SDKs implement; a server that frames events differently must fail here, not in a client.
    A stream that ends without the blank line closing its last event is an error unless
    ``allow_unterminated``: real clients would silently drop that event.
    """
    events: list[dict[str, Any]] = []
    event_name: str | None = None
    data_lines: list[str] = []
    pending = False  # a field line seen since the last dispatch

    def dispatch() -> None:
        nonlocal event_name, data_lines, pending
        if data_lines:
            data = "\n".join(data_lines)
            events.append({"event": event_name, "data": _parse_sse_data(data, len(events))})
        event_name, data_lines, pending = None, [], False

    *lines, tail = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if tail:
        lines.append(tail)  # a last line with no line end: its field counts, but it closes no event
    for line in lines:
        if line == "":
            dispatch()
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        pending = True
        if name == "data":
            data_lines.append(value)
        elif name == "event":
            event_name = value
        # "id" and "retry" are legal but nothing in the OpenAI wire format depends on them.
    if pending:
        if not allow_unterminated:
            raise ValueError(f"SSE stream ends inside an event (no blank line after it): {data_lines or event_name!r}")
        dispatch()
    return events


def _parse_sse_data(data: str, index: int) -> Any:
    if data == "[DONE]":
        return data
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ValueError(f"SSE event #{index}: data is neither JSON nor [DONE]: {data[:200]!r}") from exc


# --------------------------------------------------------------------------------------------------------
# Spec validation


class SpecValidationError(AssertionError):
    """Raised by validate_against_spec; an AssertionError so pytest shows it as a plain test failure."""


@cache
def load_spec() -> dict[str, Any]:
    """The spec with OpenAPI 3.0 ``nullable`` made explicit (see ``_normalize_nullable``)."""
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return _normalize_nullable(spec)


def _normalize_nullable(node: Any) -> Any:
    """Rewrite ``nullable: true`` where the OAS 3.0 validator would otherwise still reject ``null``.

    openapi-schema-validator honours ``nullable`` only inside the ``type`` keyword, so ``null`` is still
    rejected by an ``enum`` that lacks it (e.g. a streamed ``finish_reason``) and by nullable schemas
    without a ``type`` (``oneOf`` / ``$ref`` siblings, e.g. an assistant message's ``content``). The spec
    clearly means "or null" there, so make it explicit.
    """
    if isinstance(node, list):
        return [_normalize_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _normalize_nullable(value) for key, value in node.items()}
    if out.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            rest = {key: value for key, value in out.items() if key != "nullable"}
            keep = {key: rest.pop(key) for key in ("description", "default", "example") if key in rest}
            return {**keep, "anyOf": [{"enum": [None]}, rest]}
    return out


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT4)
    return Registry().with_resource(_SPEC_URI, resource)


def spec_schema(schema_name: str) -> dict[str, Any]:
    """The (normalized) schema for a component name or a ``#/...`` JSON pointer into the spec."""
    pointer = _pointer(schema_name)
    node: Any = load_spec()
    for token in pointer.removeprefix("#/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            raise KeyError(f"{schema_name!r} is not in {SPEC_PATH.name} (no {token!r} under {pointer!r})")
        node = node[token]
    return copy.deepcopy(node)


def _pointer(schema_name: str) -> str:
    return schema_name if schema_name.startswith("#/") else f"#/components/schemas/{schema_name}"


@cache
def _validator(schema_name: str) -> Any:
    spec_schema(schema_name)  # readable KeyError for a wrong name before the validator's own
    return OAS30Validator({"$ref": f"{_SPEC_URI}{_pointer(schema_name)}"}, registry=_registry())


def spec_errors(instance: Any, schema_name: str) -> list[str]:
    """Every violation as ``"<json path>: <message>"``, sorted; empty when the instance is valid."""
    errors = list(_validator(schema_name).iter_errors(instance))
    # The OAS 3.0 "type" keyword reports a null twice ("None for not nullable" and "None is not of type");
    # keep only the second, which names the expected type.
    typed = {e.json_path for e in errors if e.validator == "type" and "is not of type" in e.message}
    return sorted({_describe(e) for e in errors if not (e.message == "None for not nullable" and e.json_path in typed)})


def _describe(error: ValidationError) -> str:
    where = error.json_path
    message = error.message
    if error.context:  # oneOf / anyOf: say which branch came closest and why it failed
        closest = best_match(error.context)
        message += f" (closest branch: {closest.json_path}: {closest.message})"
    if len(message) > 400:
        message = message[:400] + "..."
    return f"{where}: {message}"


def validate_against_spec(instance: Any, schema_name: str) -> None:
    """Raise SpecValidationError listing every violation of ``schema_name`` in the 2024-10-21 spec."""
    errors = spec_errors(instance, schema_name)
    if errors:
        listed = "\n  ".join(errors[:25])
        more = f"\n  ... and {len(errors) - 25} more" if len(errors) > 25 else ""
        raise SpecValidationError(
            f"instance does not match {schema_name} of {SPEC_PATH.name} ({len(errors)} errors):\n  {listed}{more}"
        )


# --------------------------------------------------------------------------------------------------------
# Shape comparison


def key_paths(obj: Any, prefix: str = "") -> set[str]:
    """Every key path in a JSON value: ``{"choices": [{"message": {"content": "x"}}]}`` gives
    ``{"choices", "choices[].message", "choices[].message.content"}``.

    List items are collapsed to ``[]`` so the answer does not depend on how many choices or chunks
    there are; a test asserts ``key_paths(recorded) <= key_paths(ours)`` to check that we carry every
    field the real service sends, whatever the values.
    """
    paths: set[str] = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= key_paths(value, path)
    elif isinstance(obj, list):
        for item in obj:
            paths |= key_paths(item, f"{prefix}[]")
    return paths


def union_key_paths(objs: Iterable[Any]) -> set[str]:
    """key_paths over many values, e.g. every chunk of a stream (``[DONE]`` contributes nothing)."""
    paths: set[str] = set()
    for obj in objs:
        paths |= key_paths(obj)
    return paths
