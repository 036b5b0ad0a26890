"""Viewsets for the traffic-shaping profiles. Saving a profile fires the signals that bump the shared
configuration version, so every process's data plane picks the change up."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from limits_app.api.serializers import (
    FaultProfileSerializer,
    LatencyProfileSerializer,
    LimiterStateSerializer,
    LimitProfileSerializer,
    ResetDeploymentsSerializer,
    ResetFaultProfileSerializer,
)
from limits_app.models import FaultProfile, LatencyProfile, LimitProfile
from limits_app.profile_services import do_reset_fail_first
from limits_app.services import read_profile_states, reset_profile_deployments
from simulator_project.api.fields import NAME_LOOKUP


class LimitProfileViewSet(viewsets.ModelViewSet):
    """Token and request rate limits (AOAI's TPM / RPM). Deleting one that a deployment uses answers 409."""

    queryset = LimitProfile.objects.all()
    serializer_class = LimitProfileSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP

    @extend_schema(responses={200: LimiterStateSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def state(self, request: Request, name: str) -> Response:
        """The limiter state of every deployment this profile limits."""
        states = read_profile_states(self.get_object())
        return Response(LimiterStateSerializer([state.as_dict() for state in states], many=True).data)

    @extend_schema(request=None, responses={200: ResetDeploymentsSerializer})
    @action(detail=True, methods=["post"])
    def reset(self, request: Request, name: str) -> Response:
        """Reset the limiter state of every deployment this profile limits: each starts on a full quota."""
        return Response({"deployments": reset_profile_deployments(self.get_object())})


class LatencyProfileViewSet(viewsets.ModelViewSet):
    """Time to first token, time per token and per-request latency (normal distributions, milliseconds)."""

    queryset = LatencyProfile.objects.all()
    serializer_class = LatencyProfileSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP


class FaultProfileViewSet(viewsets.ModelViewSet):
    """Injected failures: an error rate with weighted kinds, fail-the-first-N, content-filter terms."""

    queryset = FaultProfile.objects.all()
    serializer_class = FaultProfileSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_LOOKUP

    @extend_schema(request=None, responses={200: ResetFaultProfileSerializer})
    @action(detail=True, methods=["post"], url_path="reset-fail-first")
    def reset_fail_first(self, request: Request, name: str) -> Response:
        """Start "fail the first N requests" again, on every process, for the deployments using this profile."""
        profile = self.get_object()
        do_reset_fail_first([profile])
        names = list(profile.deployments.order_by("name").values_list("name", flat=True))
        return Response({"profile": profile.name, "deployments": names})
