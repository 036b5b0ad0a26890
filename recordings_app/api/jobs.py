"""Import/export jobs over the management API: upload a YAML file to start an import, start an export,
poll status and progress, download what an export produced. Thin over recordings_app.jobs."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from recordings_app import jobs
from recordings_app.api.views import RecordingPagination
from recordings_app.models import Job, JobKind, JobStatus, RecordingSet

MAX_UPLOAD_BYTES = 512 * 1024 * 1024


class JobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = (
            "id", "kind", "status", "set_name", "file_name", "format", "total", "processed", "progress",
            "created_count", "skipped_count", "errors", "warnings", "message", "created_by", "created_at",
            "started_at", "finished_at", "download_url",
        )
        read_only_fields = fields

    def get_download_url(self, job: Job) -> str | None:
        if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED or not job.file:
            return None
        return f"/api/jobs/{job.pk}/download/"


class ImportJobSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A YAML file: ours, microsoft/aoai-api-simulator or a vcr.py cassette.")
    recording_set = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="The set to import into (created if missing); default: the set the file names.",
    )
    replace = serializers.BooleanField(default=False, help_text="Empty the set before importing.")

    def validate_file(self, upload):
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES} bytes.")
        return upload


class ExportJobSerializer(serializers.Serializer):
    recording_set = serializers.SlugRelatedField(slug_field="name", queryset=RecordingSet.objects.all())
    recording_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                          required=False, help_text="Only these recordings of the set.")


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recording import/export jobs, newest first; filter with `?kind=` and `?status=`."""

    serializer_class = JobSerializer
    pagination_class = RecordingPagination
    parser_classes = (JSONParser, MultiPartParser, FormParser)

    def get_queryset(self):
        queryset = Job.objects.select_related("created_by")
        for field, choices in (("kind", JobKind.values), ("status", JobStatus.values)):
            value = self.request.query_params.get(field)
            if value:
                if value not in choices:
                    raise ValidationError({field: f"One of {', '.join(choices)}."})
                queryset = queryset.filter(**{field: value})
        return queryset

    @extend_schema(request=ImportJobSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def start_import(self, request: Request) -> Response:
        form = ImportJobSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = jobs.create_import_job(
            form.validated_data["file"], set_name=form.validated_data.get("recording_set", ""),
            replace=form.validated_data["replace"], user=request.user,
        )
        jobs.enqueue(job)
        return self._accepted(job)

    @extend_schema(request=ExportJobSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="export")
    def start_export(self, request: Request) -> Response:
        form = ExportJobSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = jobs.create_export_job(
            form.validated_data["recording_set"], recording_ids=form.validated_data.get("recording_ids"),
            user=request.user,
        )
        jobs.enqueue(job)
        return self._accepted(job)

    @extend_schema(responses={(200, "application/x-yaml"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        job = self.get_object()
        if job.kind != JobKind.EXPORT or job.status != JobStatus.SUCCEEDED or not job.file:
            raise NotFound("Only a finished export job has a file to download.")
        name = f"{job.set_name or 'recordings'}.yaml"
        return FileResponse(job.file.open("rb"), as_attachment=True, filename=name,
                            content_type="application/x-yaml")

    def _accepted(self, job: Job) -> Response:
        job.refresh_from_db()  # an eager (embedded) run has finished by now
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/jobs/{job.pk}/"})
