"""Plausible `logprobs` for generated tokens: mostly confident choices, a few uncertain ones, and alternatives
that share the probability mass the chosen token left (so the probabilities of one position never sum above 1).

Entries are in OpenAI's shape and key order: `{"token", "bytes", "logprob", "top_logprobs": [...]}`; the
Responses API uses the same entry shape inside `output_text.logprobs` and the delta events.
"""

from __future__ import annotations

import functools
import math
import random
import re
from typing import Any

from generators_app.generation.text import load_corpus

__all__ = ["token_logprobs"]

_MIN_PROBABILITY = 1e-9


@functools.cache
def _alternatives() -> tuple[str, ...]:
    """Tokens offered as the runners-up: corpus words with their leading space, and punctuation."""
    words = {" " + word.lower() for line in load_corpus() for word in re.findall(r"[A-Za-z]+", line)}
    return (*sorted(words), ",", ".", " and", " the", " a", ":", "\n")


def _chosen_probability(rng: random.Random) -> float:
    draw = rng.random()
    if draw < 0.75:
        return rng.uniform(0.9, 0.99999)
    if draw < 0.95:
        return rng.uniform(0.4, 0.9)
    return rng.uniform(0.05, 0.4)


def _entry(token: str, probability: float) -> dict[str, Any]:
    logprob = math.log(max(probability, _MIN_PROBABILITY))
    return {"token": token, "bytes": list(token.encode("utf-8")), "logprob": logprob}


def token_logprobs(pieces: list[str], top_logprobs: int, rng: random.Random) -> list[dict[str, Any]]:
    """One entry per piece, each with up to `top_logprobs` most likely tokens (the chosen one among them)."""
    alternatives = _alternatives()
    out: list[dict[str, Any]] = []
    for piece in pieces:
        chosen = _chosen_probability(rng)
        entry = _entry(piece, chosen)
        if top_logprobs > 0:
            candidates = [(chosen, piece)]
            remaining = (1.0 - chosen) * rng.uniform(0.5, 0.95)
            picked = {piece}
            attempts = 0
            while len(candidates) < top_logprobs and attempts < 4 * top_logprobs:
                attempts += 1
                token = rng.choice(alternatives)
                if token in picked:
                    continue
                picked.add(token)
                share = remaining * rng.uniform(0.3, 0.7)
                remaining -= share
                candidates.append((share, token))
            candidates.sort(key=lambda pair: -pair[0])
            entry["top_logprobs"] = [_entry(token, probability) for probability, token in candidates]
        else:
            entry["top_logprobs"] = []
        out.append(entry)
    return out
