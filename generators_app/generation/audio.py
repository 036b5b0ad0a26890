"""Speech to text: a transcript whose length follows the audio's duration, in every response format.

The words are prose from the token-exact text generator, spread over the audio at a speaking pace and cut
into segments at sentence ends (as whisper does, at most ~10 s each); srt and vtt are built from those
segments, verbose_json carries segments and/or words with their timestamps.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

import orjson

from generators_app.generation.text import text_generator
from generators_app.tokens import get_encoding

# A calm speaking pace: about 150 words a minute, which is about 3 tokens a second of English prose.
SPEECH_TOKENS_PER_SECOND = 3.0
# How OpenAI counts audio input for token-billed speech models (gpt-4o-transcribe): 10 tokens a second.
AUDIO_TOKENS_PER_SECOND = 10
MIN_DURATION_S = 0.1
_MAX_SEGMENT_S = 10.0
_SENTENCE_SLACK_TOKENS = 40
_WHISPER_WINDOW_S = 30.0

# whisper's languages: ISO-639-1 code -> the name verbose_json reports.
LANGUAGES: dict[str, str] = {
    "af": "afrikaans", "am": "amharic", "ar": "arabic", "as": "assamese", "az": "azerbaijani", "ba": "bashkir",
    "be": "belarusian", "bg": "bulgarian", "bn": "bengali", "bo": "tibetan", "br": "breton", "bs": "bosnian",
    "ca": "catalan", "cs": "czech", "cy": "welsh", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "et": "estonian", "eu": "basque", "fa": "persian", "fi": "finnish", "fo": "faroese",
    "fr": "french", "gl": "galician", "gu": "gujarati", "ha": "hausa", "haw": "hawaiian", "he": "hebrew",
    "hi": "hindi", "hr": "croatian", "ht": "haitian creole", "hu": "hungarian", "hy": "armenian",
    "id": "indonesian", "is": "icelandic", "it": "italian", "ja": "japanese", "jw": "javanese", "ka": "georgian",
    "kk": "kazakh", "km": "khmer", "kn": "kannada", "ko": "korean", "la": "latin", "lb": "luxembourgish",
    "ln": "lingala", "lo": "lao", "lt": "lithuanian", "lv": "latvian", "mg": "malagasy", "mi": "maori",
    "mk": "macedonian", "ml": "malayalam", "mn": "mongolian", "mr": "marathi", "ms": "malay", "mt": "maltese",
    "my": "myanmar", "ne": "nepali", "nl": "dutch", "nn": "nynorsk", "no": "norwegian", "oc": "occitan",
    "pa": "punjabi", "pl": "polish", "ps": "pashto", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sa": "sanskrit", "sd": "sindhi", "si": "sinhala", "sk": "slovak", "sl": "slovenian", "sn": "shona",
    "so": "somali", "sq": "albanian", "sr": "serbian", "su": "sundanese", "sv": "swedish", "sw": "swahili",
    "ta": "tamil", "te": "telugu", "tg": "tajik", "th": "thai", "tk": "turkmen", "tl": "tagalog", "tr": "turkish",
    "tt": "tatar", "uk": "ukrainian", "ur": "urdu", "uz": "uzbek", "vi": "vietnamese", "yi": "yiddish",
    "yo": "yoruba", "yue": "cantonese", "zh": "chinese",
}

JSON_CONTENT_TYPE = b"application/json"
TEXT_CONTENT_TYPE = b"text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str  # with the leading space whisper puts on every segment
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    duration: float
    segments: tuple[Segment, ...]
    output_tokens: int
    pieces: tuple[str, ...]  # the text token by token (logprobs)


def speech_token_count(duration_s: float) -> int:
    return max(1, round(duration_s * SPEECH_TOKENS_PER_SECOND))


def audio_token_count(duration_s: float) -> int:
    return max(1, math.ceil(duration_s * AUDIO_TOKENS_PER_SECOND))


def plan_transcript(duration_s: float, encoding_name: str, rng: random.Random) -> Transcript:
    """Text of a length that follows the duration, with word and segment timings inside [0, duration]."""
    target = speech_token_count(duration_s)
    pieces = text_generator(encoding_name).generate(target + _SENTENCE_SLACK_TOKENS, rng)
    pieces = pieces[:_sentence_cut(pieces, target)]
    text = "".join(pieces)
    words = text.split()
    weights = [len(word) + 1 for word in words]  # longer words take longer to say
    # Speech starts a moment in and ends a moment before the end, as real recordings do.
    lead = min(0.2, duration_s * 0.05)
    speaking = max(duration_s - 2 * lead, duration_s * 0.5)
    scale = speaking / sum(weights)
    timed: list[Word] = []
    clock = lead
    for word, weight in zip(words, weights, strict=True):
        length = weight * scale
        timed.append(Word(word, round(clock, 2), round(min(clock + length * 0.9, duration_s), 2)))
        clock += length
    return Transcript(text, duration_s, _segments(timed), len(pieces), tuple(pieces))


def _sentence_cut(pieces: list[str], target: int) -> int:
    """Where to end the text: at the sentence end nearest to `target` tokens when one is close enough (speech
    rarely stops mid-sentence), else at exactly `target`. A prefix of the pieces is still token-exact."""
    low, high = math.floor(target * 0.75), math.ceil(target * 1.35)
    ends = [i + 1 for i in range(low - 1 if low > 0 else 0, min(high, len(pieces)))
            if pieces[i].rstrip()[-1:] in (".", "?", "!")]
    return min(ends, key=lambda end: abs(end - target)) if ends else target


def _segments(words: list[Word]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        sentence_end = word.word[-1] in ".?!"
        if sentence_end or current[-1].end - current[0].start >= _MAX_SEGMENT_S:
            segments.append(_segment(len(segments), current))
            current = []
    if current:
        segments.append(_segment(len(segments), current))
    return tuple(segments)


def _segment(index: int, words: list[Word]) -> Segment:
    return Segment(index, words[0].start, words[-1].end, " " + " ".join(w.word for w in words), tuple(words))


# --- response formats --------------------------------------------------------------------------------------
def _timestamp(seconds: float, decimal_mark: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


def srt_text(transcript: Transcript) -> str:
    blocks = [
        f"{segment.id + 1}\n{_timestamp(segment.start, ',')} --> {_timestamp(segment.end, ',')}\n"
        f"{segment.text.strip()}\n"
        for segment in transcript.segments
    ]
    return "\n".join(blocks) + "\n"


def vtt_text(transcript: Transcript) -> str:
    cues = [
        f"{_timestamp(segment.start, '.')} --> {_timestamp(segment.end, '.')}\n{segment.text.strip()}\n"
        for segment in transcript.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues) + "\n"


@dataclass(frozen=True, slots=True)
class TranscriptRequest:
    """What shapes the answer, besides the transcript itself."""

    task: str  # "transcribe" | "translate"
    language: str  # the name verbose_json reports, e.g. "english"
    response_format: str
    granularities: tuple[str, ...]  # of verbose_json: "segment" and/or "word"
    temperature: float
    encoding_name: str
    usage_in_tokens: bool
    prompt_tokens: int  # text prompt tokens (token-billed models count them as input)
    include_logprobs: bool


def _usage(transcript: Transcript, request: TranscriptRequest) -> dict:
    if not request.usage_in_tokens:
        return {"type": "duration", "seconds": math.ceil(transcript.duration)}
    audio_tokens = audio_token_count(transcript.duration)
    input_tokens = audio_tokens + request.prompt_tokens
    return {
        "type": "tokens",
        "input_tokens": input_tokens,
        "input_token_details": {"text_tokens": request.prompt_tokens, "audio_tokens": audio_tokens},
        "output_tokens": transcript.output_tokens,
        "total_tokens": input_tokens + transcript.output_tokens,
    }


def _segment_json(segment: Segment, request: TranscriptRequest, rng: random.Random) -> dict:
    encoded = segment.text.encode("utf-8")
    return {
        "id": segment.id,
        "seek": int(segment.start // _WHISPER_WINDOW_S) * 3000,  # whisper's seek counts 10 ms frames
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": get_encoding(request.encoding_name).encode_ordinary(segment.text),
        "temperature": request.temperature,
        "avg_logprob": round(-rng.uniform(0.1, 0.4), 6),
        "compression_ratio": round(len(encoded) / len(zlib.compress(encoded)), 6),
        "no_speech_prob": round(rng.uniform(0.0, 0.02), 6),
    }


def transcript_answer(transcript: Transcript, request: TranscriptRequest, rng: random.Random) -> tuple[bytes, bytes]:
    """The body and its content type for the requested response format."""
    fmt = request.response_format
    if fmt == "text":
        return (transcript.text + "\n").encode("utf-8"), TEXT_CONTENT_TYPE
    if fmt == "srt":
        return srt_text(transcript).encode("utf-8"), TEXT_CONTENT_TYPE
    if fmt == "vtt":
        return vtt_text(transcript).encode("utf-8"), TEXT_CONTENT_TYPE
    if fmt == "verbose_json":
        body: dict = {
            "task": request.task,
            "language": request.language,
            "duration": round(transcript.duration, 2),
            "text": transcript.text,
        }
        granularities = request.granularities or ("segment",)
        if "word" in granularities:
            body["words"] = [
                {"word": w.word, "start": w.start, "end": w.end}
                for segment in transcript.segments for w in segment.words
            ]
        if "segment" in granularities:
            body["segments"] = [_segment_json(segment, request, rng) for segment in transcript.segments]
        body["usage"] = _usage(transcript, request)
        return orjson.dumps(body), JSON_CONTENT_TYPE
    body = {"text": transcript.text}
    if request.include_logprobs:
        body["logprobs"] = [
            {"token": piece, "logprob": round(-rng.uniform(0.0, 0.3), 6), "bytes": list(piece.encode("utf-8"))}
            for piece in transcript.pieces
        ]
    body["usage"] = _usage(transcript, request)
    return orjson.dumps(body), JSON_CONTENT_TYPE
