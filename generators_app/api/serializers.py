"""Serializers for deployments and data-plane keys. Field checks live here; whole-object rules stay in
the model's clean() (run by the services), so admin, the config file and the API share them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from generators_app import services
from generators_app.catalogue import MODELS
from generators_app.models import ApiKey, Deployment
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from recordings_app.models import RecordingSet
from simulator_project.api.fields import NameReferenceField

MAX_INTEGER = 2**31 - 1
_UNKNOWN_MODEL = 'Unknown model "{input}". Known models: ' + ", ".join(MODELS) + "."


def _profile_field(queryset: Any, what: str) -> NameReferenceField:
    return NameReferenceField(what, queryset=queryset, required=False, allow_null=True,
                              help_text=f"The {what}'s name, or null for none.")


class DeploymentSerializer(serializers.ModelSerializer):
    limit_profile = _profile_field(LimitProfile.objects.all(), "limit profile")
    latency_profile = _profile_field(LatencyProfile.objects.all(), "latency profile")
    fault_profile = _profile_field(FaultProfile.objects.all(), "fault profile")
    recording_set = _profile_field(RecordingSet.objects.all(), "recording set")
    upstream_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=512, trim_whitespace=True,
        help_text="Record modes: the upstream key. Write-only: never shown again; '' clears it.",
    )
    has_upstream_key = serializers.SerializerMethodField(help_text="Whether an upstream key is stored.")

    class Meta:
        model = Deployment
        fields = (
            "name", "model", "mode", "enabled", "output_tokens_mean", "output_tokens_std", "tool_call_probability",
            "limit_profile", "latency_profile", "fault_profile", "recording_set",
            "upstream_endpoint", "upstream_key_env", "upstream_key", "has_upstream_key", "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {
            "model": {"error_messages": {"invalid_choice": _UNKNOWN_MODEL}},
            # PostgreSQL's integer columns stop here while SQLite's do not: one limit, whatever the database.
            "output_tokens_mean": {"max_value": MAX_INTEGER},
            "output_tokens_std": {"max_value": MAX_INTEGER},
        }

    def get_has_upstream_key(self, deployment: Deployment) -> bool:
        return bool(deployment.upstream_key)

    def create(self, validated_data: dict[str, Any]) -> Deployment:
        return services.do_create_deployment(**validated_data)

    def update(self, instance: Deployment, validated_data: dict[str, Any]) -> Deployment:
        return services.do_update_deployment(instance, **validated_data)


class KeyNameMixin:
    def validate_name(self, name: str) -> str:
        # A key is addressed by name in URLs (/api/keys/<name>/), so a name cannot hold '/'.
        if "/" in name:
            raise serializers.ValidationError("A name cannot contain '/'.")
        return name


class ApiKeySerializer(KeyNameMixin, serializers.ModelSerializer):
    """What list and detail show: never the secret, never its hash."""

    class Meta:
        model = ApiKey
        fields = ("name", "key_prefix", "enabled", "created_at")
        read_only_fields = ("key_prefix", "created_at")


def _validate_new_secret(secret: str) -> str:
    if secret and services.api_key_secret_in_use(secret):
        raise serializers.ValidationError("Another key already has this secret; choose a different one.")
    return secret


class ApiKeySecretSerializer(serializers.Serializer):
    key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, min_length=8, max_length=512,
        help_text="Optional: the secret to use. Leave it out to have a random one generated.",
    )

    def validate_key(self, secret: str) -> str:
        return _validate_new_secret(secret)


class ApiKeyCreateSerializer(KeyNameMixin, ApiKeySecretSerializer, serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ("name", "key")


class CreatedApiKeySerializer(serializers.Serializer):
    """The one answer that carries a key's secret: the answer to create and rotate."""

    name = serializers.CharField(source="key.name", read_only=True)
    key_prefix = serializers.CharField(source="key.key_prefix", read_only=True)
    enabled = serializers.BooleanField(source="key.enabled", read_only=True)
    created_at = serializers.DateTimeField(source="key.created_at", read_only=True)
    key = serializers.CharField(source="secret", read_only=True, help_text="The secret. Shown this once only.")
