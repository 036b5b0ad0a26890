"""The static model catalogue: what each AOAI model is and which operations it serves.

One place per fact: a model's tokenizer, version string, limits and operations live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Operation(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    MODELS = "models"
    IMAGES = "images"
    AUDIO_TRANSCRIPTIONS = "audio_transcriptions"
    AUDIO_TRANSLATIONS = "audio_translations"


class CustomOperation(str):
    """An operation an extension adds (``document_analysis``): a plain string that, like an ``Operation``
    member, has a ``value``, so the limiter, the modes, the recordings and the metrics treat both alike."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str.__str__(self)


AnyOperation = Operation | CustomOperation


# The operation names AOAI uses in its messages (429 bodies, OperationNotSupported).
OPERATION_IDS: dict[Operation, str] = {
    Operation.CHAT: "ChatCompletions_Create",
    Operation.COMPLETIONS: "Completions_Create",
    Operation.EMBEDDINGS: "Embeddings_Create",
    Operation.RESPONSES: "Responses_Create",
    Operation.MODELS: "Models_List",
    Operation.IMAGES: "ImageGenerations_Create",
    Operation.AUDIO_TRANSCRIPTIONS: "Transcriptions_Create",
    Operation.AUDIO_TRANSLATIONS: "Translations_Create",
}

OPERATION_LABELS: dict[Operation, str] = {
    Operation.CHAT: "chatCompletion",
    Operation.COMPLETIONS: "completion",
    Operation.EMBEDDINGS: "embeddings",
    Operation.RESPONSES: "responses",
    Operation.MODELS: "models",
    Operation.IMAGES: "imageGeneration",
    Operation.AUDIO_TRANSCRIPTIONS: "audioTranscription",
    Operation.AUDIO_TRANSLATIONS: "audioTranslation",
}

# Operations whose body is multipart/form-data rather than JSON.
MULTIPART_OPERATIONS: frozenset[Operation] = frozenset({Operation.AUDIO_TRANSCRIPTIONS, Operation.AUDIO_TRANSLATIONS})


@dataclass(frozen=True, slots=True)
class ImageSupport:
    """What an image model accepts; the first entry of each tuple is the default."""

    sizes: tuple[str, ...]
    max_images: int  # the largest `n`
    qualities: tuple[str, ...]
    styles: tuple[str, ...]  # empty: the model takes no `style`
    response_formats: tuple[str, ...]
    max_prompt_chars: int
    revises_prompt: bool  # dall-e-3 answers with `revised_prompt`
    reports_usage: bool  # gpt-image-1 answers with token `usage`


@dataclass(frozen=True, slots=True)
class AudioSupport:
    """What a speech-to-text model accepts; the first response format is the default."""

    response_formats: tuple[str, ...]
    usage_in_tokens: bool  # gpt-4o-transcribe reports token usage, whisper reports seconds


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    version_string: str  # what answers carry in `model`
    tokenizer: str  # "o200k_base" | "cl100k_base"
    operations: frozenset[AnyOperation]
    context_window: int
    max_output_tokens: int = 0
    embedding_dimensions: int = 0
    supports_dimensions: bool = False
    reasoning: bool = False
    system_fingerprint: str | None = None
    created: int = 1715367049  # `created` for the models list
    image: ImageSupport | None = None
    audio: AudioSupport | None = None

    def serves(self, operation: AnyOperation) -> bool:
        return operation in self.operations


_CHAT = frozenset({Operation.CHAT, Operation.RESPONSES})
_EMBED = frozenset({Operation.EMBEDDINGS})
_IMAGES = frozenset({Operation.IMAGES})
_TRANSCRIBE = frozenset({Operation.AUDIO_TRANSCRIPTIONS})
_SPEECH_TO_TEXT = frozenset({Operation.AUDIO_TRANSCRIPTIONS, Operation.AUDIO_TRANSLATIONS})

