"""How a request finds its recording: the normalized body, the match key, and the explanation of a miss.

A request matches a recording when the method, the operation and the *matching view* of the body are
equal. The matching view is the normalized body without the recording set's ignored fields and without
``model`` (the deployment the request addresses says which model it is). Normalizing makes key order
irrelevant and renames tool-call ids (``call_abc…`` -> ``call_0``), which differ on every real run.

The stored ``request_body`` of a recording is the normalized body *with* the ignored fields kept, so that
changing a set's ignored fields re-keys its recordings without losing anything (services.rekey_set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# Never part of the match: on the v1 surfaces it is the deployment name, on the deployment routes the path
# names the deployment already.
ALWAYS_IGNORED = frozenset({"model"})
NEAREST_LIMIT = 3
FIELDS_SHOWN = 8

_CALL_ID_KEYS = ("tool_call_id", "call_id")


def normalize_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The body as stored: tool-call ids renamed in order of first appearance, everything else kept."""
    renames: dict[str, str] = {}

    def rename(call_id: Any) -> Any:
        if not isinstance(call_id, str):
            return call_id
        if call_id not in renames:
            renames[call_id] = f"call_{len(renames)}"
        return renames[call_id]

    def walk(value: Any, inside_tool_calls: bool = False) -> Any:
        if isinstance(value, Mapping):
            out = {}
            is_function_call_item = value.get("type") == "function_call"
            for key, item in value.items():
                if key in _CALL_ID_KEYS or (key == "id" and (inside_tool_calls or is_function_call_item)):
                    out[key] = rename(item)
                else:
                    out[key] = walk(item, inside_tool_calls=key == "tool_calls")
            return out
        if isinstance(value, list):
            return [walk(item, inside_tool_calls) for item in value]
        return value

    return walk(payload)


def matching_view(normalized: Mapping[str, Any], ignore_fields: Iterable[str]) -> dict[str, Any]:
    """The part of a normalized body that must be equal for a match."""
    dropped = ALWAYS_IGNORED | frozenset(ignore_fields)
    return {key: value for key, value in normalized.items() if key not in dropped}


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def match_key(method: str, operation: str, normalized: Mapping[str, Any], ignore_fields: Iterable[str]) -> str:
    """The key a recording is found by: SHA-256 of method, operation and the canonical matching view."""
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\n")
    digest.update(operation.encode())
    digest.update(b"\n")
    digest.update(canonical_json(matching_view(normalized, ignore_fields)))
    return digest.hexdigest()


# --- explaining a miss ----------------------------------------------------------------------------------


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _leaves(item, f"{path}[{index}]", out)
    else:
        out[path] = value


def flatten(value: Mapping[str, Any]) -> dict[str, Any]:
    """``{"messages": [{"content": "x"}]}`` -> ``{"messages[0].content": "x"}``."""
    out: dict[str, Any] = {}
    _leaves(value, "", out)
    return out


def differing_fields(request_view: Mapping[str, Any], recorded_view: Mapping[str, Any]) -> list[str]:
    """The field paths whose values differ, or that only one side has, in a stable order."""
    left, right = flatten(request_view), flatten(recorded_view)
    paths = [path for path in left if path not in right or right[path] != left[path]]
    paths.extend(path for path in right if path not in left)
    return paths


@dataclass(frozen=True, slots=True)
class Candidate:
    """A recording considered when explaining a miss."""

    recording_id: int
    deployment_name: str
    request_body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NearMiss:
    recording_id: int
    deployment_name: str
    differing_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MissExplanation:
    recording_set: str
    operation: str
    deployment_name: str
    key: str
    ignored_fields: tuple[str, ...]
    candidates_seen: int
    nearest: tuple[NearMiss, ...]

    def message(self) -> str:
        head = (
            f"Simulator replay miss: no enabled recording in set '{self.recording_set}' matches this "
            f"{self.operation} request for deployment '{self.deployment_name}'."
        )
        if not self.nearest:
            return f"{head} The set holds no enabled {self.operation} recordings."
        parts = []
        for near in self.nearest:
            who = f"recording {near.recording_id} ({near.deployment_name})"
            if not near.differing_fields:  # equal bodies, different keys: stored before an ignore change
                parts.append(f"{who} has an equal body but an outdated key (save it in admin to re-key it)")
                continue
            shown = list(near.differing_fields[:FIELDS_SHOWN])
            more = len(near.differing_fields) - len(shown)
            fields = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
            parts.append(f"{who} differs in {fields}")
        return f"{head} Nearest: " + "; ".join(parts) + "."

    def error_body(self) -> dict[str, Any]:
        """The 404 body, in OpenAI's error shape, with the details machine-readable under ``simulator``."""
        return {
            "error": {
                "message": self.message(),
                "type": "invalid_request_error",
                "param": None,
                "code": "simulator_replay_miss",
                "simulator": {
                    "recording_set": self.recording_set,
                    "operation": self.operation,
                    "deployment": self.deployment_name,
                    "match_key": self.key,
                    "ignored_fields": list(self.ignored_fields),
                    "candidates": self.candidates_seen,
                    "nearest": [
                        {
                            "recording_id": near.recording_id,
                            "deployment": near.deployment_name,
                            "differing_fields": list(near.differing_fields),
                        }
                        for near in self.nearest
                    ],
                },
            }
        }


def explain_miss(
    *,
    recording_set: str,
    operation: str,
    deployment_name: str,
    key: str,
    normalized: Mapping[str, Any],
    ignore_fields: Iterable[str],
    candidates: Iterable[Candidate],
) -> MissExplanation:
    """Rank the candidates by how few fields differ (same deployment first on a tie)."""
    ignored = frozenset(ignore_fields)
    request_view = matching_view(normalized, ignored)
    ranked: list[tuple[int, bool, int, NearMiss]] = []
    seen = 0
    for candidate in candidates:
        seen += 1
        recorded_view = matching_view(candidate.request_body, ignored)
        fields = tuple(differing_fields(request_view, recorded_view))
        near = NearMiss(candidate.recording_id, candidate.deployment_name, fields)
        ranked.append((len(fields), candidate.deployment_name != deployment_name, -candidate.recording_id, near))
    ranked.sort(key=lambda entry: entry[:3])
    return MissExplanation(
        recording_set=recording_set,
        operation=operation,
        deployment_name=deployment_name,
        key=key,
        ignored_fields=tuple(sorted(ignored | ALWAYS_IGNORED)),
        candidates_seen=seen,
        nearest=tuple(entry[3] for entry in ranked[:NEAREST_LIMIT]),
    )
