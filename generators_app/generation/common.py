"""Pieces every generated answer shares: ids, content-filter annotations, usage, length and seed handling."""

from __future__ import annotations

import hashlib
import os
import random
import string
from typing import Any

import orjson

_ALNUM = string.ascii_letters + string.digits

# AOAI's annotations for a prompt and a completion that passed every filter (as in the recordings).
_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}

PROMPT_FILTER_RESULTS = {
    "hate": _SAFE, "jailbreak": _NOT_DETECTED, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE,
}
COMPLETION_FILTER_RESULTS = {
    "hate": _SAFE,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
STREAM_CHUNK_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}


def filtered_results(results: dict[str, Any], category: str) -> dict[str, Any]:
    """A copy of content-filter annotations with ``category`` triggered (a content-filter term matched)."""
    triggered = {"filtered": True, "detected": True} if category == "jailbreak" else {
        "filtered": True, "severity": "medium"}
    return {**results, category: triggered}


def prompt_filter_results(prompt_count: int = 1) -> list[dict[str, Any]]:
    return [{"prompt_index": i, "content_filter_results": PROMPT_FILTER_RESULTS} for i in range(prompt_count)]


# Maps every byte to an id character, so an id is one os.urandom call and a translate (the slight bias
# toward the first characters does not matter for ids).
_ID_TABLE = bytes((_ALNUM * 5)[:256], "ascii")


def random_id(prefix: str, length: int = 29) -> str:
    return prefix + os.urandom(length).translate(_ID_TABLE).decode("ascii")


# A fixed pool of random characters: a pad is a slice of it, so one getrandbits call makes a pad (a stream
# makes one per chunk; drawing each character took most of the time of building a stream).
_PAD_POOL = "".join(random.Random(0x0BF5).choices(_ALNUM, k=4096))


def obfuscation(rng: random.Random) -> str:
    """OpenAI pads stream chunks with a random string (0-15 characters) so that sizes do not reveal the tokens."""
    bits = rng.getrandbits(16)
    start = bits >> 4  # 0..4095; the pool wraps by starting no later than 4080
    start = start if start <= 4080 else start - 16
    return _PAD_POOL[start: start + (bits & 15)]


def request_rng(seed: int | None, *parts: Any) -> random.Random:
    """Same seed and same request give the same answer; no seed gives a fresh one."""
    if seed is None:
        return random.Random()
    digest = hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=8).digest()
    return random.Random(seed ^ int.from_bytes(digest, "big"))


def draw_length(rng: random.Random, mean: int, std: int, ceiling: int) -> int:
    """A completion length from the deployment's normal distribution, clipped to 1..ceiling."""
    length = round(rng.gauss(mean, std)) if std > 0 else mean
    return max(1, min(length, ceiling))


def chat_usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": reasoning_tokens,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }
