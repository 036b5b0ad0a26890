"""Image and audio requests: validate them against the model's catalogue entry (AOAI's 400s) and plan the
answer, so that operations.py only wires the plans into PreparedRequest."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from generators_app.catalogue import AudioSupport, ImageSupport, ModelSpec
from generators_app.errors import ApiError, invalid_request
from generators_app.generation.audio import (
    LANGUAGES,
    MIN_DURATION_S,
    Transcript,
    TranscriptRequest,
    audio_token_count,
    plan_transcript,
    transcript_answer,
)
from generators_app.generation.audio_probe import SUPPORTED_FORMATS, probe_audio
from generators_app.generation.common import request_rng
from generators_app.generation.images import ImageName, image_b64, image_seed, image_url
from generators_app.generation.text import generate_text
from generators_app.multipart_form import UploadedFile
from generators_app.schemas import parse_request
from generators_app.tokens import count_text

_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
# What AOAI attaches to every generated image (as in its DALL-E 3 answers).
IMAGE_CONTENT_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
IMAGE_PROMPT_FILTER_RESULTS = {
    "hate": _SAFE, "profanity": _NOT_DETECTED, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE,
}
# gpt-image-1 bills output tokens per image by quality and size (OpenAI's published table).
_GPT_IMAGE_OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272, ("low", "1024x1536"): 408, ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056, ("medium", "1024x1536"): 1584, ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160, ("high", "1024x1536"): 6240, ("high", "1536x1024"): 6208,
}
_IMAGE_RESPONSE_FORMATS = ("url", "b64_json")
_AUDIO_RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


def _supported(values: Sequence[str]) -> str:
    """OpenAI's list style: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _invalid_value(param: str, value: object, allowed: Sequence[str]) -> ApiError:
    return invalid_request(f"Invalid value: '{value}'. Supported values are: {_supported(allowed)}.", param,
                           "invalid_value")


def _unknown_parameter(param: str) -> ApiError:
    return invalid_request(f"Unknown parameter: '{param}'.", param, "unknown_parameter")


# --- images ------------------------------------------------------------------------------------------------
class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: str | None = None
    user: str | None = None
    background: str | None = None
    output_format: str | None = None
    stream: bool | None = None
    seed: int | None = None  # a simulator extension: vary the pictures of an otherwise identical request


@dataclass(frozen=True, slots=True)
class ImagePlan:
    names: tuple[ImageName, ...]
    response_format: str
    revised_prompts: tuple[str | None, ...]
    prompt_tokens: int
    usage: dict[str, Any] | None  # gpt-image-1
    extra: dict[str, Any]  # gpt-image-1's top-level background/output_format/quality/size

    @property
    def n(self) -> int:
        return len(self.names)


def _check_image_options(request: ImageGenerationRequest, image: ImageSupport, model: ModelSpec) -> None:
    if not request.prompt:
        raise invalid_request("Invalid 'prompt': string too short. Expected a string with minimum length 1, but "
                              "got an empty string instead.", "prompt", "empty_string")
    if len(request.prompt) > image.max_prompt_chars:
        raise invalid_request(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {image.max_prompt_chars}, "
            f"but got a string with length {len(request.prompt)} instead.", "prompt", "string_above_max_length",
        )
    n = 1 if request.n is None else request.n
    if n < 1:
        raise invalid_request(f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} "
                              "instead.", "n", "integer_below_min_value")
    if n > image.max_images:
        if image.max_images == 1:
            raise invalid_request("You must provide n=1 for this model.", "n", "invalid_value")
        raise invalid_request(f"Invalid 'n': integer above maximum value. Expected a value <= {image.max_images}, "
                              f"but got {n} instead.", "n", "integer_above_max_value")
    if request.size is not None and request.size not in image.sizes:
        raise invalid_request("The size is not supported by this model.", "size", "invalid_size")
    if request.quality is not None and request.quality not in image.qualities:
        raise _invalid_value("quality", request.quality, image.qualities)
    if request.style is not None:
        if not image.styles:
            raise _unknown_parameter("style")
        if request.style not in image.styles:
            raise _invalid_value("style", request.style, image.styles)
    if request.response_format is not None:
        if request.response_format not in _IMAGE_RESPONSE_FORMATS:
            raise _invalid_value("response_format", request.response_format, _IMAGE_RESPONSE_FORMATS)
        if request.response_format not in image.response_formats:
            raise invalid_request(
                f"response_format '{request.response_format}' is not supported with model '{model.name}': it "
                "always answers with base64-encoded images (b64_json).", "response_format", "unsupported_value",
            )
    if not image.reports_usage:  # dall-e-3 knows none of gpt-image-1's parameters
        for param in ("background", "output_format"):
            if getattr(request, param) is not None:
                raise _unknown_parameter(param)
    if request.background is not None and request.background not in ("transparent", "opaque", "auto"):
        raise _invalid_value("background", request.background, ("transparent", "opaque", "auto"))
    if request.output_format not in (None, "png"):
        if request.output_format in ("jpeg", "webp"):
            raise invalid_request(f"The simulator draws PNG images only: output_format '{request.output_format}' "
                                  "is not supported. Use 'png'.", "output_format", "unsupported_value")
        raise _invalid_value("output_format", request.output_format, ("png", "jpeg", "webp"))
    if request.stream:
        raise invalid_request("Streaming image generation is not supported by the simulator.", "stream",
                              "unsupported_value")


