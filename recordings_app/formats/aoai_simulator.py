"""The microsoft/aoai-api-simulator recording format: a vcr.py cassette whose interactions also carry
``context_values`` (``Deployment-Name``, ``Operation-Name``, token counts) and ``response.duration_ms``.

Its recorder keeps only ``request.body_hash`` for request bodies over 1 KiB; such an interaction cannot be
matched by body, so it is skipped with a warning. A stream answer (stored as ``!!binary`` SSE text) gets its
events spread evenly over the recorded duration, the only timing the format keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recordings_app.formats import vcr
from recordings_app.formats.common import FieldProblem, RecordingData, Skipped

FORMAT = "aoai-api-simulator"
SUPPORTED_VERSION = 1


def is_interaction(value: Any) -> bool:
    """Whether a cassette interaction was written by the aoai-api-simulator (it has context values)."""
    return isinstance(value, Mapping) and "context_values" in value


def recording_from_interaction(interaction: Any, line: int) -> RecordingData | Skipped:
    if not isinstance(interaction, Mapping):
        raise FieldProblem((), "an interaction must be a mapping")
    context = interaction.get("context_values") or {}
    if not isinstance(context, Mapping):
        raise FieldProblem(("context_values",), "'context_values' must be a mapping")
    response = interaction.get("response")
    duration = response.get("duration_ms", 0) if isinstance(response, Mapping) else 0
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
        raise FieldProblem(("response", "duration_ms"), "'response.duration_ms' must be a number of milliseconds")
    request = interaction.get("request")
    if isinstance(request, Mapping) and request.get("body") is None and request.get("body_hash"):
        return Skipped(line, f"{request.get('uri')}: the recording kept only a hash of the request body "
                             "(bodies over 1 KiB), so it cannot be matched")
    hint = context.get("Deployment-Name")
    return vcr.recording_from_interaction(
        interaction, line, duration_ms=float(duration), deployment_hint=hint if isinstance(hint, str) else None
    )
