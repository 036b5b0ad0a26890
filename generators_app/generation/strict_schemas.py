"""The structural rules of strict mode (`strict: true` on a response format or a function), checked the way the
real service checks them, so that a schema the service would refuse is refused here too, with its message.

The rules: the root is an object; every object sets `additionalProperties: false` and lists every property
in `required`. The service reports the first violation with the path to it as a Python tuple
(`In context=('properties', 'address'), ...`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["strict_schema_problem"]

_MAX_DEPTH = 64


def strict_schema_problem(schema: Any) -> str | None:
    """What is wrong with `schema` for strict mode, worded as the service words it, or None."""
    if not isinstance(schema, dict):
        return "schema must be a JSON Schema object."
    kind = schema.get("type")
    if kind != "object":
        shown = kind if isinstance(kind, str) else ("None" if kind is None else str(kind))
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{shown}\"'."
    return _check(schema, (), 0)


def _is_object(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _check(schema: Any, path: tuple[str, ...], depth: int) -> str | None:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if _is_object(schema):
        if schema.get("additionalProperties") is not False:
            return f"In context={path!r}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        missing = [key for key in properties if key not in required]
        if missing:
            return (
                f"In context={path!r}, 'required' is required to be supplied and to be an array including every "
                f"key in properties. Missing '{missing[0]}'."
            )
        for key, sub in properties.items():
            problem = _check(sub, (*path, "properties", key), depth + 1)
            if problem:
                return problem
    for keyword in ("$defs", "definitions"):
        definitions = schema.get(keyword)
        if isinstance(definitions, dict):
            for key, sub in definitions.items():
                problem = _check(sub, (*path, keyword, key), depth + 1)
                if problem:
                    return problem
    items = schema.get("items")
    if isinstance(items, dict):
        problem = _check(items, (*path, "items"), depth + 1)
        if problem:
            return problem
    for keyword in ("anyOf", "prefixItems"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            for index, sub in enumerate(branches):
                problem = _check(sub, (*path, keyword, str(index)), depth + 1)
                if problem:
                    return problem
    return None
