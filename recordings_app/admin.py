"""Admin curation of recordings. Thin: validation and bulk actions live in recordings_app.services.

Saving a recording (or any action) bumps the configuration version, so every process serves the edit on
its next request once it sees the new version (about SIMULATOR_CONFIG_POLL_SECONDS).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from recordings_app import services
from recordings_app.job_admin import export_selected_recordings, export_selected_sets, import_into_set
from recordings_app.models import Recording, RecordingSet
from recordings_app.services import InvalidContent

_EVENT_DATA_SHOWN = 300


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pretty_or_raw(text: str) -> str:
    """Pretty JSON to edit; the raw text when it is not JSON (so a broken recording can still be fixed)."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except (TypeError, ValueError):
        return text


def _events_text(events: Any) -> str:
    """One event per line: easy to read and to edit, and still one JSON list."""
    if not isinstance(events, list) or not events:
        return "[]"
    return "[\n" + ",\n".join(_compact(event) for event in events) + "\n]"


class RecordingForm(forms.ModelForm):
    body = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 20, "cols": 110, "class": "vLargeTextField"}),
        help_text="The JSON answer. Invalid JSON is refused. Empty for a stream recording (see the events).",
    )
    request_body = forms.CharField(
        strip=False, widget=forms.Textarea(attrs={"rows": 12, "cols": 110}),
        help_text="The normalized request this recording answers. Editing it changes which requests match.",
    )
    headers = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 110}),
        help_text="Answer headers (a JSON object of strings). Secrets and hop-by-hop headers are never kept.",
    )
    stream_events = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 16, "cols": 110}),
        help_text='Stream recordings: a JSON list, one {"offset_ms": …, "data": "…"} per line, in time order.',
    )

    class Meta:
        model = Recording
        fields = ("recording_set", "deployment_name", "operation", "enabled", "status", "is_stream",
                  "duration_ms", "request_body", "headers", "body", "stream_events")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk is not None and not self.is_bound:
            self.initial["body"] = _pretty_or_raw(instance.body)
            self.initial["request_body"] = json.dumps(instance.request_body, ensure_ascii=False, indent=2)
            self.initial["headers"] = json.dumps(instance.headers or {}, ensure_ascii=False, indent=2)
            self.initial["stream_events"] = _events_text(instance.stream_events)

    def _parsed(self, name: str, what: str) -> Any:
        try:
            return services.parse_json_text(self.cleaned_data.get(name) or "", what)
        except InvalidContent as problem:
            raise forms.ValidationError(str(problem)) from None

    def clean_body(self) -> str:
        text = self.cleaned_data.get("body") or ""
        if not text.strip() and self.data.get("is_stream"):
            return ""
        value = self._parsed("body", "the body")
        original = self.instance.body if self.instance.pk is not None else None
        try:
            if original is not None and json.loads(original) == value:
                return original  # unchanged content keeps its exact bytes (what was recorded)
        except ValueError:
            pass
        return _compact(value)

    def clean_request_body(self) -> dict:
        value = self._parsed("request_body", "the request body")
        if not isinstance(value, dict):
            raise forms.ValidationError("The request body must be a JSON object.")
        return services.normalize_request(value)

    def clean_headers(self) -> dict:
        if not (self.cleaned_data.get("headers") or "").strip():
            return {}
        value = self._parsed("headers", "the headers")
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError("The headers must be a JSON object of text values.")
        try:
            return services.clean_headers(value)
        except InvalidContent as problem:
            raise forms.ValidationError(str(problem)) from None

    def clean_stream_events(self) -> list:
        if not (self.cleaned_data.get("stream_events") or "").strip():
            return []
        try:
            return services.validate_stream_events(self._parsed("stream_events", "the stream events"))
        except InvalidContent as problem:
            raise forms.ValidationError(str(problem)) from None

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("is_stream") and not cleaned.get("stream_events") and "stream_events" not in self.errors:
            self.add_error("stream_events", "A stream recording needs its events.")
        return cleaned


