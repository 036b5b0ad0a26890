"""Serializer fields shared by every app's management API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# Names may hold '.', as in "gpt-4.1", spaces and the like; not '/', and not NUL, which PostgreSQL cannot
# compare (a lookup with it would fail in the database instead of finding nothing).
NAME_LOOKUP = r"[^/\x00]+"


def has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


class NameReferenceField(serializers.SlugRelatedField):
    """Another object, given by its name; a missing name is a field error that names it."""

    def __init__(self, what: str, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "name")
        kwargs.setdefault("error_messages", {"does_not_exist": f"No {what} named '{{value}}'."})
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if has_nul(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data).replace("\x00", "\\x00"))
        return super().to_internal_value(data)
