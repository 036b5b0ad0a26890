"""Embeddings: a deterministic unit vector per input text, float or base64 (little-endian float32)."""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from functools import lru_cache

import orjson


@lru_cache(maxsize=8192)
def embedding_vector(text: str, dimensions: int) -> array:
    """The same text always gives the same vector. A shortened vector (`dimensions`) is the prefix of the full
    one renormalised, as OpenAI's text-embedding-3 models do, so the two stay comparable."""
    raw = array("h", hashlib.shake_256(text.encode("utf-8")).digest(2 * dimensions))
    norm = math.sqrt(math.fsum(v * v for v in raw)) or 1.0
    return array("f", [v / norm for v in raw])


def encode_vector(vector: array, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        if sys.byteorder == "big":
            vector = array("f", vector)
            vector.byteswap()
        return base64.b64encode(vector.tobytes()).decode("ascii")
    return vector.tolist()


def embeddings_body(
    texts: list[str], dimensions: int, encoding_format: str, model: str, prompt_tokens: int
) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index,
                 "embedding": encode_vector(embedding_vector(text, dimensions), encoding_format)}
                for index, text in enumerate(texts)
            ],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )
