"""Generated JSON is valid against its JSON Schema: strict mode's subset always, the rest where it can be.

The schemas come from hypothesis (strict-mode shapes: objects with every property required and
`additionalProperties: false`, enums, consts, arrays with bounds, anyOf, $defs/$ref, string formats and
patterns, bounded numbers, nullable type lists) and every instance is checked with `jsonschema`.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from generators_app.generation.json_schema import SchemaError, generate_instance, reference_problem
from generators_app.generation.patterns import string_matching
from generators_app.generation.strict_schemas import strict_schema_problem

_FORMATS = ["date-time", "date", "time", "duration", "email", "hostname", "ipv4", "ipv6", "uuid", "uri"]
_PATTERNS = [r"^[A-Z]{3}-\d{4}$", r"^\+?[0-9]{7,12}$", r"^(red|green|blue)$", r"^[a-z]+(_[a-z]+)*$", r"ab+c?"]
_KEYS = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)


def _assert_valid(schema: dict[str, Any], instance: Any) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{json.dumps(instance)} is invalid: {[e.message for e in errors[:3]]} for {json.dumps(schema)}"
    assert json.loads(json.dumps(instance)) == instance  # plain JSON, nothing Python-only


@st.composite
def _integer(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    low = draw(st.one_of(st.none(), st.integers(-1000, 1000)))
    # narrow ranges too, so that an instance one past a bound is caught
    span = draw(st.one_of(st.none(), st.integers(0, 3), st.integers(0, 2000)))
    high = None if span is None else (low if low is not None else draw(st.integers(-1000, 1000))) + span
    exclusive = draw(st.booleans()) and low is not None and high is not None and high - low >= 2
    if low is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = low
    if high is not None:
        schema["exclusiveMaximum" if exclusive else "maximum"] = high
    if draw(st.booleans()) and (low is None or high is None or high - low >= 10):
        schema["multipleOf"] = draw(st.sampled_from([2, 3, 5, 10]))
    return schema


@st.composite
def _number(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    low = draw(st.one_of(st.none(), st.floats(-1e4, 1e4, allow_nan=False)))
    span = draw(st.one_of(st.none(), st.floats(0, 2), st.floats(0, 2e4)))
    high = None if span is None else (low if low is not None else draw(st.floats(-1e4, 1e4))) + span
    exclusive = draw(st.booleans()) and low is not None and high is not None and high - low > 1
    if low is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = low
    if high is not None:
        schema["exclusiveMaximum" if exclusive else "maximum"] = high
    if draw(st.booleans()) and (low is None or high is None or high - low >= 5):
        schema["multipleOf"] = draw(st.sampled_from([0.5, 0.25, 0.1, 0.01, 1.5]))
    return schema


_SCALARS = st.one_of(
    st.just({"type": "string"}),
    st.sampled_from(_FORMATS).map(lambda fmt: {"type": "string", "format": fmt}),
    st.sampled_from(_PATTERNS).map(lambda pattern: {"type": "string", "pattern": pattern}),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5, unique=True).map(
        lambda values: {"type": "string", "enum": values}),
    st.one_of(st.text(max_size=10), st.integers(), st.booleans()).map(lambda value: {"const": value}),
    _integer(),
    _number(),
    st.just({"type": "boolean"}),
    st.sampled_from(["string", "integer", "number", "boolean"]).map(lambda kind: {"type": [kind, "null"]}),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(_KEYS, children, max_size=4).map(
        lambda props: {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
    )

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": draw(children)}
        low = draw(st.one_of(st.none(), st.integers(0, 4)))
        high = draw(st.one_of(st.none(), st.integers(low or 0, 6)))
        if low is not None:
            schema["minItems"] = low
        if high is not None:
            schema["maxItems"] = high
        return schema

    any_of = st.lists(children, min_size=2, max_size=3).map(lambda branches: {"anyOf": branches})
    nullable_object = objects.map(lambda obj: {**obj, "type": ["object", "null"]})
    return st.one_of(objects, arrays(), any_of, nullable_object)


_STRICT_VALUES = st.recursive(_SCALARS, _extend, max_leaves=12)


@st.composite
def strict_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A root object, optionally with $defs that its properties (and the definitions themselves) refer to."""
    definitions = draw(st.dictionaries(_KEYS, _STRICT_VALUES, max_size=3))
    refs = [st.just({"$ref": f"#/$defs/{name}"}) for name in definitions]
    values = st.one_of(_STRICT_VALUES, *refs) if refs else _STRICT_VALUES
    properties = draw(st.dictionaries(_KEYS, values, min_size=1, max_size=6))
    schema: dict[str, Any] = {
        "type": "object", "properties": properties, "required": list(properties), "additionalProperties": False,
    }
    if definitions:
        schema["$defs"] = definitions
    return schema


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=strict_schemas(), seed=st.integers(0, 2**32))
def test_hypothesis_strict_schemas_all_produce_valid_instances(schema: dict[str, Any], seed: int) -> None:
    assert strict_schema_problem(schema) is None  # the generated schemas are strict-mode schemas
    _assert_valid(schema, generate_instance(schema, random.Random(seed)))


