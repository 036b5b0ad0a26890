"""Limit, latency and fault profiles: everything that shapes traffic. A deployment names one of each."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class LimitProfile(models.Model):
    class OnLimit(models.TextChoices):
        REJECT = "reject", "reject with 429 (AOAI default)"
        QUEUE = "queue", "queue until admitted, up to queue_max_wait_ms"

    name = models.CharField(max_length=64, unique=True)
    tokens_per_minute = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Empty: 6 per 1000 TPM, as AOAI assigns.",
    )
    request_window_s = models.PositiveSmallIntegerField(
        default=10, choices=[(10, "10 s (RPM/6 per window)"), (1, "1 s (RPM/60 per window)")]
    )
    default_max_tokens = models.PositiveIntegerField(
        default=16, help_text="Tokens counted for the completion when a request sets no max_tokens."
    )
    on_limit = models.CharField(max_length=16, choices=OnLimit.choices, default=OnLimit.REJECT)
    queue_max_wait_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.tokens_per_minute} TPM)"

    @property
    def effective_requests_per_minute(self) -> int:
        if self.requests_per_minute:
            return self.requests_per_minute
        return max(1, self.tokens_per_minute * 6 // 1000)


class LatencyProfile(models.Model):
    """Normal distributions clipped at zero; milliseconds."""

    name = models.CharField(max_length=64, unique=True)
    ttft_mean_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    ttft_std_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    itl_mean_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    itl_std_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    request_mean_ms = models.FloatField(
        default=0, validators=[MinValueValidator(0)], help_text="Embeddings, images, audio: per request."
    )
    request_std_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    per_input_token_ms = models.FloatField(default=0, validators=[MinValueValidator(0)])
    inflight_growth = models.FloatField(
        default=0, validators=[MinValueValidator(0)],
        help_text="Latency grows by this fraction per request already in flight (0 = no growth).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


FAULT_KINDS = ("429", "500", "503", "timeout", "reset", "truncate", "malformed")


def validate_fault_kinds(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("kinds must be a mapping of fault kind to weight")
    for kind, weight in value.items():
        base, _, arg = str(kind).partition(":")
        if base not in FAULT_KINDS or (base == "truncate" and not arg.isdigit()) or (base != "truncate" and arg):
            raise ValidationError(f"unknown fault kind '{kind}' (known: {', '.join(FAULT_KINDS)}, truncate:K)")
        if not isinstance(weight, int | float) or weight < 0:
            raise ValidationError(f"weight of '{kind}' must be a number >= 0")


class FaultProfile(models.Model):
    name = models.CharField(max_length=64, unique=True)
    error_rate = models.FloatField(default=0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    kinds = models.JSONField(default=dict, blank=True, validators=[validate_fault_kinds],
                             help_text='Weights, e.g. {"500": 3, "503": 1, "429": 1, "timeout": 1, "truncate:5": 1}')
    timeout_ms = models.PositiveIntegerField(default=30_000)
    fail_first = models.PositiveIntegerField(default=0, help_text="Fail the first N requests, then succeed.")
    content_filter_terms = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
