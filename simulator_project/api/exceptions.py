"""DRF's exception handler, plus the model-layer errors that must reach a client as 4xx, never as a 500."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler


def management_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        # A model's clean() or a service refused the values: field errors, as serializers give them.
        return Response(as_serializer_error(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError | RestrictedError):
        blocking = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        users = sorted({str(obj) for obj in blocking})
        return Response(
            {"detail": f"Still in use by: {', '.join(users)}. Point those elsewhere first.", "in_use_by": users},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        # A concurrent write won a uniqueness race that the serializer's check had passed.
        return Response({"detail": "Conflicts with an existing object; retry or choose another name."},
                        status=status.HTTP_409_CONFLICT)
    return exception_handler(exc, context)
