"""Serializers for the traffic-shaping profiles. Field ranges come from the models; the rules that tie
fields together come from limits_app.validation."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers

from limits_app.faults import parse_term
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from limits_app.validation import MAX_LATENCY_MS, latency_problems

_MAX_WAIT_MS = int(MAX_LATENCY_MS)


# PostgreSQL's integer columns stop here while SQLite's do not: one limit, whatever the database.
MAX_INTEGER = 2**31 - 1


class NamedSerializer(serializers.ModelSerializer):
    def build_standard_field(self, field_name: str, model_field: Any) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.IntegerField):
            kwargs["max_value"] = min(kwargs.get("max_value", MAX_INTEGER), MAX_INTEGER)
        return field_class, kwargs

    def validate_name(self, name: str) -> str:
        # A profile is addressed by name in URLs (/api/limit-profiles/<name>/), so a name cannot hold '/'.
        if "/" in name:
            raise serializers.ValidationError("A name cannot contain '/'.")
        return name


class LimitProfileSerializer(NamedSerializer):
    effective_requests_per_minute = serializers.IntegerField(
        read_only=True, help_text="requests_per_minute, or 6 per 1000 TPM when that is null (AOAI's ratio)."
    )

    class Meta:
        model = LimitProfile
        fields = (
            "name", "tokens_per_minute", "requests_per_minute", "effective_requests_per_minute", "request_window_s",
            "default_max_tokens", "on_limit", "queue_max_wait_ms", "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {"queue_max_wait_ms": {"max_value": _MAX_WAIT_MS}}


class LatencyProfileSerializer(NamedSerializer):
    class Meta:
        model = LatencyProfile
        fields = (
            "name", "ttft_mean_ms", "ttft_std_ms", "itl_mean_ms", "itl_std_ms", "request_mean_ms", "request_std_ms",
            "per_input_token_ms", "inflight_growth", "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A partial update is checked together with the values it leaves as they are.
        merged = {field: getattr(self.instance, field) for field in self.Meta.fields} if self.instance else {}
        merged.update(attrs)
        problems = latency_problems(merged)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class FaultProfileSerializer(NamedSerializer):
    content_filter_terms = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=1000,
        help_text="A prompt containing a term (any case) is refused with 400 content_filter; 'completion:term' "
        "filters the answer instead; 'violence:term', 'self_harm:term', ... name the category reported.",
    )

    class Meta:
        model = FaultProfile
        fields = (
            "name", "error_rate", "kinds", "timeout_ms", "fail_first", "content_filter_terms",
            "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {"timeout_ms": {"max_value": _MAX_WAIT_MS}}

    def validate_content_filter_terms(self, terms: list[str]) -> list[str]:
        for term in terms:
            try:
                parse_term(term)  # the same reading the data plane does
            except ValueError as problem:
                raise serializers.ValidationError(str(problem)) from None
        return terms

    def validate_kinds(self, kinds: Any) -> Any:
        # JSON reads 1e999 as infinity, which no database stores and no weighted choice can use.
        if isinstance(kinds, dict) and any(
            isinstance(weight, float) and not math.isfinite(weight) for weight in kinds.values()
        ):
            raise serializers.ValidationError("Weights must be finite numbers.")
        return kinds


class LimiterStateSerializer(serializers.Serializer):
    """A deployment's use of its limits right now (limits_app.services.LimiterState)."""

    deployment = serializers.CharField()
    profile = serializers.CharField(help_text="The limit profile the deployment is limited by.")
    backend = serializers.ChoiceField(
        choices=["redis", "memory"],
        help_text="redis: the state every process shares. memory: this worker process's own state (no REDIS_URL, "
        "or Redis unreachable); with several workers it is one worker's share.",
    )
    tokens_per_minute = serializers.IntegerField()
    requests_per_minute = serializers.IntegerField()
    request_window_s = serializers.IntegerField()
    window_request_limit = serializers.IntegerField(help_text="Requests admitted per request window.")
    tokens_used = serializers.IntegerField(help_text="Over the last minute (estimates counted at arrival).")
    requests_used = serializers.IntegerField(help_text="Over the last minute.")
    window_requests_used = serializers.IntegerField(help_text="Over the last request window.")
    remaining_tokens = serializers.IntegerField()
    remaining_requests = serializers.IntegerField()


class ResetDeploymentsSerializer(serializers.Serializer):
    deployments = serializers.ListField(child=serializers.CharField(), help_text="The deployments reset.")


class ResetFaultProfileSerializer(serializers.Serializer):
    profile = serializers.CharField()
    deployments = serializers.ListField(
        child=serializers.CharField(), help_text="The deployments whose fail-first count starts again."
    )