_NODE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        "parent": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
    },
    "required": ["name", "children", "parent"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", range(40))
def test_recursive_definitions_terminate_and_validate(seed: int) -> None:
    schema = {"$defs": {"node": _NODE}, "type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
              "required": ["root"], "additionalProperties": False}
    _assert_valid(schema, generate_instance(schema, random.Random(seed)))
    # `#` refers to the root itself (a linked list), as pydantic writes self-referencing models
    linked = {"type": "object", "properties": {"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"},
              {"type": "null"}]}}, "required": ["value", "next"], "additionalProperties": False}
    _assert_valid(linked, generate_instance(linked, random.Random(seed)))


_NON_STRICT = [
    {"type": "string", "minLength": 30, "maxLength": 40},
    {"type": "string", "maxLength": 3},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"type": "string", "format": "email"}}, "required": ["b"]}]},
    {"oneOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
    {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "maxItems": 3, "uniqueItems": True},
    {"type": "object", "additionalProperties": {"type": "number"}, "minProperties": 2},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False, "minItems": 2},
    {"properties": {"x": {"type": "integer", "minimum": 5, "exclusiveMaximum": 7}}, "required": ["x"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
    {"definitions": {"p": {"type": "string", "enum": ["a", "b"]}}, "type": "array",
     "items": {"$ref": "#/definitions/p"}},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"}}, "required": ["when"]},
    True,
    {},
]


@pytest.mark.parametrize("schema", _NON_STRICT, ids=[json.dumps(s)[:50] for s in _NON_STRICT])
def test_beyond_strict_mode_best_effort_is_still_valid_for_common_keywords(schema: Any) -> None:
    for seed in range(25):
        _assert_valid(schema if isinstance(schema, dict) else {}, generate_instance(schema, random.Random(seed)))


def test_same_seed_same_instance_and_names_shape_values() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "email": {"type": "string"},
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "email", "unit"],
              "additionalProperties": False}
    first = generate_instance(schema, random.Random(5))
    assert first == generate_instance(schema, random.Random(5))
    assert "@" in first["email"]
    assert first["city"][0].isupper()
    assert len({json.dumps(generate_instance(schema, random.Random(seed))) for seed in range(20)}) > 5


def test_unresolvable_reference_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        generate_instance({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]},
                          random.Random(1))
    with pytest.raises(SchemaError):
        generate_instance({"$ref": "https://example.com/schema.json"}, random.Random(1))


@pytest.mark.parametrize("pattern", [*_PATTERNS, r"^\d{2}:\d{2}$", r"[^a-z]{3}", r"(ab|cd){2,}x*", r"^\w+@\w+\.com$"])
def test_pattern_strings_match(pattern: str) -> None:
    import re

    for seed in range(20):
        text = string_matching(pattern, random.Random(seed))
        assert text is not None and re.search(pattern, text), (pattern, text)


def test_unusable_patterns_fall_back_to_none() -> None:
    assert string_matching(r"\p{L}+", random.Random(1)) is None  # ECMA unicode classes do not parse in Python
    assert string_matching(r"^(?!x)x$", random.Random(1)) is None  # unsatisfiable lookahead


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["object", "array", "string", "integer", "#", "#/$defs/a"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "properties", "items", "required", "enum", "const", "anyOf", "allOf", "oneOf",
                         "$ref", "$defs", "minItems", "maxItems", "minLength", "pattern", "format", "minimum",
                         "multipleOf", "additionalProperties", "prefixItems", "a", "uniqueItems", "maximum",
                         "exclusiveMinimum", "exclusiveMaximum", "maxLength", "minProperties", "maxProperties",
                         "additionalItems", "definitions"]),
        children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_JSON, seed=st.integers(0, 2**16))
def test_any_json_as_a_schema_gives_a_value_or_is_refused_up_front(schema: Any, seed: int) -> None:
    """Whatever a client sends as a schema: the up-front check refuses it, or generation gives JSON."""
    if reference_problem(schema) is not None:
        return
    json.dumps(generate_instance(schema, random.Random(seed)))


def test_schemas_that_multiply_stay_small_and_cycles_are_errors() -> None:
    wide = {"type": "object", "required": [f"p{i}" for i in range(8)], "additionalProperties": False,
            "properties": {f"p{i}": {"type": "array", "minItems": 3, "items": {"$ref": "#"}} for i in range(8)}}
    assert len(json.dumps(generate_instance(wide, random.Random(1)))) < 2_000_000
    cycle = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    assert reference_problem(cycle) is not None
    with pytest.raises(SchemaError):
        generate_instance(cycle, random.Random(1))
    self_merging = {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}
    assert reference_problem(self_merging) is None
    json.dumps(generate_instance(self_merging, random.Random(1)))
    optional_remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    assert "local references" in (reference_problem(optional_remote) or "")
