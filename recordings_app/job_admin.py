"""Admin for recording import/export jobs: the job list, the import form, a progress page, export downloads,
and the actions that start jobs from the set and recording lists (wired in admin.py). Thin over jobs.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from recordings_app import jobs
from recordings_app.models import Job, JobKind, JobStatus, Recording, RecordingSet

_IMPORT_PERMISSION = "recordings_app.add_recording"
_EXPORT_PERMISSION = "recordings_app.view_recording"


def progress_url(job: Job) -> str:
    return reverse("admin:recordings_app_job_progress", args=[job.pk])


def job_state(job: Job) -> dict[str, Any]:
    """What the progress page shows, also served as JSON for scripts and tests."""
    return {
        "id": job.pk, "kind": job.kind, "status": job.status, "set": job.set_name, "file": job.file_name,
        "format": job.format, "progress": job.progress, "processed": job.processed, "total": job.total,
        "created": job.created_count, "skipped": job.skipped_count, "errors": job.errors,
        "warnings": job.warnings, "message": job.message, "done": job.done,
        "download": reverse("admin:recordings_app_job_download", args=[job.pk])
        if job.kind == JobKind.EXPORT and job.status == JobStatus.SUCCEEDED and job.file else None,
    }


class ImportRecordingsForm(forms.Form):
    file = forms.FileField(help_text="This simulator's YAML export, an aoai-api-simulator recording or a vcr.py "
                                     "cassette (detected from the content).")
    recording_set = forms.ModelChoiceField(
        queryset=RecordingSet.objects.all(), required=False, label="Into the set",
        empty_label="— a new set (name below), or the set the file names —",
    )
    new_set_name = forms.CharField(required=False, max_length=64, label="New set name")
    replace = forms.BooleanField(required=False, help_text="Delete the set's recordings first (same transaction).")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        existing, new_name = cleaned.get("recording_set"), (cleaned.get("new_set_name") or "").strip()
        if existing and new_name:
            raise forms.ValidationError("Choose an existing set or name a new one, not both.")
        if "/" in new_name:
            self.add_error("new_set_name", "A name cannot contain '/'.")
        if new_name and RecordingSet.objects.filter(name=new_name).exists():
            self.add_error("new_set_name", "A set with this name exists: choose it above.")
        cleaned["set_name"] = existing.name if existing else new_name
        return cleaned


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "set_name", "file_name", "status_with_progress", "created_count", "skipped_count",
                    "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("set_name", "file_name", "message")
    list_select_related = ("created_by",)
    readonly_fields = ("kind", "status", "recording_set", "set_name", "file", "file_name", "format", "options",
                       "total", "processed", "progress", "created_count", "skipped_count", "problems", "message",
                       "task_id", "created_by", "created_at", "started_at", "finished_at")
    exclude = ("errors", "warnings")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs start from the import form and the export actions

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    @admin.display(description="status")
    def status_with_progress(self, job: Job) -> str:
        label = job.status if job.done else f"{job.status} {job.progress:.0f}%"
        return format_html('<a href="{}">{}</a>', progress_url(job), label)

    @admin.display(description="errors and warnings")
    def problems(self, job: Job) -> str:
        rows = [("error", item) for item in job.errors or []] + [("warning", item) for item in job.warnings or []]
        if not rows:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{}: {} line {}: {}</li>",
            ((kind, item.get("file", ""), item.get("line", ""), item.get("message", "")) for kind, item in rows),
        ))

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="recordings_app_job_import"),
            path("<int:job_id>/progress/", wrap(self.progress_view), name="recordings_app_job_progress"),
            path("<int:job_id>/progress.json", wrap(self.progress_json), name="recordings_app_job_progress_json"),
            path("<int:job_id>/download/", wrap(self.download_view), name="recordings_app_job_download"),
            *super().get_urls(),
        ]

    def _job(self, request: HttpRequest, job_id: int) -> Job:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Job.objects.select_related("recording_set", "created_by"), pk=job_id)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(_IMPORT_PERMISSION):
            raise PermissionDenied
        if request.method == "POST":
            form = ImportRecordingsForm(request.POST, request.FILES)
            if form.is_valid():
                job = jobs.create_import_job(form.cleaned_data["file"], set_name=form.cleaned_data["set_name"],
                                             replace=form.cleaned_data["replace"], user=request.user)
                jobs.enqueue(job)
                return HttpResponseRedirect(progress_url(job))
        else:
            initial = {}
            if request.GET.get("set"):
                initial["recording_set"] = RecordingSet.objects.filter(pk=request.GET["set"]).first()
            form = ImportRecordingsForm(initial=initial)
        context = {**self.admin_site.each_context(request), "title": "Import recordings", "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/recordings_app/job/import_form.html", context)

    def progress_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        context = {**self.admin_site.each_context(request), "title": f"Recording {job.kind} #{job.pk}",
                   "job": job, "state": job_state(job), "opts": self.model._meta}
        return TemplateResponse(request, "admin/recordings_app/job/progress.html", context)

    def progress_json(self, request: HttpRequest, job_id: int) -> JsonResponse:
        return JsonResponse(job_state(self._job(request, job_id)))

    def download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        job = self._job(request, job_id)
        if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED or not job.file:
            raise Http404("This job produced no file.")
        try:
            handle = job.file.open("rb")
        except FileNotFoundError:
            raise Http404("The exported file is gone from MEDIA_ROOT.") from None
        return FileResponse(handle, as_attachment=True, filename=job.file_name or "recordings.yaml",
                            content_type="application/yaml")


# --- actions on the set and recording lists (listed in admin.py) ----------------------------------------


def _started(modeladmin: admin.ModelAdmin, request: HttpRequest, started: list[Job]) -> HttpResponse | None:
    if len(started) == 1:
        return HttpResponseRedirect(progress_url(started[0]))
    links = format_html_join(", ", '<a href="{}">#{} {}</a>', ((progress_url(job), job.pk, job.set_name)
                                                                  for job in started))
    modeladmin.message_user(request, format_html("Export jobs started: {}", links), messages.SUCCESS)
    return None


@admin.action(description="Export selected sets to YAML (a job each)", permissions=["view"])
def export_selected_sets(modeladmin: admin.ModelAdmin, request: HttpRequest,
                         queryset: QuerySet[RecordingSet]) -> HttpResponse | None:
    started = []
    for recording_set in queryset.order_by("name"):
        job = jobs.create_export_job(recording_set, user=request.user)
        jobs.enqueue(job)
        started.append(job)
    return _started(modeladmin, request, started)


@admin.action(description="Import a YAML file into the selected set", permissions=["change"])
def import_into_set(modeladmin: admin.ModelAdmin, request: HttpRequest,
                    queryset: QuerySet[RecordingSet]) -> HttpResponse | None:
    chosen = list(queryset[:2])
    if len(chosen) != 1:
        modeladmin.message_user(request, "Select exactly one set to import into.", messages.ERROR)
        return None
    return HttpResponseRedirect(reverse("admin:recordings_app_job_import") + f"?set={chosen[0].pk}")


@admin.action(description="Export selected recordings to YAML (a job per set)", permissions=["view"])
def export_selected_recordings(modeladmin: admin.ModelAdmin, request: HttpRequest,
                               queryset: QuerySet[Recording]) -> HttpResponse | None:
    by_set: dict[int, list[int]] = {}
    for set_id, recording_id in queryset.order_by().values_list("recording_set_id", "pk"):
        by_set.setdefault(set_id, []).append(recording_id)
    started = []
    for recording_set in RecordingSet.objects.filter(pk__in=by_set).order_by("name"):
        job = jobs.create_export_job(recording_set, recording_ids=by_set[recording_set.pk], user=request.user)
        jobs.enqueue(job)
        started.append(job)
    return _started(modeladmin, request, started)
