"""Deployments, data-plane API keys and the configuration version stamp."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from generators_app.catalogue import model_choices


class DeploymentMode(models.TextChoices):
    GENERATE = "generate", "generate"
    REPLAY = "replay", "replay (strict: a miss is an error)"
    REPLAY_OR_GENERATE = "replay_or_generate", "replay, generate on a miss"
    REPLAY_OR_RECORD = "replay_or_record", "replay, forward and record on a miss"
    RECORD = "record", "record (always forward and save)"


RECORDING_MODES = {DeploymentMode.REPLAY_OR_RECORD, DeploymentMode.RECORD}


deployment_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters.",
)


class Deployment(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[deployment_name_validator])
    model = models.CharField(max_length=64, choices=model_choices)
    mode = models.CharField(max_length=32, choices=DeploymentMode.choices, default=DeploymentMode.GENERATE)
    output_tokens_mean = models.PositiveIntegerField(
        default=60, help_text="Mean completion length (tokens) when a request sets no max_tokens."
    )
    output_tokens_std = models.PositiveIntegerField(
        default=20, help_text="Standard deviation of that length (normal, clipped to 1..max output)."
    )
    tool_call_probability = models.FloatField(
        default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="With tools and tool_choice 'auto', how often the answer is a tool call.",
    )
    limit_profile = models.ForeignKey(
        "limits_app.LimitProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    latency_profile = models.ForeignKey(
        "limits_app.LatencyProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    fault_profile = models.ForeignKey(
        "limits_app.FaultProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    recording_set = models.ForeignKey(
        "recordings_app.RecordingSet", null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    upstream_endpoint = models.URLField(blank=True, help_text="Record modes: the real AOAI/OpenAI endpoint.")
    upstream_key_env = models.CharField(
        max_length=128, blank=True, help_text="Record modes: environment variable holding the upstream key."
    )
    # Write-only: never shown in admin or the API, never exported, logged or stored in a recording.
    upstream_key = models.CharField(max_length=512, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"

    def clean(self) -> None:
        from generators_app.catalogue import get_model

        if get_model(self.model) is None:
            raise ValidationError({"model": f"Unknown model '{self.model}'."})
        if self.mode in RECORDING_MODES and not self.upstream_endpoint:
            raise ValidationError({"upstream_endpoint": "A recording mode needs an upstream endpoint."})
        if self.mode != DeploymentMode.GENERATE and self.recording_set_id is None:
            raise ValidationError({"recording_set": f"Mode '{self.mode}' needs a recording set."})


class ApiKey(models.Model):
    """A data-plane key. Only its SHA-256 is stored; the secret is shown once, when it is created."""

    name = models.CharField(max_length=64, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise it.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class ConfigStamp(models.Model):
    """One row whose version every configuration change bumps; each process polls it to refresh its cache."""

    version = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    updated_at = models.DateTimeField(auto_now=True)