class MoveToSetForm(helpers.ActionForm):
    target_set = forms.ModelChoiceField(
        queryset=RecordingSet.objects.all(), required=False, label="Target set",
        help_text="For “Move to another set”.",
    )


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    form = RecordingForm
    action_form = MoveToSetForm
    list_display = ("id", "recording_set", "deployment_name", "operation", "status", "is_stream", "enabled",
                    "hit_count", "last_hit_at", "created_at")
    list_filter = ("recording_set", "deployment_name", "operation", "status", "enabled", "is_stream")
    list_select_related = ("recording_set",)
    search_fields = ("request_body", "body", "stream_events", "deployment_name")
    readonly_fields = ("match_key", "events_in_order", "hit_count", "last_hit_at", "created_at", "updated_at")
    actions = ("enable_recordings", "disable_recordings", "duplicate_recordings", "move_to_set",
               export_selected_recordings)
    fieldsets = (
        ("Request", {"fields": ("recording_set", "deployment_name", "operation", "request_body", "match_key")}),
        ("Answer", {"fields": ("status", "is_stream", "duration_ms", "headers", "body", "stream_events",
                               "events_in_order")}),
        ("Use", {"fields": ("enabled", "hit_count", "last_hit_at", "created_at", "updated_at")}),
    )

    @admin.display(description="events in order")
    def events_in_order(self, obj: Recording) -> str:
        events = obj.stream_events if isinstance(obj.stream_events, list) else []
        if not events:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            ((position, event.get("offset_ms", ""), event.get("event") or "",
              str(event.get("data", ""))[:_EVENT_DATA_SHOWN])
             for position, event in enumerate(events) if isinstance(event, dict)),
        )
        return format_html("<table><tr><th>#</th><th>offset ms</th><th>event</th><th>data</th></tr>{}</table>", rows)

    def save_model(self, request: HttpRequest, obj: Recording, form: forms.ModelForm, change: bool) -> None:
        services.refresh_key(obj)
        super().save_model(request, obj, form, change)

    @admin.action(description="Enable selected recordings")
    def enable_recordings(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        count = services.set_enabled(queryset, True)
        self.message_user(request, f"{count} recording(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected recordings")
    def disable_recordings(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        count = services.set_enabled(queryset, False)
        self.message_user(request, f"{count} recording(s) disabled.", messages.SUCCESS)

    @admin.action(description="Duplicate selected recordings")
    def duplicate_recordings(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        copies = services.duplicate_recordings(queryset)
        ids = ", ".join(str(copy.pk) for copy in copies)
        self.message_user(request, f"{len(copies)} copy(ies) made: {ids}. Equal matches take turns.",
                          messages.SUCCESS)

    @admin.action(description="Move selected recordings to another set")
    def move_to_set(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        target_id = request.POST.get("target_set")
        target = RecordingSet.objects.filter(pk=target_id).first() if target_id else None
        if target is None:
            self.message_user(request, "Choose the target set first (next to the action).", messages.ERROR)
            return
        count = services.move_recordings(queryset, target)
        self.message_user(request, f"{count} recording(s) moved to '{target.name}'.", messages.SUCCESS)


@admin.register(RecordingSet)
class RecordingSetAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "recording_count", "enabled_count", "timing_factor", "save_errors",
                    "deployment_names", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")
    fields = ("name", "description", "ignore_fields", "timing_factor", "save_errors", "created_at", "updated_at")
    actions = (export_selected_sets, import_into_set)  # YAML jobs (job_admin.py)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecordingSet]:
        return super().get_queryset(request).annotate(
            _recordings=Count("recordings"), _enabled=Count("recordings", filter=Q(recordings__enabled=True))
        )

    @admin.display(description="recordings", ordering="_recordings")
    def recording_count(self, obj: RecordingSet) -> int:
        return obj._recordings

    @admin.display(description="enabled", ordering="_enabled")
    def enabled_count(self, obj: RecordingSet) -> int:
        return obj._enabled

    @admin.display(description="deployments")
    def deployment_names(self, obj: RecordingSet) -> str:
        return ", ".join(obj.deployments.order_by("name").values_list("name", flat=True)) or "—"
