"""What an uploaded audio file is and how long it plays, read from its headers without decoding it.

WAV, MP3 (Xing/Info/VBRI headers or the first frame's bitrate), MP4/M4A (`mvhd`), Ogg (Vorbis/Opus: the
last page's granule position), FLAC (STREAMINFO) give a duration; WebM is recognised and its duration
estimated from the file size. Anything else is not audio. Every reader works on bytes in memory and never
raises on a truncated or lying header: it returns None and the caller estimates from the size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SUPPORTED_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# When a header gives no duration: a typical compressed speech bitrate (128 kbit/s).
ESTIMATED_BYTES_PER_SECOND = 16_000


@dataclass(frozen=True, slots=True)
class AudioInfo:
    format: str  # "wav", "mp3", "mp4", "ogg", "flac", "webm"
    duration_s: float
    estimated: bool  # True when the duration comes from the size, not from a header


def probe_audio(data: bytes) -> AudioInfo | None:
    """The file's format and duration, or None when the bytes are not a supported audio container."""
    for format_name, matches, read_duration in _READERS:
        if matches(data):
            duration = read_duration(data)
            if duration is None:
                return AudioInfo(format_name, len(data) / ESTIMATED_BYTES_PER_SECOND, True)
            return AudioInfo(format_name, duration, False)
    return None


# --- WAV ---------------------------------------------------------------------------------------------------
def _is_wav(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] in (b"RIFF", b"RIFX") and data[8:12] == b"WAVE"


def _wav_duration(data: bytes) -> float | None:
    order = "<" if data[:4] == b"RIFF" else ">"
    offset = 12
    byte_rate = 0
    while offset + 8 <= len(data):
        chunk_id = data[offset:offset + 4]
        (size,) = struct.unpack(order + "I", data[offset + 4:offset + 8])
        body = offset + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(data):
            byte_rate = struct.unpack(order + "I", data[body + 8:body + 12])[0]
        elif chunk_id == b"data":
            if not byte_rate:
                return None
            # A streamed WAV writes 0 or 0xFFFFFFFF here: then the data runs to the end of the file.
            available = len(data) - body
            data_size = available if size in (0, 0xFFFFFFFF) else min(size, available)
            return data_size / byte_rate
        offset = body + size + (size & 1)  # chunks are padded to an even size
    return None


