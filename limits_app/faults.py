"""Fault injection decisions: which fault a request gets (from its deployment's fault profile or the
``x-simulator-fault`` header), the "fail the first N requests" counters, and content-filter trigger terms.

Fault kinds (SPEC §6):

* ``429``, ``500``, ``503``: an HTTP error with the body and headers AOAI sends;
* ``timeout``: hold the connection ``timeout_ms`` without a byte, then close it (the client's own read
  timeout usually fires first); the header may carry its own duration, ``timeout:MS``;
* ``reset``: close the connection before any byte of the answer (the client sees a connection error);
* ``truncate:K``: a stream cut after K events, without ``[DONE]`` (a non-streaming body is cut in half);
* ``malformed``: a broken SSE event in place of the first content event (a non-streaming body that is
  not valid JSON).

Content-filter terms are matched case-insensitively against the prompt. A term is ``[completion:][CATEGORY:]text``:
a plain term refuses the prompt (400 ``content_filter``); a ``completion:`` term lets the request through and
filters the answer (``finish_reason: content_filter``). CATEGORY (``hate``, ``sexual``, ``violence``,
``self_harm``, or ``jailbreak`` for prompts) is the filter reported as triggered (default ``violence``).

Nothing here knows about HTTP; generators_app.shaping applies the decisions.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from limits_app.config import FaultProfileConfig

HTTP_ERROR_KINDS = frozenset({"429", "500", "503"})
CONNECTION_KINDS = frozenset({"timeout", "reset"})
STREAM_KINDS = frozenset({"truncate", "malformed"})
# What the header accepts besides the profile kinds: ``none`` (no fault, whatever the profile says).
HEADER_KINDS = "429|500|503|timeout[:MS]|reset|truncate:K|malformed|none"
# The kind drawn when a profile fails a request but weighs no kinds.
DEFAULT_KIND = "500"

_rng = random.Random()
_Parsed = TypeVar("_Parsed")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str  # "429" | "500" | "503" | "timeout" | "reset" | "truncate" | "malformed" | "none"
    argument: int | None = None  # truncate: events to send; timeout: ms to hold (None: the profile's timeout_ms)


NO_FAULT = Fault("none")


def parse_fault(text: str, *, header: bool = False) -> Fault:
    """``"truncate:5"`` -> Fault("truncate", 5). ``header`` also allows ``timeout:MS`` and ``none``.

    Raises ValueError with a message fit for the client."""
    base, sep, argument = text.strip().lower().partition(":")
    known = HTTP_ERROR_KINDS | CONNECTION_KINDS | STREAM_KINDS | ({"none"} if header else set())
    if base not in known:
        expected = HEADER_KINDS if header else "429|500|503|timeout|reset|truncate:K|malformed"
        raise ValueError(f"unknown fault '{text.strip()}'; expected one of {expected}")
    takes_argument = base == "truncate" or (header and base == "timeout")
    if not sep:
        if base == "truncate":
            raise ValueError("'truncate' needs the number of events to send, e.g. 'truncate:5'")
        return Fault(base)
    if not takes_argument:
        raise ValueError(f"the fault '{base}' takes no ':' argument")
    if not argument.isdigit():
        raise ValueError(f"the argument of '{base}' must be a whole number, got '{argument}'")
    return Fault(base, int(argument))


def _valid(parse: Callable[[str], _Parsed], raw: str, what: str) -> _Parsed | None:
    """Admin, the API and the config file validate profiles; a value written around them is skipped
    (and logged once per profile revision, as these run once per revision), never a 500 on the data plane."""
    try:
        return parse(raw)
    except ValueError as problem:
        logger.warning("fault profile: ignoring the %s %r: %s", what, raw, problem)
        return None


@lru_cache(maxsize=256)
def _weighted_kinds(kinds: tuple[tuple[str, float], ...]) -> tuple[tuple[Fault, ...], tuple[float, ...]]:
    parsed = [(_valid(parse_fault, kind, "fault kind"), weight) for kind, weight in kinds if weight > 0]
    positive = [(fault, weight) for fault, weight in parsed if fault is not None]
    if not positive:
        return (Fault(DEFAULT_KIND),), (1.0,)
    faults, weights = zip(*positive, strict=True)
    return tuple(faults), tuple(weights)


def choose_kind(kinds: Mapping[str, float], rng: random.Random = _rng) -> Fault:
    """A weighted draw among the profile's kinds (``500`` when it weighs none)."""
    faults, weights = _weighted_kinds(tuple(sorted(kinds.items())))
    if len(faults) == 1:
        return faults[0]
    return rng.choices(faults, weights)[0]


