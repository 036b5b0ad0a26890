"""multipart/form-data bodies (the audio operations): parsing, limits, and the normalized form that
record/replay matches on.

The body is parsed with python-multipart's streaming parser (the whole body is already in memory: a 25 MB
upload parses in about 20 ms). Field names sent with the `[]` array suffix (the openai SDK sends
`timestamp_granularities[]`) become lists under the bare name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header

from generators_app.errors import ApiError, invalid_request

# OpenAI and AOAI refuse audio request bodies above 25 MiB with a 413.
AUDIO_MAX_BODY_BYTES = 25 * 1024 * 1024
_MAX_PARTS = 64


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(slots=True)
class MultipartForm:
    fields: dict[str, str | list[str]]
    files: dict[str, UploadedFile]

    def payload(self) -> dict[str, Any]:
        """Fields and files in one dict: what the audio preparers read (files stay UploadedFile objects)."""
        return {**self.fields, **self.files}


def content_too_large(size: int, limit: int = AUDIO_MAX_BODY_BYTES) -> ApiError:
    return invalid_request(f"Maximum content size limit ({limit}) exceeded ({size} bytes read)", None,
                           "content_too_large", status=413)


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return ""


def parse_multipart(content_type: str, body: bytes) -> MultipartForm:
    """Parse a multipart/form-data body; any malformed input is an ApiError 400."""
    mime, options = parse_options_header(content_type)
    if mime != b"multipart/form-data":
        shown = mime.decode("latin-1") or "none"
        raise invalid_request(
            f"Invalid Content-Type header ({shown}), expected multipart/form-data. This operation takes a "
            "multipart form with a 'file' part.", None, "invalid_content_type",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise invalid_request("The multipart/form-data Content-Type header has no boundary.", None,
                              "invalid_multipart")
    parts: list[tuple[dict[bytes, bytes], list[bytes]]] = []
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        if len(parts) >= _MAX_PARTS:
            raise FormParserError(f"more than {_MAX_PARTS} parts")
        parts.append(({}, []))

    def on_header_end() -> None:
        parts[-1][0][bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin,
        "on_header_field": lambda data, start, end: header_name.extend(data[start:end]),
        "on_header_value": lambda data, start, end: header_value.extend(data[start:end]),
        "on_header_end": on_header_end,
        "on_part_data": lambda data, start, end: parts[-1][1].append(data[start:end]),
    })
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as error:
        raise invalid_request(f"The multipart/form-data body could not be parsed: {error}", None,
                              "invalid_multipart") from None
    if parser.state != MultipartState.END:
        raise invalid_request("The multipart/form-data body is incomplete: its closing boundary is missing.",
                              None, "invalid_multipart")
    return _form_from_parts(parts)


def _form_from_parts(parts: list[tuple[dict[bytes, bytes], list[bytes]]]) -> MultipartForm:
    fields: dict[str, str | list[str]] = {}
    files: dict[str, UploadedFile] = {}
    for headers, chunks in parts:
        disposition, params = parse_options_header(headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            raise invalid_request("Every part of the multipart/form-data body needs a "
                                  "'Content-Disposition: form-data; name=...' header.", None, "invalid_multipart")
        data = b"".join(chunks)
        if b"filename" in params:
            content_type = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
            files[name] = UploadedFile(params[b"filename"].decode("utf-8", "replace"), content_type, data)
            continue
        value = data.decode("utf-8", "replace")
        is_array = name.endswith("[]")
        key = name[:-2] if is_array else name
        previous = fields.get(key)
        if previous is None:
            fields[key] = [value] if is_array else value
        elif isinstance(previous, list):
            previous.append(value)
        else:  # a repeated plain name is a list too
            fields[key] = [previous, value]
    return MultipartForm(fields, files)


def parse_audio_form(headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    """The pipeline's body parser for audio operations: 413 above 25 MiB, 400 for anything malformed."""
    if len(body) > AUDIO_MAX_BODY_BYTES:
        raise content_too_large(len(body))
    return parse_multipart(_header(headers, b"content-type"), body).payload()


def normalized_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe dict for matching and recording: each file becomes its SHA-256 and size (file name and
    part content type left out: re-uploading the same audio under another name is the same request); the
    boundary is gone with the parsing."""
    normalized: dict[str, Any] = {}
    for name, value in payload.items():
        if isinstance(value, UploadedFile):
            normalized[name] = {"sha256": value.sha256, "bytes": len(value.data)}
        else:
            normalized[name] = value
    return normalized


def normalize_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """For record/replay: the normalized form of a raw multipart request (see `normalized_payload`)."""
    return normalized_payload(parse_multipart(content_type, body).payload())