def plan_images(payload: dict[str, Any], model: ModelSpec) -> ImagePlan:
    request = parse_request(ImageGenerationRequest, payload)
    image = model.image
    if image is None:
        raise invalid_request(f"The model {model.name} does not generate images.", "model", "OperationNotSupported")
    _check_image_options(request, image, model)
    n = request.n or 1
    size = request.size or image.sizes[0]
    if size == "auto":
        size = "1024x1024"
    quality = request.quality or image.qualities[0]
    if quality == "auto":
        quality = "medium"
    style = request.style or (image.styles[0] if image.styles else None)
    transparent = request.background == "transparent"
    width, height = (int(side) for side in size.split("x"))
    seed = request.seed or 0
    names = tuple(
        ImageName(image_seed(model.name, request.prompt, size, quality, style, transparent, index, seed),
                  width, height, transparent)
        for index in range(n)
    )
    prompt_tokens = count_text(model.tokenizer, request.prompt)
    revised: tuple[str | None, ...] = (None,) * n
    if image.revises_prompt:
        rng = random.Random(names[0].seed)
        base = request.prompt.strip().rstrip(".")
        revised = tuple(f"{base}. {generate_text(model.tokenizer, rng.randint(20, 45), rng)}" for _ in names)
    usage = extra = None
    if image.reports_usage:
        output_tokens = _GPT_IMAGE_OUTPUT_TOKENS.get((quality, size), 1056) * n
        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt_tokens},
            "output_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
        }
        extra = {"background": "transparent" if transparent else "opaque", "output_format": "png",
                 "quality": quality, "size": size}
    response_format = request.response_format or image.response_formats[0]
    return ImagePlan(names, response_format, revised, prompt_tokens, usage, extra or {})


def images_body(plan: ImagePlan) -> bytes:
    data = []
    for name, revised in zip(plan.names, plan.revised_prompts, strict=True):
        item: dict[str, Any] = {}
        if plan.response_format == "url":
            item["url"] = image_url(name)
        else:
            item["b64_json"] = image_b64(name)
        if revised is not None:
            item["revised_prompt"] = revised
        item["content_filter_results"] = IMAGE_CONTENT_FILTER_RESULTS
        item["prompt_filter_results"] = IMAGE_PROMPT_FILTER_RESULTS
        data.append(item)
    body: dict[str, Any] = {"created": int(time.time()), "data": data, **plan.extra}
    if plan.usage is not None:
        body["usage"] = plan.usage
    return orjson.dumps(body)


# --- audio -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AudioPlan:
    transcript: Transcript
    request: TranscriptRequest
    prompt_tokens: int  # what the limiter and latency count: audio tokens plus the text prompt's
    seed: int

    def answer(self) -> tuple[bytes, bytes]:
        return transcript_answer(self.transcript, self.request, random.Random(self.seed))


