"""multipart/form-data parsing and the normalized form record/replay matches on."""

from __future__ import annotations

import httpx
import pytest

from generators_app.errors import ApiError
from generators_app.multipart_form import (
    AUDIO_MAX_BODY_BYTES,
    UploadedFile,
    normalize_multipart,
    parse_audio_form,
    parse_multipart,
)


def _encode(data: dict, files: dict, boundary: str | None = None) -> tuple[str, bytes]:
    """A body exactly as httpx (and so the openai SDK) sends it."""
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"} if boundary else {}
    request = httpx.Request("POST", "http://x/", data=data, files=files, headers=headers)
    return request.headers["content-type"], request.read()


def test_fields_files_and_array_fields() -> None:
    content_type, body = _encode(
        {"model": "whisper", "response_format": "verbose_json", "timestamp_granularities[]": ["word", "segment"]},
        {"file": ("speech.wav", b"RIFF-bytes", "audio/wav")},
    )
    form = parse_multipart(content_type, body)
    assert form.fields == {"model": "whisper", "response_format": "verbose_json",
                           "timestamp_granularities": ["word", "segment"]}
    upload = form.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("speech.wav", "audio/wav", b"RIFF-bytes")


def test_binary_file_content_survives_byte_for_byte() -> None:
    data = bytes(range(256)) * 50 + b"\r\n--not-the-boundary\r\n" + bytes(range(256))
    content_type, body = _encode({}, {"file": ("a.bin", data)})
    assert parse_multipart(content_type, body).files["file"].data == data


def test_normalized_form_ignores_the_boundary_and_the_file_name() -> None:
    first = normalize_multipart(*_encode({"language": "en"}, {"file": ("a.wav", b"audio")}, boundary="aaaa1111"))
    second = normalize_multipart(*_encode({"language": "en"}, {"file": ("other.wav", b"audio")}, boundary="b2b2"))
    assert first == second
    assert first["file"] == {"sha256": UploadedFile("", "", b"audio").sha256, "bytes": 5}
    assert first["language"] == "en"


def test_normalized_form_differs_with_the_file_or_a_field() -> None:
    base = normalize_multipart(*_encode({"language": "en"}, {"file": ("a.wav", b"audio")}))
    assert normalize_multipart(*_encode({"language": "en"}, {"file": ("a.wav", b"audio!")})) != base
    assert normalize_multipart(*_encode({"language": "fr"}, {"file": ("a.wav", b"audio")})) != base


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b'{"file": "x"}', "invalid_content_type"),
        ("", b"", "invalid_content_type"),
        ("multipart/form-data", b"--x\r\n", "invalid_multipart"),
        ("multipart/form-data; boundary=abc",
         b'--abc\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue', "invalid_multipart"),  # no closing
        ("multipart/form-data; boundary=abc", b"--abc\r\nno header end", "invalid_multipart"),
        ("multipart/form-data; boundary=abc",
         b"--abc\r\nContent-Type: text/plain\r\n\r\nv\r\n--abc--\r\n", "invalid_multipart"),  # no name
    ],
    ids=["json", "no-content-type", "no-boundary", "truncated", "bad-headers", "no-disposition"],
)
def test_malformed_bodies_are_400(content_type: str, body: bytes, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_multipart(content_type, body)
    assert caught.value.status == 400
    assert caught.value.body["error"]["code"] == code


def test_bodies_over_25_mib_are_413() -> None:
    headers = [(b"content-type", b"multipart/form-data; boundary=abc")]
    with pytest.raises(ApiError) as caught:
        parse_audio_form(headers, b"x" * (AUDIO_MAX_BODY_BYTES + 1))
    assert caught.value.status == 413
    assert caught.value.body["error"]["message"].startswith("Maximum content size limit (26214400) exceeded")
