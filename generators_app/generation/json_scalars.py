"""Scalar values for generated JSON: numbers within a schema's bounds, formatted strings, and strings shaped by
a property's name or drawn from the corpus vocabulary (json_schema.py walks the schema; this fills its leaves).
"""

from __future__ import annotations

import functools
import math
import random
import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from generators_app.generation.text import load_corpus

__all__ = [
    "NAMED_FORMATS",
    "NAMED_VALUES",
    "formatted_string",
    "is_number",
    "multiples_range",
    "number_bounds",
    "vocabulary",
]

_FALLBACK_WORDS = ("value", "sample", "item", "example", "record", "entry")


@functools.cache
def vocabulary() -> tuple[str, ...]:
    words = {word.lower() for line in load_corpus() for word in re.findall(r"[A-Za-z]+", line) if len(word) > 2}
    return tuple(sorted(words)) or _FALLBACK_WORDS


# Values shaped by a property's name, so that arguments read like what a model would send.
NAMED_VALUES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), values)
    for pattern, values in (
        (r"city|location|place|town", ("Paris", "Seattle", "Tokyo", "Lisbon", "Nairobi", "Toronto", "Oslo")),
        (r"country", ("France", "Japan", "Canada", "Kenya", "Portugal", "Norway", "Brazil")),
        (r"^(first_?)?name$|full_?name|author|person", ("Ada Lovelace", "Alan Turing", "Grace Hopper",
                                                         "Katherine Johnson", "Edsger Dijkstra")),
        (r"unit", ("celsius", "fahrenheit", "metric", "imperial")),
        (r"currency", ("USD", "EUR", "JPY", "GBP")),
        (r"lang", ("en", "fr", "de", "ja", "es")),
        (r"colou?r", ("red", "green", "blue", "amber", "teal")),
        (r"phone", ("+1-206-555-0142", "+44 20 7946 0018", "+81 3-5555-0199")),
        (r"street|address", ("12 Harbour Street", "4 Mill Lane", "221 Baker Street", "7 Rue des Lilas")),
        (r"post_?code|zip", ("75011", "98101", "1050-044", "0150")),
        (r"query|question|search|prompt", ("weather forecast for tomorrow", "opening hours of the museum",
                                           "latest release notes", "train times to the airport")),
    )
)
NAMED_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), fmt)
    for pattern, fmt in (
        (r"e-?mail", "email"), (r"url|uri|link|website|href", "uri"), (r"uuid|guid", "uuid"),
        (r"date$|_date|birthday", "date"), (r"timestamp|datetime|_at$", "date-time"), (r"(^|_)id$", "uuid"),
    )
)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_DEFAULT_SPAN = 100


def number_bounds(schema: dict[str, Any], integer: bool) -> tuple[Any, Any]:
    """The closed interval the number must lie in (exclusive bounds tightened to the nearest value)."""
    low: float | None = None
    high: float | None = None
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if is_number(minimum):
        low = minimum
    if is_number(maximum):
        high = maximum
    nudge = 1 if integer else None
    if is_number(ex_min):
        low = max(low, ex_min) if low is not None else ex_min
        if low == ex_min:
            low = ex_min + nudge if nudge else _above(ex_min)
    elif ex_min is True and low is not None:  # draft 4: a boolean beside minimum
        low = low + nudge if nudge else _above(low)
    if is_number(ex_max):
        high = min(high, ex_max) if high is not None else ex_max
        if high == ex_max:
            high = ex_max - nudge if nudge else _below(ex_max)
    elif ex_max is True and high is not None:
        high = high - nudge if nudge else _below(high)
    if low is None and high is None:
        low, high = 0, _DEFAULT_SPAN
    elif low is None:
        low = high - _DEFAULT_SPAN
    elif high is None:
        high = low + _DEFAULT_SPAN
    if integer:
        low, high = math.ceil(low), math.floor(high)
        if low > high:  # no integer in range: the nearest thing to an answer
            high = low
    elif low > high:
        high = low
    return low, high


def _above(value: float) -> float:
    step = max(abs(value) * 1e-9, 1e-6)
    return value + step


def _below(value: float) -> float:
    step = max(abs(value) * 1e-9, 1e-6)
    return value - step


def multiples_range(step: float, low: float, high: float) -> tuple[int, int] | None:
    """The range of k such that k * step lies in [low, high], or None when there is none."""
    try:
        d_step = Decimal(str(step))
        first = math.ceil(Decimal(str(low)) / d_step)
        last = math.floor(Decimal(str(high)) / d_step)
    except (InvalidOperation, OverflowError, ValueError):
        return None
    if first > last:
        return None
    if last - first > 10_000:
        last = first + 10_000
    return int(first), int(last)


_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def formatted_string(fmt: str, rng: random.Random) -> str | None:
    moment = _EPOCH + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
    if fmt == "date-time":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "date":
        return moment.strftime("%Y-%m-%d")
    if fmt == "time":
        return moment.strftime("%H:%M:%SZ")
    if fmt == "duration":
        return f"P{rng.randint(0, 30)}DT{rng.randint(0, 23)}H{rng.randint(0, 59)}M"
    if fmt in ("email", "idn-email"):
        return f"{rng.choice(vocabulary())}.{rng.choice(vocabulary())}@example.com"
    if fmt in ("hostname", "idn-hostname"):
        return f"{rng.choice(vocabulary())}.example.com"
    if fmt == "ipv4":
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    if fmt == "ipv6":
        return ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return f"https://example.com/{rng.choice(vocabulary())}/{rng.randint(1, 999)}"
    if fmt == "byte":
        return "".join(rng.choices(string.ascii_letters + string.digits, k=12)) + "=="
    return None

