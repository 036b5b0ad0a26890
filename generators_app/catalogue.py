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


# The operation names AOAI uses in its messages (429 bodies, OperationNotSupported).
OPERATION_IDS: dict[Operation, str] = {
    Operation.CHAT: "ChatCompletions_Create",
    Operation.COMPLETIONS: "Completions_Create",
    Operation.EMBEDDINGS: "Embeddings_Create",
    Operation.RESPONSES: "Responses_Create",
    Operation.MODELS: "Models_List",
}

OPERATION_LABELS: dict[Operation, str] = {
    Operation.CHAT: "chatCompletion",
    Operation.COMPLETIONS: "completion",
    Operation.EMBEDDINGS: "embeddings",
    Operation.RESPONSES: "responses",
    Operation.MODELS: "models",
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    version_string: str  # what answers carry in `model`
    tokenizer: str  # "o200k_base" | "cl100k_base"
    operations: frozenset[Operation]
    context_window: int
    max_output_tokens: int = 0
    embedding_dimensions: int = 0
    supports_dimensions: bool = False
    reasoning: bool = False
    system_fingerprint: str | None = None
    created: int = 1715367049  # `created` for the models list

    def serves(self, operation: Operation) -> bool:
        return operation in self.operations


_CHAT = frozenset({Operation.CHAT, Operation.RESPONSES})
_EMBED = frozenset({Operation.EMBEDDINGS})

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
    )
}


def get_model(name: str) -> ModelSpec | None:
    return MODELS.get(name)


def model_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in MODELS]
