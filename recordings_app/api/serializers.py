"""Serializers for recording sets and recordings. Checks of content (JSON answers, stream events, headers)
and the match key come from recordings_app.services, as in admin, so a recording edited here replays the
same way as one edited there."""

from __future__ import annotations

import math
from typing import Any

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recordings_app import services
from recordings_app.formats.common import KNOWN_OPERATIONS
from recordings_app.models import Recording, RecordingSet
from simulator_project.api.fields import NameReferenceField

MAX_TIMING_FACTOR = 1000.0
MAX_BULK_IDS = 10_000


class RecordingSetSerializer(serializers.ModelSerializer):
    ignore_fields = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=200,
        help_text="Request body fields left out of matching (e.g. stream, user, seed). Changing them re-keys "
        "the set's recordings.",
    )
    recording_count = serializers.SerializerMethodField(help_text="How many recordings the set holds.")

    class Meta:
        model = RecordingSet
        fields = (
            "name", "description", "ignore_fields", "timing_factor", "save_errors", "recording_count",
            "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {"timing_factor": {"min_value": 0.0, "max_value": MAX_TIMING_FACTOR}}

    @extend_schema_field(OpenApiTypes.INT)
    def get_recording_count(self, recording_set: RecordingSet) -> int:
        # The list annotates the count in one query; a freshly created or updated set counts its own.
        annotated = getattr(recording_set, "recording_count", None)
        return annotated if annotated is not None else recording_set.recordings.count()

    def validate_name(self, name: str) -> str:
        # A set is addressed by name in URLs (/api/recording-sets/<name>/), so a name cannot hold '/'.
        if "/" in name:
            raise serializers.ValidationError("A name cannot contain '/'.")
        return name


class RecordingListSerializer(serializers.ModelSerializer):
    """A row of the list: what identifies and filters a recording, without its (possibly large) bodies."""

    recording_set = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Recording
        fields = (
            "id", "recording_set", "deployment_name", "operation", "status", "is_stream", "enabled",
            "hit_count", "last_hit_at", "created_at", "updated_at",
        )
        read_only_fields = fields


def storable_json_problem(value: Any, where: str = "the value") -> str | None:
    """Why a JSON value cannot be stored in every database we support (PostgreSQL jsonb refuses NUL characters
    and JSON has no infinity, which Python reads from 1e999), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} holds a number too large to store"
    if isinstance(value, str) and "\x00" in value:
        return f"{where} holds a NUL character"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = storable_json_problem(key, where) or storable_json_problem(item, where)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = storable_json_problem(item, where)
            if problem:
                return problem
    return None


def _storable(value: Any, where: str) -> Any:
    problem = storable_json_problem(value, where)
    if problem:
        raise serializers.ValidationError(problem[0].upper() + problem[1:] + ".")
    return value


def _content(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except services.InvalidContent as problem:
        raise serializers.ValidationError(str(problem)) from None


class RecordingSerializer(serializers.ModelSerializer):
    recording_set = NameReferenceField(
        "recording set", queryset=RecordingSet.objects.all(),
        help_text="The set's name. Changing it moves the recording (re-keyed with that set's ignored fields).",
    )
    operation = serializers.ChoiceField(choices=sorted(KNOWN_OPERATIONS))
    request_body = serializers.DictField(
        help_text="The request this recording answers (a JSON object; stored normalized). Editing it changes "
        "which requests match.",
    )
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=8192), required=False,
        help_text="Answer headers. Credentials are refused and hop-by-hop headers dropped.",
    )
    body = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        help_text="The answer's JSON text. Must be valid JSON; empty for a stream recording.",
    )
    stream_events = serializers.ListField(
        child=serializers.DictField(), required=False,
        help_text='Stream recordings: [{"offset_ms": 0, "data": "{...}"}, ...] in time order; data is JSON or '
        "[DONE].",
    )

    class Meta:
        model = Recording
        fields = (
            "id", "recording_set", "deployment_name", "operation", "match_key", "request_body", "status",
            "headers", "body", "is_stream", "stream_events", "duration_ms", "enabled", "hit_count",
            "last_hit_at", "created_at", "updated_at",
        )
        read_only_fields = ("id", "match_key", "hit_count", "last_hit_at", "created_at", "updated_at")
        extra_kwargs = {
            "status": {"min_value": 100, "max_value": 599},
            "duration_ms": {"min_value": 0.0, "max_value": 86_400_000.0},
        }

    def validate_request_body(self, value: dict[str, Any]) -> dict[str, Any]:
        return services.normalize_request(_storable(value, "the request body"))

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        return _content(services.clean_headers, _storable(value, "the headers"))

    def validate_stream_events(self, value: list[Any]) -> list[dict[str, Any]]:
        return _content(services.validate_stream_events, _storable(value, "the stream events"))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A partial update is checked together with what it leaves as it is.
        def current(name: str, default: Any) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name) if self.instance is not None else default

        is_stream = current("is_stream", False)
        body = current("body", "")
        errors: dict[str, str] = {}
        if ("body" in attrs or "is_stream" in attrs) and not (is_stream and body == ""):
            try:
                services.parse_json_text(body, "the body")
                orjson.loads(body)  # strict: NaN and Infinity are not JSON, and clients would refuse them
            except services.InvalidContent as problem:
                errors["body"] = str(problem)
            except orjson.JSONDecodeError:
                errors["body"] = "the body is not valid JSON: NaN and Infinity are not JSON numbers"
        if ("stream_events" in attrs or "is_stream" in attrs) and is_stream and not current("stream_events", []):
            errors["stream_events"] = "A stream recording needs its events."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Recording:
        recording = Recording(**validated_data)
        services.refresh_key(recording)
        recording.save()
        return recording

    def update(self, instance: Recording, validated_data: dict[str, Any]) -> Recording:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        services.refresh_key(instance)  # the set or the request may have changed
        instance.save()
        return instance


MAX_ID = 2**63 - 1  # a 64-bit primary key; larger numbers are no recording's id and overflow SQLite


class RecordingIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1,
                                max_length=MAX_BULK_IDS)


class SetEnabledSerializer(RecordingIdsSerializer):
    enabled = serializers.BooleanField()


class MoveRecordingsSerializer(RecordingIdsSerializer):
    recording_set = NameReferenceField("recording set", queryset=RecordingSet.objects.all())


class BulkResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many recordings changed (ids that do not exist are skipped).")
