"""Audio files the tests make themselves (no fixtures on disk): a real WAV written with the standard library,
and the smallest valid headers of the other containers, built from their specifications."""

from __future__ import annotations

import io
import math
import struct
import wave


def make_wav(seconds: float, rate: int = 16_000, channels: int = 1, sample_width: int = 2) -> bytes:
    """A tone of `seconds` seconds, written by the standard library's wave module."""
    frames = round(seconds * rate)
    amplitude = 2 ** (8 * sample_width - 1) - 1
    if sample_width == 1:
        # 8-bit WAV samples are unsigned
        samples = bytes(128 + int(100 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames))
    else:
        one = [int(amplitude * 0.3 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames)]
        samples = b"".join(struct.pack("<h", value) for value in one)
    if channels > 1:
        width = sample_width
        samples = b"".join(samples[i:i + width] * channels for i in range(0, len(samples), width))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        writer.writeframes(samples)
    return buffer.getvalue()


# --- MP3: MPEG-1 Layer III frames --------------------------------------------------------------------------
_MP3_BITRATE_INDEX = {32: 1, 64: 5, 128: 9, 320: 14}
_MP3_RATE_INDEX = {44100: 0, 48000: 1, 32000: 2}


def mp3_frame(bitrate_kbps: int = 128, rate: int = 44_100, payload: bytes = b"") -> bytes:
    """One MPEG-1 Layer III frame (stereo, no CRC, no padding) of the right length, zero-filled after
    `payload` (which starts right after the 4-byte header)."""
    header = bytes([0xFF, 0xFB, (_MP3_BITRATE_INDEX[bitrate_kbps] << 4) | (_MP3_RATE_INDEX[rate] << 2), 0x00])
    length = 144 * bitrate_kbps * 1000 // rate
    return (header + payload).ljust(length, b"\x00")


def make_cbr_mp3(frames: int, bitrate_kbps: int = 128, rate: int = 44_100, id3: bool = True) -> bytes:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 10]) + b"\x00" * 10 if id3 else b""
    return tag + mp3_frame(bitrate_kbps, rate) * frames


def make_vbr_mp3(declared_frames: int, present_frames: int = 3, rate: int = 44_100) -> bytes:
    """A Xing header (frame count flag) in the first frame: the duration comes from the declared count."""
    side_info = b"\x00" * 32  # MPEG-1 stereo side information
    xing = b"Xing" + struct.pack(">II", 1, declared_frames)
    return mp3_frame(128, rate, side_info + xing) + mp3_frame(128, rate) * present_frames


# --- MP4 / M4A ---------------------------------------------------------------------------------------------
def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def make_m4a(seconds: float, timescale: int = 44_100, version: int = 0) -> bytes:
    duration = round(seconds * timescale)
    if version == 1:
        mvhd = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, timescale, duration) + b"\x00" * 80
    else:
        mvhd = bytes([0, 0, 0, 0]) + struct.pack(">IIII", 0, 0, timescale, duration) + b"\x00" * 80
    ftyp = _box(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42isom")
    return ftyp + _box(b"free", b"") + _box(b"moov", _box(b"mvhd", mvhd)) + _box(b"mdat", b"\x00" * 64)


# --- Ogg ---------------------------------------------------------------------------------------------------
def _ogg_page(granule: int, sequence: int, packet: bytes, header_type: int = 0) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = b"OggS" + bytes([0, header_type]) + struct.pack("<qIII", granule, 1, sequence, 0)
    return header + bytes([len(segments)]) + bytes(segments) + packet


def make_ogg_vorbis(seconds: float, rate: int = 48_000) -> bytes:
    identification = b"\x01vorbis" + struct.pack("<IBIiii", 0, 2, rate, 0, 128000, 0) + b"\xb8\x01"
    return (_ogg_page(0, 0, identification, header_type=2) + _ogg_page(0, 1, b"\x03vorbis" + b"\x00" * 20)
            + _ogg_page(round(seconds * rate), 2, b"\x00" * 100, header_type=4))


def make_ogg_opus(seconds: float, pre_skip: int = 312) -> bytes:
    head = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", pre_skip, 16_000, 0, 0)
    last = round(seconds * 48_000) + pre_skip
    return (_ogg_page(0, 0, head, header_type=2) + _ogg_page(0, 1, b"OpusTags" + b"\x00" * 8)
            + _ogg_page(last, 2, b"\x00" * 100, header_type=4))


# --- FLAC --------------------------------------------------------------------------------------------------
def make_flac(seconds: float, rate: int = 44_100) -> bytes:
    total = round(seconds * rate)
    # STREAMINFO: min/max block size, min/max frame size, then rate(20) channels-1(3) bps-1(5) samples(36), MD5.
    packed = (rate << 44) | (1 << 41) | (15 << 36) | total
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\x00" * 16
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + b"\xff\xf8" + b"\x00" * 32
