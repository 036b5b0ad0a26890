"""Read a recordings file of any supported format, detected from its top-level keys.

- ``format: aoai-simulator-recordings`` (+ ``version: 1``): this simulator's own format (ours.py);
- ``interactions:`` whose entries carry ``context_values``: the microsoft/aoai-api-simulator format;
- ``interactions:`` otherwise: a vcr.py cassette (vcr.py).

``read_recordings`` yields, in file order, ``Detected``, ``SetOptions``, ``RecordingData``, ``Skipped`` and
``Invalid`` items one at a time, so a file of any size is read in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from recordings_app.formats import aoai_simulator, ours, vcr
from recordings_app.formats.common import (
    Detected,
    FieldProblem,
    Invalid,
    RecordingData,
    SetOptions,
    Skipped,
)
from recordings_app.formats.yamlio import Item, YamlFormatError, YamlReader, line_of

__all__ = [
    "FORMATS",
    "Detected",
    "Invalid",
    "RecordingData",
    "SetOptions",
    "Skipped",
    "YamlFormatError",
    "read_recordings",
]

FORMATS = (ours.FORMAT, aoai_simulator.FORMAT, vcr.FORMAT)
Parsed = Detected | SetOptions | RecordingData | Skipped | Invalid


def _invalid(item: Item, problem: FieldProblem, what: str) -> Invalid:
    return Invalid(line_of(item, problem.path), f"{what}: {problem.message}")


def read_recordings(stream: IO[bytes] | IO[str]) -> Iterator[Parsed]:
    """The file's content, item by item. Raises YamlFormatError when the file is not readable at all."""
    reader = YamlReader(stream)
    kind: str | None = None
    version: Item | None = None
    for key, line in reader.entries():
        if key == "version":
            version = reader.value()
            if kind == ours.FORMAT:
                _check(ours.check_version, version)
            continue
        if kind is None:
            if key == "format":
                _check(ours.check_format, reader.value())
                kind = ours.FORMAT
                yield Detected(kind)
                if version is not None:
                    _check(ours.check_version, version)
                continue
            if key == "interactions":
                kind = "cassette"
            else:
                raise YamlFormatError(
                    f"unknown file: it starts with '{key}', not 'format: {ours.FORMAT}' (this simulator's "
                    "export) nor 'interactions:' (a vcr.py cassette or an aoai-api-simulator recording)", line)
        if kind == ours.FORMAT:
            yield from _ours_entry(reader, key, line, version)
        elif key == "interactions":
            yield from _cassette(reader)
        # other top-level keys of a cassette are not ours to judge: ignored, as vcr.py does
    if kind == ours.FORMAT and version is None:
        raise YamlFormatError(f"'version' is missing: this simulator reads version {ours.VERSION}", 1)
    if kind == "cassette" and version is not None and version.value != vcr.SUPPORTED_VERSION:
        raise YamlFormatError(f"unsupported cassette version {version.value!r}: only version 1 is read", version.line)


def _check(check: Any, item: Item) -> None:
    try:
        check(item.value)
    except FieldProblem as problem:
        raise YamlFormatError(problem.message, item.line) from None


def _ours_entry(reader: YamlReader, key: str, line: int, version: Item | None) -> Iterator[Parsed]:
    if key == "exported_at":
        reader.value()
    elif key == "recording_set":
        item = reader.value()
        try:
            yield ours.read_set_options(item.value, line)
        except FieldProblem as problem:
            yield _invalid(item, problem, "recording_set")
    elif key == "recordings":
        if version is None:
            raise YamlFormatError("'version' must come before 'recordings'", line)
        for index, item in enumerate(reader.sequence(), start=1):
            try:
                yield ours.read_recording(item.value, item.line)
            except FieldProblem as problem:
                yield _invalid(item, problem, f"recording {index}")
    else:
        raise YamlFormatError(
            f"unknown top-level key '{key}' (expected format, version, exported_at, recording_set, recordings)", line)


def _cassette(reader: YamlReader) -> Iterator[Parsed]:
    detected = False
    for index, item in enumerate(reader.sequence(), start=1):
        is_simulator = aoai_simulator.is_interaction(item.value)
        if not detected:
            detected = True
            yield Detected(aoai_simulator.FORMAT if is_simulator else vcr.FORMAT)
        try:
            if is_simulator:
                yield aoai_simulator.recording_from_interaction(item.value, item.line)
            else:
                yield vcr.recording_from_interaction(item.value, item.line)
        except FieldProblem as problem:
            yield _invalid(item, problem, f"interaction {index}")
    if not detected:
        yield Detected(vcr.FORMAT)
