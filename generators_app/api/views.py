"""Viewsets for deployments and data-plane keys: thin, they call generators_app.services."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from generators_app import services
from generators_app.api.serializers import (
    ApiKeyCreateSerializer,
    ApiKeySecretSerializer,
    ApiKeySerializer,
    CreatedApiKeySerializer,
    DeploymentSerializer,
)
from generators_app.models import ApiKey, Deployment
from limits_app.api.serializers import LimiterStateSerializer
from limits_app.services import read_limiter_state, reset_limiter_state
from simulator_project.api.fields import NAME_LOOKUP

_NO_STORE = {"Cache-Control": "no-store"}


class DeploymentViewSet(viewsets.ModelViewSet):
    """Deployments: a name, a model, a mode and the profiles that shape its traffic."""

    serializer_class = DeploymentSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP

    def get_queryset(self) -> QuerySet[Deployment]:
        return Deployment.objects.select_related("limit_profile", "latency_profile", "fault_profile", "recording_set")

    def _limited(self) -> Deployment:
        deployment = self.get_object()
        if deployment.limit_profile is None:
            raise NotFound(f"Deployment '{deployment.name}' has no limit profile: nothing limits it.")
        return deployment

    @extend_schema(responses={200: LimiterStateSerializer})
    @action(detail=True, methods=["get"])
    def limiter(self, request: Request, name: str) -> Response:
        """What the deployment has used of its limits right now, and what remains (404 if it has no limit profile)."""
        deployment = self._limited()
        return Response(LimiterStateSerializer(read_limiter_state(deployment.name, deployment.limit_profile)).data)

    @extend_schema(request=None, responses={200: LimiterStateSerializer})
    @action(detail=True, methods=["post"], url_path="limiter/reset")
    def reset_limiter(self, request: Request, name: str) -> Response:
        """Forget what the deployment has used: its next request starts on a full quota."""
        deployment = self._limited()
        reset_limiter_state(deployment.name)
        return Response(LimiterStateSerializer(read_limiter_state(deployment.name, deployment.limit_profile)).data)


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Data-plane API keys. Only create and rotate answer with the secret, once; nothing shows it later."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: CreatedApiKeySerializer})
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.do_create_api_key(serializer.validated_data["name"], serializer.validated_data.get("key"))
        return Response(CreatedApiKeySerializer(created).data, status=status.HTTP_201_CREATED, headers=_NO_STORE)

    @extend_schema(request=ApiKeySecretSerializer, responses={200: CreatedApiKeySerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, name: str) -> Response:
        """Give the key a new secret (generated, or the one sent); the old secret stops working."""
        key = self.get_object()
        serializer = ApiKeySecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.do_rotate_api_key(key, serializer.validated_data.get("key"))
        return Response(CreatedApiKeySerializer(created).data, headers=_NO_STORE)
