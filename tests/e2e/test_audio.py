"""Transcriptions and translations through the real server with the openai SDK, with a WAV the test makes:
every response format (srt and vtt read by real parsers), text that follows the duration, and each bad
input's 4xx."""

from __future__ import annotations

import httpx
import openai
import pytest
import srt
import webvtt

from tests.support.media import make_wav

TRANSCRIPTIONS = "/openai/deployments/{deployment}/audio/transcriptions?api-version=2024-10-21"
SECONDS = 12.0
WAV = make_wav(SECONDS)


def _check_srt(text: str) -> list[srt.Subtitle]:
    subtitles = list(srt.parse(text))
    assert subtitles and [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert all(s.start < s.end for s in subtitles)
    assert subtitles[-1].end.total_seconds() <= SECONDS
    return subtitles


def _check_vtt(text: str) -> list[webvtt.Caption]:
    captions = webvtt.from_string(text).captions
    assert captions and all(c.start_in_seconds <= c.end_in_seconds <= SECONDS for c in captions)
    return captions


@pytest.mark.parametrize("client_name", ["azure_client", "openai_client", "aoai_v1_client"])
def test_transcription_in_every_response_format(client_name: str, request: pytest.FixtureRequest) -> None:
    client: openai.OpenAI = request.getfixturevalue(client_name)
    create = client.audio.transcriptions.create
    as_json = create(model="whisper", file=("speech.wav", WAV, "audio/wav"))
    assert as_json.text and as_json.usage.seconds == SECONDS
    text = create(model="whisper", file=("speech.wav", WAV), response_format="text")
    assert text == as_json.text + "\n"  # the same audio gives the same words in every format
    subtitles = _check_srt(create(model="whisper", file=("speech.wav", WAV), response_format="srt"))
    assert " ".join(s.content for s in subtitles) == as_json.text
    captions = _check_vtt(create(model="whisper", file=("speech.wav", WAV), response_format="vtt"))
    assert " ".join(c.text for c in captions) == as_json.text
    verbose = create(model="whisper", file=("speech.wav", WAV), response_format="verbose_json")
    assert verbose.duration == SECONDS and verbose.language == "english" and verbose.text == as_json.text
    assert [s.text.strip() for s in verbose.segments] == [s.content for s in subtitles]
    assert verbose.words is None


def test_verbose_json_word_and_segment_timestamps(azure_client: openai.AzureOpenAI) -> None:
    verbose = azure_client.audio.transcriptions.create(
        model="whisper", file=("speech.wav", WAV), response_format="verbose_json", language="fr",
        timestamp_granularities=["word", "segment"], temperature=0.2, prompt="A weather report.",
    )
    assert verbose.language == "french"
    assert " ".join(w.word for w in verbose.words) == verbose.text
    assert all(0 <= w.start <= w.end <= SECONDS for w in verbose.words)
    assert verbose.segments[0].start == verbose.words[0].start
    assert {s.temperature for s in verbose.segments} == {0.2}
    words_only = azure_client.audio.transcriptions.create(
        model="whisper", file=("speech.wav", WAV), response_format="verbose_json", timestamp_granularities=["word"])
    assert words_only.words and words_only.segments is None


def test_translation_in_every_response_format(azure_client: openai.AzureOpenAI) -> None:
    create = azure_client.audio.translations.create
    as_json = create(model="whisper", file=("rede.wav", WAV))
    assert as_json.text
    assert create(model="whisper", file=("rede.wav", WAV), response_format="text") == as_json.text + "\n"
    _check_srt(create(model="whisper", file=("rede.wav", WAV), response_format="srt"))
    _check_vtt(create(model="whisper", file=("rede.wav", WAV), response_format="vtt"))
    verbose = create(model="whisper", file=("rede.wav", WAV), response_format="verbose_json")
    assert (verbose.task, verbose.language, verbose.duration) == ("translate", "english", SECONDS)
    assert verbose.segments


def test_text_length_follows_the_duration(openai_client: openai.OpenAI) -> None:
    short = openai_client.audio.transcriptions.create(model="whisper", file=("a.wav", make_wav(3.0)))
    long = openai_client.audio.transcriptions.create(model="whisper", file=("b.wav", make_wav(60.0, rate=8000)))
    assert len(long.text.split()) > 8 * len(short.text.split())
    verbose = openai_client.audio.transcriptions.create(
        model="whisper", file=("b.wav", make_wav(60.0, rate=8000)), response_format="verbose_json")
    assert verbose.duration == 60.0 and verbose.segments[-1].end <= 60.0


def test_gpt_4o_transcribe_reports_token_usage(azure_client: openai.AzureOpenAI) -> None:
    result = azure_client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", WAV),
                                                      include=["logprobs"])
    assert result.usage.type == "tokens"
    assert result.usage.input_token_details.audio_tokens == SECONDS * 10
    assert result.usage.output_tokens == len(result.logprobs)
    assert azure_client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("a.wav", WAV),
                                                    response_format="text").endswith("\n")


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"file": ("empty.wav", b"")}, "file", "empty_file"),
        ({"file": ("notes.wav", b"these are meeting notes, not audio\n" * 20)}, "file", "invalid_file_format"),
        ({"file": ("click.wav", make_wav(0.05))}, "file", "audio_too_short"),
        ({"file": ("a.wav", WAV), "response_format": "xml"}, "response_format", "invalid_value"),
        ({"file": ("a.wav", WAV), "language": "klingon"}, "language", "invalid_value"),
        ({"file": ("a.wav", WAV), "temperature": 3}, "temperature", "invalid_value"),
        ({"file": ("a.wav", WAV), "timestamp_granularities": ["word"]}, "timestamp_granularities", "invalid_value"),
    ],
    ids=["empty", "not-audio", "too-short", "format", "language", "temperature", "granularities-without-verbose"],
)
def test_bad_audio_inputs_are_400(azure_client: openai.AzureOpenAI, kwargs: dict, param: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.audio.transcriptions.create(model="whisper", **kwargs)
    assert caught.value.status_code == 400
    assert (caught.value.param, caught.value.code) == (param, code)


def test_model_limits_are_400(azure_client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", WAV),
                                                 response_format="srt")
    assert caught.value.code == "unsupported_value"
    assert "Use 'json' or 'text' instead." in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.audio.translations.create(model="gpt-4o-transcribe", file=("a.wav", WAV))
    assert caught.value.code == "OperationNotSupported"
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.audio.transcriptions.create(model="gpt-4o-mini", file=("a.wav", WAV))
    assert caught.value.code == "OperationNotSupported"


def test_a_body_over_25_mib_is_413(http: httpx.Client, api_key: str) -> None:
    big = make_wav(1.0) + b"\x00" * (25 * 1024 * 1024)
    response = http.post(TRANSCRIPTIONS.format(deployment="whisper"), files={"file": ("big.wav", big)},
                         data={"model": "whisper"}, headers={"api-key": api_key})
    assert response.status_code == 413
    assert response.json()["error"]["message"].startswith("Maximum content size limit (26214400) exceeded")


def test_malformed_bodies_are_400(http: httpx.Client, api_key: str) -> None:
    url = TRANSCRIPTIONS.format(deployment="whisper")
    headers = {"api-key": api_key}
    as_json = http.post(url, json={"file": "speech.wav"}, headers=headers)
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "invalid_content_type"
    no_file = http.post(url, files={"language": (None, "en")}, headers=headers)
    assert no_file.status_code == 400 and no_file.json()["error"]["code"] == "missing_required_parameter"
    truncated = http.post(url, content=b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                          b"\r\nRIFF", headers={**headers, "content-type": "multipart/form-data; boundary=xyz"})
    assert truncated.status_code == 400 and truncated.json()["error"]["code"] == "invalid_multipart"
    unauthorized = http.post(url, files={"file": ("a.wav", WAV)})
    assert unauthorized.status_code == 401