_DALL_E_3 = ImageSupport(
    sizes=("1024x1024", "1792x1024", "1024x1792"), max_images=1, qualities=("standard", "hd"),
    styles=("vivid", "natural"), response_formats=("url", "b64_json"), max_prompt_chars=4000,
    revises_prompt=True, reports_usage=False,
)
_GPT_IMAGE_1 = ImageSupport(
    sizes=("1024x1024", "1536x1024", "1024x1536", "auto"), max_images=10,
    qualities=("auto", "low", "medium", "high"), styles=(), response_formats=("b64_json",),
    max_prompt_chars=32000, revises_prompt=False, reports_usage=True,
)
_WHISPER = AudioSupport(response_formats=("json", "text", "srt", "verbose_json", "vtt"), usage_in_tokens=False)
_GPT_4O_TRANSCRIBE = AudioSupport(response_formats=("json", "text"), usage_in_tokens=True)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("gpt-4o", "gpt-4o-2024-11-20", "o200k_base", _CHAT, 128_000, 16_384,
                  system_fingerprint="fp_ee1d74bde0", created=1732060800),
        ModelSpec("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "o200k_base", _CHAT, 128_000, 16_384,
                  system_fingerprint="fp_efad92c60b", created=1721260800),
        ModelSpec("gpt-4.1", "gpt-4.1-2025-04-14", "o200k_base", _CHAT, 1_047_576, 32_768,
                  system_fingerprint="fp_b38e740b47", created=1744588800),
        ModelSpec("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "o200k_base", _CHAT, 1_047_576, 32_768,
                  system_fingerprint="fp_6f2eabb9a5", created=1744588800),
        ModelSpec("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "o200k_base", _CHAT, 1_047_576, 32_768,
                  system_fingerprint="fp_f12167b370", created=1744588800),
        ModelSpec("o4-mini", "o4-mini-2025-04-16", "o200k_base", _CHAT, 200_000, 100_000,
                  reasoning=True, system_fingerprint="fp_9ab7d013ff", created=1744761600),
        ModelSpec("o3-mini", "o3-mini-2025-01-31", "o200k_base", _CHAT, 200_000, 100_000,
                  reasoning=True, system_fingerprint="fp_42bfad963b", created=1738281600),
        ModelSpec("gpt-4", "gpt-4", "cl100k_base", frozenset({Operation.CHAT}), 8_192, 4_096,
                  created=1686614400),
        ModelSpec("gpt-35-turbo", "gpt-35-turbo", "cl100k_base", frozenset({Operation.CHAT}), 16_385, 4_096,
                  created=1706140800),
        ModelSpec("gpt-35-turbo-instruct", "gpt-35-turbo-instruct", "cl100k_base",
                  frozenset({Operation.COMPLETIONS}), 4_097, 4_096, created=1695168000),
        ModelSpec("text-embedding-3-small", "text-embedding-3-small", "cl100k_base", _EMBED, 8_191,
                  embedding_dimensions=1536, supports_dimensions=True, created=1705948997),
        ModelSpec("text-embedding-3-large", "text-embedding-3-large", "cl100k_base", _EMBED, 8_191,
                  embedding_dimensions=3072, supports_dimensions=True, created=1705953180),
        ModelSpec("text-embedding-ada-002", "text-embedding-ada-002", "cl100k_base", _EMBED, 8_191,
                  embedding_dimensions=1536, created=1671217299),
        ModelSpec("dall-e-3", "dall-e-3", "cl100k_base", _IMAGES, 4_000, created=1698785189, image=_DALL_E_3),
        ModelSpec("gpt-image-1", "gpt-image-1", "o200k_base", _IMAGES, 32_000, created=1745517030,
                  image=_GPT_IMAGE_1),
        ModelSpec("whisper", "whisper", "cl100k_base", _SPEECH_TO_TEXT, 448, created=1677532384, audio=_WHISPER),
        ModelSpec("gpt-4o-transcribe", "gpt-4o-transcribe", "o200k_base", _TRANSCRIBE, 16_000, 2_000,
                  created=1742068463, audio=_GPT_4O_TRANSCRIBE),
        ModelSpec("gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe", "o200k_base", _TRANSCRIBE, 16_000, 2_000,
                  created=1742068596, audio=_GPT_4O_TRANSCRIBE),
    )
}


def get_model(name: str) -> ModelSpec | None:
    return MODELS.get(name)


def model_choices() -> list[tuple[str, str]]:
    """Callable choices (evaluated when used), so models that extensions add are choices too."""
    return [(name, name) for name in MODELS]


def add_model(spec: ModelSpec) -> None:
    """Add a model to the catalogue (extensions, at start). A built-in model cannot be replaced."""
    existing = MODELS.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"a model named '{spec.name}' already exists")
    MODELS[spec.name] = spec


def operation_id(operation: AnyOperation) -> str:
    """The operation's name in AOAI messages (``ChatCompletions_Create``); an extension's own name for its own."""
    return OPERATION_IDS.get(operation, operation.value)  # type: ignore[call-overload]


def operation_label(operation: AnyOperation) -> str:
    return OPERATION_LABELS.get(operation, operation.value)  # type: ignore[call-overload]
