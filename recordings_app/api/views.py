"""Viewsets for recording sets and recordings: list with filters, create, curate (edit, duplicate, enable,
move) and delete. Bulk changes go through recordings_app.services, which announce them so every process
reloads its recording index."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from recordings_app import services
from recordings_app.api.serializers import (
    BulkResultSerializer,
    MoveRecordingsSerializer,
    RecordingListSerializer,
    RecordingSerializer,
    RecordingSetSerializer,
    SetEnabledSerializer,
)
from recordings_app.models import Recording, RecordingSet
from simulator_project.api.fields import NAME_LOOKUP, has_nul

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


class RecordingSetViewSet(viewsets.ModelViewSet):
    """Recording sets: matching options (ignored fields) and replay timing. Deleting a set deletes its
    recordings; a set that a deployment uses cannot be deleted (409)."""

    serializer_class = RecordingSetSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP

    def get_queryset(self) -> QuerySet[RecordingSet]:
        return RecordingSet.objects.annotate(recording_count=Count("recordings"))


class RecordingPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


_FILTERS = [
    OpenApiParameter("recording_set", OpenApiTypes.STR, description="Only recordings of this set (by name)."),
    OpenApiParameter("deployment", OpenApiTypes.STR, description="Only recordings made for this deployment."),
    OpenApiParameter("operation", OpenApiTypes.STR, description="Only this operation, e.g. chat or embeddings."),
    OpenApiParameter("enabled", OpenApiTypes.BOOL, description="Only enabled (true) or disabled (false) ones."),
]


def filter_recordings(recordings: QuerySet[Recording], params: dict[str, str]) -> QuerySet[Recording]:
    if any(has_nul(params.get(name)) for name in ("recording_set", "deployment", "operation")):
        return recordings.none()  # no name holds NUL (and PostgreSQL cannot compare one)
    if params.get("recording_set"):
        recordings = recordings.filter(recording_set__name=params["recording_set"])
    if params.get("deployment"):
        recordings = recordings.filter(deployment_name=params["deployment"])
    if params.get("operation"):
        recordings = recordings.filter(operation=params["operation"])
    enabled = (params.get("enabled") or "").lower()
    if enabled in _TRUE:
        recordings = recordings.filter(enabled=True)
    elif enabled in _FALSE:
        recordings = recordings.filter(enabled=False)
    elif enabled:
        raise ValidationError({"enabled": ["Use true or false."]})
    return recordings


@extend_schema_view(list=extend_schema(parameters=_FILTERS))
class RecordingViewSet(viewsets.ModelViewSet):
    """Recordings: made by record mode and imports, or created here; curated (answer edits validated as
    JSON), duplicated, enabled or disabled, moved between sets, deleted."""

    pagination_class = RecordingPagination

    def get_serializer_class(self) -> type[BaseSerializer]:
        return RecordingListSerializer if self.action == "list" else RecordingSerializer

    def get_queryset(self) -> QuerySet[Recording]:
        recordings = Recording.objects.select_related("recording_set").order_by("id")
        if self.action == "list":
            recordings = filter_recordings(recordings, self.request.query_params)
        return recordings

    @extend_schema(request=None, responses={201: RecordingSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, pk: str) -> Response:
        """A copy with fresh hit counts. Equal matches take turns, so edit or disable one of them."""
        copy = services.duplicate_recordings([self.get_object()])[0]
        return Response(RecordingSerializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SetEnabledSerializer, responses={200: BulkResultSerializer})
    @action(detail=False, methods=["post"], url_path="set-enabled")
    def set_enabled(self, request: Request) -> Response:
        """Enable or disable many recordings at once."""
        serializer = SetEnabledSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chosen = Recording.objects.filter(pk__in=serializer.validated_data["ids"])
        return Response({"count": services.set_enabled(chosen, serializer.validated_data["enabled"])})

    @extend_schema(request=MoveRecordingsSerializer, responses={200: BulkResultSerializer})
    @action(detail=False, methods=["post"])
    def move(self, request: Request) -> Response:
        """Move many recordings to another set (re-keyed with that set's ignored fields)."""
        serializer = MoveRecordingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chosen = Recording.objects.filter(pk__in=serializer.validated_data["ids"])
        return Response({"count": services.move_recordings(chosen, serializer.validated_data["recording_set"])})
