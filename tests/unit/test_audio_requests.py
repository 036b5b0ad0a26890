"""Audio requests: what the parsed form becomes, and each bad input's 4xx."""

from __future__ import annotations

import orjson
import pytest

from generators_app.catalogue import get_model
from generators_app.errors import ApiError
from generators_app.generation.audio import AUDIO_TOKENS_PER_SECOND
from generators_app.media_requests import plan_audio
from generators_app.multipart_form import UploadedFile
from generators_app.tokens import count_text
from tests.support.media import make_m4a, make_wav

WHISPER = get_model("whisper")
GPT_4O_TRANSCRIBE = get_model("gpt-4o-transcribe")
WAV = make_wav(4.0)


def _form(data: bytes = WAV, **fields: object) -> dict:
    return {"file": UploadedFile("speech.wav", "audio/wav", data), "model": "whisper", **fields}


def test_plan_counts_audio_seconds_and_prompt_tokens() -> None:
    plan = plan_audio("transcribe", _form(prompt="Names: Zoë, Ada."), WHISPER)
    prompt_tokens = count_text(WHISPER.tokenizer, "Names: Zoë, Ada.")
    assert plan.prompt_tokens == 4 * AUDIO_TOKENS_PER_SECOND + prompt_tokens
    assert plan.transcript.duration == pytest.approx(4.0)


def test_same_file_same_transcript_other_file_other_transcript() -> None:
    first = plan_audio("transcribe", _form(), WHISPER).transcript.text
    assert plan_audio("transcribe", _form(), WHISPER).transcript.text == first
    assert plan_audio("transcribe", _form(make_wav(4.0, rate=22_050)), WHISPER).transcript.text != first


def test_language_and_task_show_in_verbose_json() -> None:
    plan = plan_audio("transcribe", _form(language="de", response_format="verbose_json"), WHISPER)
    assert orjson.loads(plan.answer()[0])["language"] == "german"
    translated = plan_audio("translate", _form(language="de", response_format="verbose_json"), WHISPER)
    body = orjson.loads(translated.answer()[0])
    assert (body["task"], body["language"]) == ("translate", "english")


def test_other_containers_are_accepted() -> None:
    plan = plan_audio("transcribe", _form(make_m4a(30.0)), GPT_4O_TRANSCRIBE)
    assert plan.transcript.duration == pytest.approx(30.0)
    body = orjson.loads(plan.answer()[0])
    assert body["usage"]["input_token_details"]["audio_tokens"] == 300


@pytest.mark.parametrize(
    ("model", "form", "param", "code"),
    [
        (WHISPER, {"model": "whisper"}, "file", "missing_required_parameter"),
        (WHISPER, {"file": "not a file"}, "file", "invalid_type"),
        (WHISPER, _form(b""), "file", "empty_file"),
        (WHISPER, _form(b"hello, I am plain text and not audio at all"), "file", "invalid_file_format"),
        (WHISPER, _form(make_wav(0.05)), "file", "audio_too_short"),
        (WHISPER, _form(response_format="xml"), "response_format", "invalid_value"),
        (GPT_4O_TRANSCRIBE, _form(response_format="srt"), "response_format", "unsupported_value"),
        (GPT_4O_TRANSCRIBE, _form(response_format="verbose_json"), "response_format", "unsupported_value"),
        (WHISPER, _form(language="english"), "language", "invalid_value"),
        (WHISPER, _form(temperature="hot"), "temperature", "invalid_type"),
        (WHISPER, _form(temperature="1.5"), "temperature", "invalid_value"),
        (WHISPER, _form(timestamp_granularities=["word"]), "timestamp_granularities", "invalid_value"),
        (WHISPER, _form(response_format="verbose_json", timestamp_granularities=["char"]),
         "timestamp_granularities", "invalid_value"),
        (WHISPER, _form(prompt=["a", "b"]), "prompt", "invalid_type"),
        (WHISPER, _form(stream="true"), "stream", "unsupported_value"),
    ],
    ids=["no-file", "file-as-text", "empty", "not-audio", "too-short", "bad-format", "srt-on-4o", "verbose-on-4o",
         "language-name", "temperature-text", "temperature-range", "granularity-without-verbose",
         "bad-granularity", "prompt-list", "stream"],
)
def test_bad_audio_requests_are_400(model, form: dict, param: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        plan_audio("transcribe", form, model)
    error = caught.value.body["error"]
    assert caught.value.status == 400
    assert (error["param"], error["code"]) == (param, code)


def test_messages_match_openai_s() -> None:
    with pytest.raises(ApiError) as caught:
        plan_audio("transcribe", _form(response_format="verbose_json"), GPT_4O_TRANSCRIBE)
    assert caught.value.body["error"]["message"] == (
        "response_format 'verbose_json' is not compatible with model 'gpt-4o-transcribe'. Use 'json' or 'text' "
        "instead.")
    with pytest.raises(ApiError) as caught:
        plan_audio("transcribe", _form(b"not audio"), WHISPER)
    assert caught.value.body["error"]["message"] == (
        "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', "
        "'wav', 'webm']")
