"""Durations read from audio headers: WAV, MP3 (CBR and Xing), M4A, Ogg Vorbis/Opus, FLAC; WebM and broken
headers fall back to an estimate from the size; anything else is not audio."""

from __future__ import annotations

import struct

import pytest

from generators_app.generation.audio_probe import ESTIMATED_BYTES_PER_SECOND, probe_audio
from generators_app.generation.png import draw_png
from tests.support.media import (
    make_cbr_mp3,
    make_flac,
    make_m4a,
    make_ogg_opus,
    make_ogg_vorbis,
    make_vbr_mp3,
    make_wav,
)


@pytest.mark.parametrize(
    ("seconds", "rate", "channels", "width"),
    [(1.0, 16_000, 1, 2), (2.5, 44_100, 2, 2), (0.75, 8_000, 1, 1), (3.2, 48_000, 2, 2)],
)
def test_wav_duration_from_the_data_chunk(seconds: float, rate: int, channels: int, width: int) -> None:
    info = probe_audio(make_wav(seconds, rate, channels, width))
    assert info is not None and info.format == "wav" and not info.estimated
    assert info.duration_s == pytest.approx(seconds, abs=1 / rate)


def test_streamed_wav_with_an_unknown_data_size_runs_to_the_end_of_the_file() -> None:
    wav = bytearray(make_wav(2.0))
    data_at = wav.index(b"data")
    wav[data_at + 4:data_at + 8] = struct.pack("<I", 0xFFFFFFFF)
    info = probe_audio(bytes(wav))
    assert info is not None and info.duration_s == pytest.approx(2.0, abs=0.001)


def test_wav_whose_data_chunk_lies_about_its_size_is_cut_to_what_is_there() -> None:
    wav = make_wav(3.0)
    info = probe_audio(wav[: len(wav) // 3])
    assert info is not None and info.duration_s == pytest.approx(1.0, abs=0.01)


def test_cbr_mp3_duration_from_the_bitrate() -> None:
    frames = 200
    info = probe_audio(make_cbr_mp3(frames, bitrate_kbps=128, rate=44_100))
    assert info is not None and info.format == "mp3" and not info.estimated
    # each frame holds 1152 samples
    assert info.duration_s == pytest.approx(frames * 1152 / 44_100, rel=0.01)


def test_vbr_mp3_duration_from_the_xing_frame_count() -> None:
    info = probe_audio(make_vbr_mp3(declared_frames=5000))
    assert info is not None and info.duration_s == pytest.approx(5000 * 1152 / 44_100)


@pytest.mark.parametrize("version", [0, 1])
def test_m4a_duration_from_mvhd(version: int) -> None:
    info = probe_audio(make_m4a(93.5, version=version))
    assert info is not None and info.format == "mp4" and info.duration_s == pytest.approx(93.5)


def test_ogg_vorbis_and_opus_durations_from_the_last_granule() -> None:
    vorbis = probe_audio(make_ogg_vorbis(12.0, rate=44_100))
    assert vorbis is not None and vorbis.format == "ogg" and vorbis.duration_s == pytest.approx(12.0)
    opus = probe_audio(make_ogg_opus(7.25))
    assert opus is not None and opus.duration_s == pytest.approx(7.25)  # pre-skip removed


def test_flac_duration_from_streaminfo() -> None:
    info = probe_audio(make_flac(42.0))
    assert info is not None and info.format == "flac" and info.duration_s == pytest.approx(42.0)


def test_webm_is_audio_with_a_duration_estimated_from_its_size() -> None:
    webm = b"\x1a\x45\xdf\xa3" + b"\x00" * 63_996
    info = probe_audio(webm)
    assert info is not None and info.format == "webm" and info.estimated
    assert info.duration_s == pytest.approx(len(webm) / ESTIMATED_BYTES_PER_SECOND)


def test_a_wav_header_without_a_format_chunk_is_estimated_from_the_size() -> None:
    broken = b"RIFF\x00\x00\x00\x00WAVEdata\x10\x00\x00\x00" + b"\x00" * 16
    info = probe_audio(broken)
    assert info is not None and info.estimated


@pytest.mark.parametrize(
    "data",
    [
        b"just some text, certainly not audio\n" * 100,
        b'{"prompt": "a json document"}',
        b"\x00" * 4096,
        draw_png(1, 64, 64),
        b"%PDF-1.7\n" + bytes(range(256)) * 40,
    ],
    ids=["text", "json", "zeros", "png", "binary"],
)
def test_other_files_are_not_audio(data: bytes) -> None:
    assert probe_audio(data) is None


def test_a_lone_frame_sync_inside_binary_data_is_not_taken_for_mp3() -> None:
    # 0xFFFB90 is a valid MPEG-1 Layer III header, but no second frame follows it at the frame distance.
    data = b"\x01\x02\x03" + bytes([0xFF, 0xFB, 0x90, 0x00]) + b"\x07" * 2000
    assert probe_audio(data) is None
