"""Strings that match a regular expression, for JSON Schema's `pattern` (allowed in strict structured outputs).

The pattern is parsed with Python's own regex parser (JSON Schema patterns are ECMA-262, whose common subset
Python reads the same way) and compiled once into a tree of small functions that build a matching string:
literals as written, classes by picking a member, repeats a small number of times, alternations by picking a
branch. Lookarounds cannot be built that way, so every result is checked with `re.search`, and the caller
falls back to plain text when it does not match (or when the pattern does not parse).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from typing import Any

try:  # Python 3.11+ keeps the parser private under re._parser
    import re._constants as _sre
    import re._parser as _parser
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _sre  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

__all__ = ["string_matching"]

_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
_CATEGORY_CHARS: dict[Any, str] = {
    _sre.CATEGORY_DIGIT: "0123456789",
    _sre.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    _sre.CATEGORY_SPACE: " ",
    _sre.CATEGORY_NOT_DIGIT: "abcdefghijklmnopqrstuvwxyz",
    _sre.CATEGORY_NOT_WORD: "-.,;:!?",
    _sre.CATEGORY_NOT_SPACE: "abcdefghijklmnopqrstuvwxyz0123456789",
}
_OPEN_REPEAT_EXTRA = 3  # `*`, `+` and `{n,}` repeat at most this many times beyond their minimum
_MAX_DEPTH = 40
_ATTEMPTS = 8

# A compiled node: given the random generator and the groups captured so far, the text it contributes.
_Node = Callable[[random.Random, dict[int, str]], str]


class _Unsupported(Exception):
    pass


def string_matching(pattern: str, rng: random.Random, min_length: int = 0, max_length: int | None = None) -> str | None:
    """A string that `re.search(pattern, s)` finds and whose length fits, or None when none could be built."""
    compiled = _compiled(pattern)
    if compiled is None:
        return None
    regex, build = compiled
    for _ in range(_ATTEMPTS):
        candidate = build(rng, {})
        if regex.search(candidate) and len(candidate) >= min_length and (
            max_length is None or len(candidate) <= max_length
        ):
            return candidate
    return None


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> tuple[re.Pattern[str], _Node] | None:
    """Parsing and compiling cost far more than building, and a schema's patterns recur on every request."""
    try:
        return re.compile(pattern), _sequence(_parser.parse(pattern), 0)
    except (re.error, RecursionError, OverflowError, ValueError, _Unsupported):
        return None


def _sequence(items: Any, depth: int) -> _Node:
    if depth > _MAX_DEPTH:
        raise _Unsupported("pattern nests too deeply")
    nodes = [_node(op, arg, depth) for op, arg in items]
    if len(nodes) == 1:
        return nodes[0]
    return lambda rng, groups: "".join([node(rng, groups) for node in nodes])


def _constant(text: str) -> _Node:
    return lambda rng, groups: text


def _pick(chars: str) -> _Node:
    if not chars:
        raise _Unsupported("empty character class")
    return lambda rng, groups: chars[int(rng.random() * len(chars))]


def _node(op: Any, arg: Any, depth: int) -> _Node:
    if op is _sre.LITERAL:
        return _constant(chr(arg))
    if op is _sre.NOT_LITERAL:
        return _pick(_PRINTABLE.replace(chr(arg), ""))
    if op is _sre.ANY:
        return _pick("abcdefghijklmnopqrstuvwxyz")
    if op is _sre.IN:
        return _pick(_class_members(arg))
    if op is _sre.CATEGORY:
        return _pick(_CATEGORY_CHARS.get(arg, "a"))
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
        low, high, body = arg
        high = low + _OPEN_REPEAT_EXTRA if high is _sre.MAXREPEAT else min(high, low + _OPEN_REPEAT_EXTRA)
        inner = _sequence(body, depth + 1)
        return lambda rng, groups: "".join([inner(rng, groups) for _ in range(rng.randint(low, high))])
    if op is _sre.SUBPATTERN:
        group, _add_flags, _del_flags, body = arg
        inner = _sequence(body, depth + 1)
        if group is None:
            return inner

        def capture(rng: random.Random, groups: dict[int, str]) -> str:
            groups[group] = text = inner(rng, groups)
            return text

        return capture
    if op is getattr(_sre, "ATOMIC_GROUP", None):
        return _sequence(arg, depth + 1)
    if op is _sre.BRANCH:
        branches = [_sequence(branch, depth + 1) for branch in arg[1]]
        return lambda rng, groups: branches[int(rng.random() * len(branches))](rng, groups)
    if op is _sre.GROUPREF:
        return lambda rng, groups: groups.get(arg, "")
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
        # anchors: the build is exactly the pattern, nothing around it; lookarounds are checked by re.search
        return _constant("")
    raise _Unsupported(f"regex construct {op}")


def _class_members(members: list[tuple[Any, Any]]) -> str:
    negate = bool(members) and members[0][0] is _sre.NEGATE
    allowed: list[str] = []
    for op, arg in members[1:] if negate else members:
        if op is _sre.LITERAL:
            allowed.append(chr(arg))
        elif op is _sre.RANGE:
            low, high = arg
            allowed.extend(chr(c) for c in range(low, min(high, low + 256) + 1))
        elif op is _sre.CATEGORY:
            allowed.extend(_CATEGORY_CHARS.get(arg, ""))
    if negate:
        excluded = set(allowed)
        allowed = [c for c in _PRINTABLE if c not in excluded]
    return "".join(allowed)
