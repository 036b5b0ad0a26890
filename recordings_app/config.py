"""Immutable, in-process view of a recording set's options (see generators_app.registry)."""

from __future__ import annotations

from dataclasses import dataclass

from recordings_app.models import RecordingSet


@dataclass(frozen=True, slots=True)
class RecordingSetConfig:
    id: int
    name: str
    ignore_fields: frozenset[str]
    timing_factor: float
    save_errors: bool

    @classmethod
    def from_model(cls, row: RecordingSet) -> RecordingSetConfig:
        return cls(
            id=row.pk,
            name=row.name,
            ignore_fields=frozenset(str(field) for field in (row.ignore_fields or [])),
            timing_factor=row.timing_factor,
            save_errors=row.save_errors,
        )
