"""Admin for limits_app. Thin: state and actions come from limits_app.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from limits_app.faults import parse_term
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from limits_app.profile_services import do_reset_fail_first
from limits_app.services import read_profile_states, reset_profile_deployments
from limits_app.validation import latency_problems

# --- limit profiles -----------------------------------------------------------------------------------------


@admin.register(LimitProfile)
class LimitProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "tokens_per_minute", "rpm", "request_window_s", "default_max_tokens", "on_limit",
                    "queue_max_wait_ms", "deployment_names", "updated_at")
    list_filter = ("on_limit", "request_window_s")
    search_fields = ("name",)
    readonly_fields = ("limiter_state", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "tokens_per_minute", "requests_per_minute", "request_window_s",
                           "default_max_tokens")}),
        ("When over the limit", {"fields": ("on_limit", "queue_max_wait_ms")}),
        ("Current state", {"fields": ("limiter_state", "created_at", "updated_at")}),
    )
    actions = ("reset_limiter_state",)

    @admin.display(description="RPM")
    def rpm(self, obj: LimitProfile) -> str:
        if obj.requests_per_minute:
            return str(obj.requests_per_minute)
        return f"{obj.effective_requests_per_minute} (auto)"

    @admin.display(description="deployments")
    def deployment_names(self, obj: LimitProfile) -> str:
        return ", ".join(obj.deployments.order_by("name").values_list("name", flat=True)) or "—"

    @admin.display(description="usage per deployment")
    def limiter_state(self, obj: LimitProfile) -> str:
        if obj.pk is None:
            return "—"
        states = read_profile_states(obj)
        if not states:
            return "No deployment uses this profile."
        rows = format_html_join(
            "",
            "<li><b>{}</b>: {} of {} tokens and {} of {} requests in the last minute, {} of {} requests in the "
            "last {} s ({})</li>",
            (
                (s.deployment, s.tokens_used, s.tokens_per_minute, s.requests_used, s.requests_per_minute,
                 s.window_requests_used, s.window_request_limit, s.request_window_s, s.backend)
                for s in states
            ),
        )
        return format_html_join("", "<ul>{}</ul>", [(rows,)])

    @admin.action(description="Reset the rate-limit state of their deployments")
    def reset_limiter_state(self, request: HttpRequest, queryset: QuerySet[LimitProfile]) -> None:
        names = [name for profile in queryset for name in reset_profile_deployments(profile)]
        if names:
            self.message_user(request, f"Rate-limit state reset for: {', '.join(names)}.", messages.SUCCESS)
        else:
            self.message_user(request, "No deployment uses the selected profiles.", messages.WARNING)


# --- latency and fault profiles (owned by the latency & faults work) --------------------------------------


class LatencyProfileForm(forms.ModelForm):
    class Meta:
        model = LatencyProfile
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field_name, problem in latency_problems(cleaned).items():
            self.add_error(field_name, problem)
        return cleaned


@admin.register(LatencyProfile)
class LatencyProfileAdmin(admin.ModelAdmin):
    form = LatencyProfileForm
    list_display = ("name", "ttft", "itl", "request", "per_input_token_ms", "inflight_growth", "deployment_names",
                    "updated_at")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name",)}),
        ("Chat, completions, responses (ms)", {"fields": ("ttft_mean_ms", "ttft_std_ms", "itl_mean_ms",
                                                          "itl_std_ms")}),
        ("Embeddings, images, audio (ms)", {"fields": ("request_mean_ms", "request_std_ms",
                                                       "per_input_token_ms")}),
        ("Under load", {"fields": ("inflight_growth",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="time to first token")
    def ttft(self, obj: LatencyProfile) -> str:
        return f"{obj.ttft_mean_ms:g} ± {obj.ttft_std_ms:g} ms"

    @admin.display(description="per token")
    def itl(self, obj: LatencyProfile) -> str:
        return f"{obj.itl_mean_ms:g} ± {obj.itl_std_ms:g} ms"

    @admin.display(description="per request")
    def request(self, obj: LatencyProfile) -> str:
        return f"{obj.request_mean_ms:g} ± {obj.request_std_ms:g} ms"

    @admin.display(description="deployments")
    def deployment_names(self, obj: LatencyProfile) -> str:
        return ", ".join(obj.deployments.order_by("name").values_list("name", flat=True)) or "—"


class FaultProfileForm(forms.ModelForm):
    class Meta:
        model = FaultProfile
        fields = "__all__"
        help_texts = {
            "content_filter_terms": 'A JSON list. A prompt containing a term (any case) is refused with 400 '
                                    'content_filter; "completion:term" filters the answer instead '
                                    '(finish_reason content_filter); "violence:term", "self_harm:term", ... name '
                                    'the category reported (default violence).',
        }

    def clean_content_filter_terms(self) -> list[str]:
        terms = self.cleaned_data.get("content_filter_terms") or []
        if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
            raise forms.ValidationError('A JSON list of strings, e.g. ["forbidden phrase"].')
        for term in terms:
            try:
                parse_term(term)
            except ValueError as problem:
                raise forms.ValidationError(str(problem)) from None
        return terms


@admin.register(FaultProfile)
class FaultProfileAdmin(admin.ModelAdmin):
    form = FaultProfileForm
    list_display = ("name", "error_rate", "kinds", "timeout_ms", "fail_first", "content_filter_terms",
                    "deployment_names", "updated_at")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    actions = ("reset_fail_first",)

    @admin.display(description="deployments")
    def deployment_names(self, obj: FaultProfile) -> str:
        return ", ".join(obj.deployments.order_by("name").values_list("name", flat=True)) or "—"

    @admin.action(description='Start "fail the first N requests" again')
    def reset_fail_first(self, request: HttpRequest, queryset: QuerySet[FaultProfile]) -> None:
        names = do_reset_fail_first(queryset)
        self.message_user(request, f"The fail-first count starts again for: {', '.join(names)}.", messages.SUCCESS)