class FailFirstCounters:
    """"Fail the first N requests, then succeed", counted per deployment in this process.

    A count belongs to a revision of the fault profile (its last save): saving the profile, which every
    process sees through the configuration version stamp, starts the count again everywhere."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[str, int]] = {}

    def take(self, deployment: str, revision: str, limit: int) -> bool:
        """Count this request; True if it is one of the first ``limit`` since the revision."""
        entry = self._counts.get(deployment)
        count = entry[1] if entry is not None and entry[0] == revision else 0
        if count >= limit:
            return False
        self._counts[deployment] = (revision, count + 1)
        return True

    def failed_so_far(self, deployment: str, revision: str) -> int:
        entry = self._counts.get(deployment)
        return entry[1] if entry is not None and entry[0] == revision else 0

    def reset(self, deployment: str | None = None) -> None:
        if deployment is None:
            self._counts.clear()
        else:
            self._counts.pop(deployment, None)


fail_first_counters = FailFirstCounters()


def pick_fault(
    profile: FaultProfileConfig, deployment: str, rng: random.Random = _rng,
    counters: FailFirstCounters = fail_first_counters,
) -> Fault | None:
    """The fault this request gets from the profile, or None: first the fail-first scenario, then the rate."""
    if profile.fail_first and counters.take(deployment, profile.revision, profile.fail_first):
        return choose_kind(profile.kinds, rng)
    if profile.error_rate > 0 and rng.random() < profile.error_rate:
        return choose_kind(profile.kinds, rng)
    return None


# --- content filter -----------------------------------------------------------------------------------------

CONTENT_FILTER_CATEGORIES = ("hate", "jailbreak", "self_harm", "sexual", "violence")
DEFAULT_CATEGORY = "violence"
PROMPT, COMPLETION = "prompt", "completion"


@dataclass(frozen=True, slots=True)
class ContentFilterTerm:
    text: str  # lower case
    category: str
    target: str  # PROMPT: refuse the request; COMPLETION: filter the answer


def parse_term(raw: str) -> ContentFilterTerm:
    """``"completion:self_harm:some words"`` -> ContentFilterTerm("some words", "self_harm", "completion")."""
    rest = raw
    target, category = PROMPT, DEFAULT_CATEGORY
    head, sep, tail = rest.partition(":")
    if sep and head.strip().lower() == COMPLETION:
        target, rest = COMPLETION, tail
        head, sep, tail = rest.partition(":")
    if sep and head.strip().lower() in CONTENT_FILTER_CATEGORIES:
        category, rest = head.strip().lower(), tail
    text = rest.strip().lower()
    if not text:
        raise ValueError(f"the content-filter term '{raw}' has no text to match")
    if category == "jailbreak" and target == COMPLETION:
        raise ValueError(f"'{raw}': jailbreak detection applies to prompts only")
    return ContentFilterTerm(text, category, target)


@lru_cache(maxsize=256)
def parse_terms(raw_terms: tuple[str, ...]) -> tuple[ContentFilterTerm, ...]:
    """Parsed once per profile revision (the tuple is the cache key); prompt terms first, so they win."""
    terms = [term for raw in raw_terms if (term := _valid(parse_term, raw, "content-filter term")) is not None]
    return tuple(sorted(terms, key=lambda term: term.target != PROMPT))


# Keys whose values are never text a filter reads (roles, ids, types, URLs).
_NOT_TEXT_KEYS = frozenset({"role", "type", "id", "tool_call_id", "call_id", "name", "detail", "url", "image_url",
                            "file_id", "format", "cache_control"})
_PROMPT_FIELDS = ("messages", "prompt", "input", "instructions")


def prompt_text(payload: Mapping[str, Any]) -> str:
    """All the text of a request's prompt (messages, prompt, Responses input and instructions), lower case."""
    pieces: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, str):
            pieces.append(value)
        elif depth > 8:
            return
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in _NOT_TEXT_KEYS:
                    walk(item, depth + 1)

    for field_name in _PROMPT_FIELDS:
        if field_name in payload:
            walk(payload[field_name], 0)
    return "\n".join(pieces).lower()


def match_terms(terms: tuple[ContentFilterTerm, ...], text: str) -> ContentFilterTerm | None:
    for term in terms:
        if term.text in text:
            return term
    return None