def _text_field(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or isinstance(value, str):
        return value
    kind = "a file" if isinstance(value, UploadedFile) else "an array"
    raise invalid_request(f"Invalid type for '{name}': expected a string, but got {kind} instead.", name,
                          "invalid_type")


def _list_field(payload: dict[str, Any], name: str) -> list[str]:
    value = payload.get(name)
    if value is None:
        return []
    if isinstance(value, UploadedFile):
        raise invalid_request(f"Invalid type for '{name}': expected an array, but got a file instead.", name,
                              "invalid_type")
    return value if isinstance(value, list) else [value]


def _uploaded_audio(payload: dict[str, Any]) -> UploadedFile:
    upload = payload.get("file")
    if upload is None:
        raise invalid_request("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    if not isinstance(upload, UploadedFile):
        raise invalid_request("Invalid type for 'file': expected a file upload, but got a string instead.", "file",
                              "invalid_type")
    if not upload.data:
        raise invalid_request(f"The uploaded file '{upload.filename}' is empty.", "file", "empty_file")
    return upload


def _temperature(payload: dict[str, Any]) -> float:
    text = _text_field(payload, "temperature")
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise invalid_request("Invalid type for 'temperature': expected a number, but got a string instead.",
                              "temperature", "invalid_type") from None
    if not math.isfinite(value) or value < 0 or value > 1:
        raise invalid_request(f"Invalid 'temperature': expected a value between 0 and 1, but got {text} instead.",
                              "temperature", "invalid_value")
    return value


def _response_format(payload: dict[str, Any], audio: AudioSupport, model: ModelSpec) -> str:
    fmt = _text_field(payload, "response_format") or audio.response_formats[0]
    if fmt not in _AUDIO_RESPONSE_FORMATS:
        raise _invalid_value("response_format", fmt, _AUDIO_RESPONSE_FORMATS)
    if fmt not in audio.response_formats:
        raise invalid_request(
            f"response_format '{fmt}' is not compatible with model '{model.name}'. Use "
            f"{' or '.join(repr(f) for f in audio.response_formats)} instead.", "response_format", "unsupported_value",
        )
    return fmt


def _granularities(payload: dict[str, Any], response_format: str) -> tuple[str, ...]:
    values = _list_field(payload, "timestamp_granularities")
    for value in values:
        if value not in ("word", "segment"):
            raise _invalid_value("timestamp_granularities", value, ("word", "segment"))
    if values and response_format != "verbose_json":
        raise invalid_request("timestamp_granularities is only supported with response_format 'verbose_json'.",
                              "timestamp_granularities", "invalid_value")
    return tuple(dict.fromkeys(values))


def plan_audio(task: str, payload: dict[str, Any], model: ModelSpec) -> AudioPlan:
    """`task` is "transcribe" or "translate"; `payload` is the parsed form (multipart_form.parse_audio_form)."""
    audio = model.audio
    if audio is None:
        raise invalid_request(f"The model {model.name} does not transcribe audio.", "model", "OperationNotSupported")
    upload = _uploaded_audio(payload)
    info = probe_audio(upload.data)
    if info is None:
        raise invalid_request(f"Invalid file format. Supported formats: {list(SUPPORTED_FORMATS)}", "file",
                              "invalid_file_format")
    if info.duration_s < MIN_DURATION_S:
        raise invalid_request(f"Audio file is too short. Minimum audio length is {MIN_DURATION_S} seconds.", "file",
                              "audio_too_short")
    response_format = _response_format(payload, audio, model)
    temperature = _temperature(payload)
    prompt = _text_field(payload, "prompt") or ""
    language_code = _text_field(payload, "language") if task == "transcribe" else None
    if language_code and language_code not in LANGUAGES:
        raise invalid_request(f"Invalid language '{language_code}'. Language parameter must be specified in "
                              "ISO-639-1 format.", "language", "invalid_value")
    granularities = _granularities(payload, response_format) if task == "transcribe" else ()
    stream = (_text_field(payload, "stream") or "false").lower()
    if stream not in ("false", "0"):
        raise invalid_request(f"Streaming transcriptions are not supported by the simulator for {model.name}.",
                              "stream", "unsupported_value")
    include = _list_field(payload, "include")
    prompt_tokens = count_text(model.tokenizer, prompt) if prompt else 0
    seed = request_rng(0, task, model.name, upload.sha256, language_code, prompt).getrandbits(64)
    transcript = plan_transcript(info.duration_s, model.tokenizer, random.Random(seed))
    request = TranscriptRequest(
        task=task,
        language=LANGUAGES[language_code] if language_code else "english",
        response_format=response_format,
        granularities=granularities,
        temperature=temperature,
        encoding_name=model.tokenizer,
        usage_in_tokens=audio.usage_in_tokens,
        prompt_tokens=prompt_tokens,
        include_logprobs="logprobs" in include and audio.usage_in_tokens and response_format == "json",
    )
    return AudioPlan(transcript, request, audio_token_count(info.duration_s) + prompt_tokens, seed)