# --- MP3 ---------------------------------------------------------------------------------------------------
_MPEG_BITRATES_KBPS = {
    # (version is MPEG-1, layer) -> bitrate index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True, slots=True)
class _MpegFrame:
    offset: int
    mpeg1: bool
    layer: int
    bitrate_kbps: int
    sample_rate: int
    mono: bool

    padded: bool

    @property
    def samples(self) -> int:
        if self.layer == 1:
            return 384
        return 1152 if self.mpeg1 or self.layer == 2 else 576

    @property
    def length(self) -> int:
        if self.layer == 1:
            return (12 * self.bitrate_kbps * 1000 // self.sample_rate + self.padded) * 4
        return self.samples // 8 * self.bitrate_kbps * 1000 // self.sample_rate + self.padded


def _id3_end(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:  # a "syncsafe" integer: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _mpeg_frame_at(data: bytes, offset: int) -> _MpegFrame | None:
    if offset + 4 > len(data) or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    b1, b2, b3 = data[offset + 1], data[offset + 2], data[offset + 3]
    version_bits, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if version_bits == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1, layer = version_bits == 3, 4 - layer_bits
    return _MpegFrame(
        offset=offset, mpeg1=mpeg1, layer=layer,
        bitrate_kbps=_MPEG_BITRATES_KBPS[(mpeg1, layer)][bitrate_index - 1],
        sample_rate=_MPEG_SAMPLE_RATES[version_bits][rate_index], mono=(b3 >> 6) == 3, padded=bool(b2 & 2),
    )


def _first_mpeg_frame(data: bytes) -> _MpegFrame | None:
    """The first frame, confirmed by the frame header that must follow it: a lone 0xFFE sync pattern turns
    up by chance in any binary file, two in a row at the right distance do not."""
    start = _id3_end(data)
    # Some encoders leave padding between the tag and the first frame; look a little way in, not forever.
    for offset in range(start, min(len(data) - 3, start + 4096)):
        frame = _mpeg_frame_at(data, offset)
        if frame is None:
            continue
        following = offset + frame.length
        if following + 4 > len(data):
            return frame if offset == start else None  # a single-frame file must start where it should
        if _mpeg_frame_at(data, following) is not None:
            return frame
    return None


def _is_mp3(data: bytes) -> bool:
    return _first_mpeg_frame(data) is not None


def _mp3_duration(data: bytes) -> float | None:
    frame = _first_mpeg_frame(data)
    if frame is None:
        return None
    # Xing/Info header (VBR and LAME CBR): sits after the side information of the first frame.
    side_info = (32 if not frame.mono else 17) if frame.mpeg1 else (17 if not frame.mono else 9)
    for tag_offset in (frame.offset + 4 + side_info, frame.offset + 36):  # 36: VBRI is at a fixed place
        tag = data[tag_offset:tag_offset + 4]
        if tag in (b"Xing", b"Info") and len(data) >= tag_offset + 12:
            (flags,) = struct.unpack(">I", data[tag_offset + 4:tag_offset + 8])
            if flags & 1:
                (frames,) = struct.unpack(">I", data[tag_offset + 8:tag_offset + 12])
                return frames * frame.samples / frame.sample_rate
        if tag == b"VBRI" and len(data) >= tag_offset + 18:
            (frames,) = struct.unpack(">I", data[tag_offset + 14:tag_offset + 18])
            return frames * frame.samples / frame.sample_rate
    # Constant bitrate: the audio bytes over the bitrate.
    return (len(data) - frame.offset) * 8 / (frame.bitrate_kbps * 1000)


# --- MP4 / M4A ---------------------------------------------------------------------------------------------
def _is_mp4(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp"


def _boxes(data: bytes, start: int, end: int):
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,) = struct.unpack(">Q", data[offset + 8:offset + 16])
            header = 16
        elif size == 0:
            size = end - offset
        if size < header:
            return
        yield kind, offset + header, min(offset + size, end)
        offset += size


def _mp4_duration(data: bytes) -> float | None:
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for inner, inner_body, inner_end in _boxes(data, body, end):
            if inner != b"mvhd" or inner_end - inner_body < 20:
                continue
            version = data[inner_body]
            if version == 1 and inner_end - inner_body >= 32:
                timescale, duration = struct.unpack(">IQ", data[inner_body + 20:inner_body + 32])
            else:
                timescale, duration = struct.unpack(">II", data[inner_body + 12:inner_body + 20])
            return duration / timescale if timescale else None
    return None


# --- Ogg (Vorbis, Opus) ------------------------------------------------------------------------------------
def _is_ogg(data: bytes) -> bool:
    return data[:4] == b"OggS"


def _ogg_duration(data: bytes) -> float | None:
    first_packet = data[28:28 + 19] if len(data) >= 47 else b""
    if first_packet.startswith(b"\x01vorbis") and len(first_packet) >= 16:
        (rate,) = struct.unpack("<I", first_packet[12:16])
        pre_skip = 0
    elif first_packet.startswith(b"OpusHead") and len(first_packet) >= 12:
        rate = 48000  # Opus granule positions always count 48 kHz samples
        (pre_skip,) = struct.unpack("<H", first_packet[10:12])
    else:
        return None
    last_page = data.rfind(b"OggS")
    if last_page < 0 or last_page + 14 > len(data) or not rate:
        return None
    (granule,) = struct.unpack("<q", data[last_page + 6:last_page + 14])
    if granule < 0:
        return None
    return max(0, granule - pre_skip) / rate


# --- FLAC --------------------------------------------------------------------------------------------------
def _is_flac(data: bytes) -> bool:
    return data[:4] == b"fLaC"


def _flac_duration(data: bytes) -> float | None:
    # The first metadata block is STREAMINFO; sample rate (20 bits) and total samples (36 bits) sit at 10..18.
    if len(data) < 8 + 18 or data[4] & 0x7F != 0:
        return None
    info = int.from_bytes(data[8 + 10:8 + 18], "big")
    sample_rate = info >> 44
    total_samples = info & ((1 << 36) - 1)
    if not sample_rate or not total_samples:
        return None
    return total_samples / sample_rate


# --- WebM (Matroska) ---------------------------------------------------------------------------------------
def _is_webm(data: bytes) -> bool:
    return data[:4] == b"\x1a\x45\xdf\xa3"


def _no_duration(_data: bytes) -> float | None:
    return None


_READERS = (
    ("wav", _is_wav, _wav_duration),
    ("mp4", _is_mp4, _mp4_duration),
    ("ogg", _is_ogg, _ogg_duration),
    ("flac", _is_flac, _flac_duration),
    ("webm", _is_webm, _no_duration),
    ("mp3", _is_mp3, _mp3_duration),  # last: a frame sync can be found by chance in other data
)
