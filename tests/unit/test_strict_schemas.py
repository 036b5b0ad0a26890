"""Strict mode's structural rules, refused with the real service's wording."""

from __future__ import annotations

from typing import Any

import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

from generators_app.generation.strict_schemas import strict_schema_problem


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    address: Address | None
    friends: list[Address]


def test_what_the_sdk_sends_for_pydantic_models_is_accepted() -> None:
    assert strict_schema_problem(to_strict_json_schema(Person)) is None


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array", "items": {"type": "string"}},
         "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
         "In context=(), 'additionalProperties' is required to be supplied and to be false."),
        ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False},
         "In context=(), 'required' is required to be supplied and to be an array including every key in "
         "properties. Missing 'b'."),
        ({"type": "object", "additionalProperties": False, "required": ["home"], "properties": {
            "home": {"type": "object", "properties": {"zip": {"type": "string"}}, "required": ["zip"]}}},
         "In context=('properties', 'home'), 'additionalProperties' is required to be supplied and to be false."),
        ({"type": "object", "additionalProperties": False, "required": ["x"],
          "properties": {"x": {"$ref": "#/$defs/X"}},
          "$defs": {"X": {"type": "object", "properties": {"y": {"type": "string"}}, "additionalProperties": False}}},
         "In context=('$defs', 'X'), 'required' is required to be supplied and to be an array including every key "
         "in properties. Missing 'y'."),
        ({"type": "object", "additionalProperties": False, "required": ["l"], "properties": {"l": {
            "type": "array", "items": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {}}]}}}},
         "In context=('properties', 'l', 'items', 'anyOf', '1'), 'additionalProperties' is required to be supplied "
         "and to be false."),
    ],
)
def test_violations_are_reported_with_their_context(schema: dict[str, Any], message: str) -> None:
    assert strict_schema_problem(schema) == message
