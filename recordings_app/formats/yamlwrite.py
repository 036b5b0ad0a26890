"""A small, fast YAML emitter for JSON-shaped values, in block style (what recording files hold).

PyYAML's representer builds a node per scalar and asks its resolver about each one; for files of tens of
thousands of recordings that dominates the export. This writes the same YAML directly: mappings as
``key: value`` lines, lists as ``- item`` lines, strings plain when YAML reads them back as the same
string and double-quoted (JSON escapes, which YAML shares) otherwise; multi-line strings as ``|`` block
literals when that keeps them exact. Whatever it writes, PyYAML's safe loader reads back equal (tested).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

_STR_TAG = "tag:yaml.org,2002:str"
# Starts with a letter, digit, underscore or non-ASCII letter; then only characters that never mean
# anything to YAML inside a plain scalar. ": " and " #" are excluded by not allowing ':' and '#' at all.
_PLAIN = re.compile(r"^[^\W][\w .,/()+=;@%'~^$&*!?<>|-]*$")
_RESOLVER = Resolver()
# Characters YAML either refuses raw or treats as line breaks: written as \u escapes in double quotes.
_UNSAFE_RAW = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_BLOCK_SAFE = re.compile(r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\t]*$")
_plain_cache: dict[str, bool] = {}


def _is_plain(text: str) -> bool:
    known = _plain_cache.get(text)
    if known is not None:
        return known
    plain = bool(_PLAIN.fullmatch(text)) and not text.endswith(" ") and (
        _RESOLVER.resolve(ScalarNode, text, (True, False)) == _STR_TAG
    )
    if len(_plain_cache) < 50_000:
        _plain_cache[text] = plain
    return plain


def quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escapes are YAML's too)."""
    out = orjson.dumps(text).decode()
    if _UNSAFE_RAW.search(out):
        out = _UNSAFE_RAW.sub(lambda found: f"\\u{ord(found.group()):04x}", out)
    return out


def scalar(value: Any) -> str:
    """One scalar as YAML text that reads back as the same value."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)  # YAML 1.1 floats need a dot
        return text
    text = str(value)
    return text if _is_plain(text) else quoted(text)


def _block_literal(text: str, pad: str) -> str | None:
    """``|`` text (its lines, each ending in a newline) when the literal keeps the string exact, else None."""
    if not _BLOCK_SAFE.fullmatch(text) or text.startswith((" ", "\n")):
        return None
    body = text.rstrip("\n")
    ends = len(text) - len(body)
    lines = body.split("\n")
    if any(line.endswith(" ") for line in lines):
        return None
    indicator = {0: "|-", 1: "|"}.get(ends, "|+")
    return indicator + "\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in lines) + "\n" * max(ends - 1, 0)


# Every writer below appends whole lines: each ends with a newline.


def _value_after_key(value: Any, indent: int, out: list[str]) -> None:
    """What follows ``key:`` (or ``-``): a scalar and the line end, or the line end and a nested block."""
    if isinstance(value, Mapping):
        if value:
            out.append("\n")
            _mapping(value, indent + 2, out)
        else:
            out.append(" {}\n")
    elif isinstance(value, list):
        if value:
            out.append("\n")
            _sequence(value, indent, out)
        else:
            out.append(" []\n")
    elif isinstance(value, str) and "\n" in value:
        literal = _block_literal(value, " " * (indent + 2))
        out.append(f" {literal}" if literal is not None else f" {quoted(value)}\n")
    else:
        out.append(f" {scalar(value)}\n")


def _mapping(value: Mapping[str, Any], indent: int, out: list[str], first_prefix: str | None = None) -> None:
    pad = " " * indent
    for position, (key, item) in enumerate(value.items()):
        out.append(first_prefix if position == 0 and first_prefix is not None else pad)
        out.append(scalar(key))
        out.append(":")
        _value_after_key(item, indent, out)


def _sequence(value: list[Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for item in value:
        if isinstance(item, Mapping) and item:
            _mapping(item, indent + 2, out, first_prefix=pad + "- ")
        elif isinstance(item, list) and item:
            out.append(pad + "-\n")
            _sequence(item, indent + 2, out)
        else:
            out.append(pad + "-")
            _value_after_key(item, indent, out)


def after_key(value: Any, indent: int) -> str:
    """The text after ``key:`` for any JSON-shaped value of a key at ``indent``."""
    out: list[str] = []
    _value_after_key(value, indent, out)
    return "".join(out)


def text_after_key(text: str, indent: int) -> str:
    """A string kept byte for byte after ``key:``: a ``|`` literal when YAML allows one, else double-quoted."""
    literal = _block_literal(text, " " * (indent + 2)) if text else None
    return f" {literal}" if literal is not None else f" {quoted(text)}\n"


def block(value: Mapping[str, Any], indent: int = 0) -> str:
    """A mapping as block YAML lines at ``indent``."""
    out: list[str] = []
    _mapping(value, indent, out)
    return "".join(out)


def list_item(value: Mapping[str, Any], indent: int = 0) -> str:
    """A mapping as one ``- `` item of a block list at ``indent``."""
    out: list[str] = []
    _mapping(value, indent + 2, out, first_prefix=" " * indent + "- ")
    return "".join(out)
