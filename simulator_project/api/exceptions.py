"""DRF's exception handler, plus the model-layer errors that must reach a client as 4xx, never as a 500."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


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
    if isinstance(exc, DataError):
        # A value the database cannot hold that no serializer check caught: still the client's input, so a 400
        # (logged, so the missing check gets written).
        reason = (str(exc).splitlines() or ["invalid value"])[0]
        logger.warning("management API: the database refused a value: %s", reason)
        return Response({"detail": f"A value cannot be stored: {reason}"}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)
