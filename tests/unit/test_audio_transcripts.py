"""Transcripts: length follows duration, timings stay inside the audio, and every response format is what
its real parser (srt, webvtt-py, JSON) reads back."""

from __future__ import annotations

import itertools
import random

import orjson
import pytest
import srt
import webvtt

from generators_app.generation.audio import (
    AUDIO_TOKENS_PER_SECOND,
    TranscriptRequest,
    plan_transcript,
    transcript_answer,
)
from generators_app.tokens import count_text

ENCODING = "cl100k_base"


def _request(response_format: str, granularities: tuple[str, ...] = (), task: str = "transcribe",
             tokens: bool = False) -> TranscriptRequest:
    return TranscriptRequest(task=task, language="english", response_format=response_format,
                             granularities=granularities, temperature=0.0, encoding_name=ENCODING,
                             usage_in_tokens=tokens, prompt_tokens=4, include_logprobs=tokens)


@pytest.mark.parametrize("seconds", [0.2, 2.0, 9.0, 45.0, 300.0])
def test_text_length_follows_duration_and_is_token_exact(seconds: float) -> None:
    transcript = plan_transcript(seconds, ENCODING, random.Random(3))
    assert count_text(ENCODING, transcript.text) == transcript.output_tokens
    # about 3 tokens a second of speech: within a sentence of the target
    assert 0.7 * 3 * seconds - 1 <= transcript.output_tokens <= 1.4 * 3 * seconds + 1


def test_longer_audio_gives_longer_text() -> None:
    short = plan_transcript(5.0, ENCODING, random.Random(1))
    long = plan_transcript(60.0, ENCODING, random.Random(1))
    assert len(long.text) > 5 * len(short.text)


def test_timings_are_ordered_and_inside_the_audio() -> None:
    transcript = plan_transcript(37.0, ENCODING, random.Random(8))
    words = [w for s in transcript.segments for w in s.words]
    assert " ".join(w.word for w in words) == transcript.text
    assert all(0 <= w.start <= w.end <= 37.0 for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert all(s.end - s.start <= 12.0 for s in transcript.segments)  # whisper-sized segments
    assert [s.id for s in transcript.segments] == list(range(len(transcript.segments)))


def test_srt_parses_and_matches_the_segments() -> None:
    transcript = plan_transcript(25.0, ENCODING, random.Random(2))
    body, content_type = transcript_answer(transcript, _request("srt"), random.Random(0))
    assert content_type.startswith(b"text/plain")
    subtitles = list(srt.parse(body.decode()))
    assert [s.index for s in subtitles] == [seg.id + 1 for seg in transcript.segments]
    assert [s.content for s in subtitles] == [seg.text.strip() for seg in transcript.segments]
    assert subtitles[-1].end.total_seconds() == pytest.approx(transcript.segments[-1].end, abs=0.001)


def test_vtt_parses_and_matches_the_segments() -> None:
    transcript = plan_transcript(25.0, ENCODING, random.Random(2))
    body, _ = transcript_answer(transcript, _request("vtt"), random.Random(0))
    captions = webvtt.from_string(body.decode()).captions
    assert [c.text for c in captions] == [seg.text.strip() for seg in transcript.segments]
    assert captions[0].start_in_seconds == int(transcript.segments[0].start)


def test_text_and_json() -> None:
    transcript = plan_transcript(4.0, ENCODING, random.Random(5))
    text, _ = transcript_answer(transcript, _request("text"), random.Random(0))
    assert text.decode() == transcript.text + "\n"
    body, content_type = transcript_answer(transcript, _request("json"), random.Random(0))
    assert content_type == b"application/json"
    assert orjson.loads(body) == {"text": transcript.text, "usage": {"type": "duration", "seconds": 4}}


def test_token_billed_json_reports_audio_tokens_and_logprobs() -> None:
    transcript = plan_transcript(6.0, ENCODING, random.Random(5))
    body = orjson.loads(transcript_answer(transcript, _request("json", tokens=True), random.Random(0))[0])
    usage = body["usage"]
    assert usage["input_token_details"] == {"text_tokens": 4, "audio_tokens": 6 * AUDIO_TOKENS_PER_SECOND}
    assert usage["output_tokens"] == transcript.output_tokens == len(body["logprobs"])
    assert "".join(entry["token"] for entry in body["logprobs"]) == transcript.text


@pytest.mark.parametrize(
    ("granularities", "keys"),
    [((), {"segments"}), (("word",), {"words"}), (("segment",), {"segments"}),
     (("word", "segment"), {"words", "segments"})],
)
def test_verbose_json_carries_what_the_granularities_ask(granularities: tuple[str, ...], keys: set[str]) -> None:
    transcript = plan_transcript(14.0, ENCODING, random.Random(4))
    body = orjson.loads(transcript_answer(transcript, _request("verbose_json", granularities), random.Random(0))[0])
    assert {"segments", "words"} & set(body) == keys
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 14.0
    if "segments" in body:
        segment = body["segments"][0]
        assert segment["text"].startswith(" ") and segment["tokens"]
        assert count_text(ENCODING, segment["text"]) == len(segment["tokens"])
    if "words" in body:
        assert " ".join(w["word"] for w in body["words"]) == body["text"]


def test_same_random_state_same_transcript() -> None:
    first = plan_transcript(10.0, ENCODING, random.Random(99))
    again = plan_transcript(10.0, ENCODING, random.Random(99))
    assert first == again
