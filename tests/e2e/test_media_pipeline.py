"""Images and audio go through the same pipeline as chat: request-rate limits, latency profiles (per audio
second for audio), faults, and record/replay matched on the file's hash and the form fields."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.media import make_wav
from tests.support.server import SimulatorServer

CONFIG = """
limit_profiles:
  - name: media-rpm
    tokens_per_minute: 1000000
    requests_per_minute: 6
    request_window_s: 10
latency_profiles:
  - name: audio-per-second
    request_ms: {{mean: 50, std: 0}}
    per_input_token_ms: 3
recording_sets:
  - name: audio-set
    timing_factor: 0
deployments:
  - name: whisper-limited
    model: whisper
    limit_profile: media-rpm
  - name: dall-e-limited
    model: dall-e-3
    limit_profile: media-rpm
  - name: whisper-slow
    model: whisper
    latency_profile: audio-per-second
  - name: whisper
    model: whisper
    mode: record
    recording_set: audio-set
    upstream_endpoint: {upstream}
    upstream_key: {upstream_key}
  - name: whisper-replay
    model: whisper
    mode: replay
    recording_set: audio-set
"""


@pytest.fixture(scope="module")
def shaped(simulator: SimulatorServer, api_key: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[openai.AzureOpenAI]:
    """A second server whose deployments carry profiles; its record deployment forwards to the session one."""
    config: Path = tmp_path_factory.mktemp("media") / "config.yaml"
    config.write_text(CONFIG.format(upstream=simulator.base_url, upstream_key=api_key))
    # Its own limiter keys: with a shared Redis, a rerun within the window must not inherit the last run's counts.
    env = {"SIMULATOR_CONFIG": str(config), "SIMULATOR_LIMITER_KEY_PREFIX": f"test-media-{secrets.token_hex(4)}"}
    with SimulatorServer(api_key=api_key, extra_env=env) as server:
        client = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=api_key, api_version="2024-10-21",
                                    max_retries=0)
        yield client
        client.close()


def test_request_rate_limits_apply_to_images_and_audio(shaped: openai.AzureOpenAI) -> None:
    wav = make_wav(2.0)
    shaped.audio.transcriptions.create(model="whisper-limited", file=("a.wav", wav))
    with pytest.raises(openai.RateLimitError) as caught:
        shaped.audio.transcriptions.create(model="whisper-limited", file=("a.wav", wav))
    assert "Transcriptions_Create" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) >= 1
    shaped.images.generate(model="dall-e-limited", prompt="a fox")
    with pytest.raises(openai.RateLimitError) as caught:
        shaped.images.generate(model="dall-e-limited", prompt="a fox")
    assert "ImageGenerations_Create" in caught.value.message


def _timed_transcription(client: openai.AzureOpenAI, seconds: float) -> float:
    started = time.perf_counter()
    client.audio.transcriptions.create(model="whisper-slow", file=("a.wav", make_wav(seconds, rate=8000)))
    return time.perf_counter() - started


def test_latency_grows_per_audio_second(shaped: openai.AzureOpenAI) -> None:
    # 50 ms per request plus 3 ms per audio token (10 a second): 1 s of audio ~ 80 ms, 40 s ~ 1.25 s.
    short = _timed_transcription(shaped, 1.0)
    long = _timed_transcription(shaped, 40.0)
    assert short >= 0.075
    assert long >= 1.25
    assert long - short >= 1.0


def test_fault_override_headers_apply(shaped: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        shaped.images.generate(model="dall-e-3", prompt="a fox", extra_headers={"x-simulator-fault": "500"})
    assert caught.value.status_code == 500
    with pytest.raises(openai.APIStatusError) as caught:
        shaped.audio.transcriptions.create(model="whisper-slow", file=("a.wav", make_wav(1.0)),
                                           extra_headers={"x-simulator-fault": "503"})
    assert caught.value.status_code == 503


def test_record_then_replay_matches_the_file_and_fields_not_the_boundary(shaped: openai.AzureOpenAI) -> None:
    wav = make_wav(5.0)
    recorded = shaped.audio.transcriptions.create(model="whisper", file=("first-name.wav", wav),
                                                  response_format="srt", language="en")
    replayed = None
    deadline = time.monotonic() + 10
    while replayed is None:  # the recording is saved off the response path
        try:
            # another upload of the same audio: another multipart boundary, another file name
            replayed = shaped.audio.transcriptions.create(model="whisper-replay", file=("other-name.wav", wav),
                                                          response_format="srt", language="en")
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert replayed == recorded
    with pytest.raises(openai.NotFoundError) as caught:  # another form field: a strict miss
        shaped.audio.transcriptions.create(model="whisper-replay", file=("a.wav", wav), response_format="srt",
                                           language="de")
    assert "language" in caught.value.message
    with pytest.raises(openai.NotFoundError):  # other audio: a miss
        shaped.audio.transcriptions.create(model="whisper-replay", file=("a.wav", make_wav(5.5)),
                                           response_format="srt", language="en")
