"""Streaming YAML reading: a large document one list item at a time, with line numbers.

A recording file can hold tens of thousands of recordings, so the document is never built whole:
``YamlReader`` walks the top-level mapping with libyaml's event parser and builds one value at a time
straight from the events (no node tree: that is where PyYAML spends its time). A list under a top-level key
(``recordings:``, ``interactions:``) is yielded item by item; each item keeps the line of its fields down to
``LINE_DEPTH`` levels, so an error names the line of the offending field (``line_of``).

Plain scalars resolve as in PyYAML's safe loader (YAML 1.1), except that dates stay strings: a recording
never means a timestamp, and ``2024-10-21`` must survive as the api-version text it is. Explicit tags other
than the standard scalar ones (``!!str``, ``!!binary`` ...) are refused: a file never constructs objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import yaml
from yaml import events
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

try:  # libyaml's parser is several times faster; PyYAML without it still works
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: IO[bytes] | IO[str]) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

        def dispose(self) -> None:
            pass


LINE_DEPTH = 4  # fields deeper than this report the line of their nearest recorded ancestor
_TAG = "tag:yaml.org,2002:"
_STR, _TIMESTAMP, _MERGE = _TAG + "str", _TAG + "timestamp", _TAG + "merge"
_MAP, _SEQ = _TAG + "map", _TAG + "seq"
Path = tuple[str | int, ...]


class YamlFormatError(ValueError):
    """A problem in a file, at a line (1-based; 0 when no line applies)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class _Resolver(Resolver):
    pass


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


class _Scalars(SafeConstructor):
    """PyYAML's own constructors for the standard scalar tags, applied to one value at a time."""

    _BUILDERS = {
        _TAG + "null": SafeConstructor.construct_yaml_null,
        _TAG + "bool": SafeConstructor.construct_yaml_bool,
        _TAG + "int": SafeConstructor.construct_yaml_int,
        _TAG + "float": SafeConstructor.construct_yaml_float,
        _TAG + "binary": SafeConstructor.construct_yaml_binary,
        _TAG + "value": SafeConstructor.construct_scalar,
    }

    def __init__(self) -> None:
        super().__init__()
        self._resolver = _Resolver()
        self._plain: dict[str, Any] = {}

    def build(self, event: events.ScalarEvent) -> Any:
        value = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if event.style or not event.implicit[0]:  # quoted or block (libyaml marks plain as "")
                return value
            cached = self._plain.get(value, self)
            if cached is not self:
                return cached
            tag = self._resolver.resolve(ScalarNode, value, (True, False))
            built = self._with_tag(tag, event)
            if len(self._plain) < 10_000:
                self._plain[value] = built
            return built
        return self._with_tag(tag, event)

    def _with_tag(self, tag: str, event: events.ScalarEvent) -> Any:
        if tag == _STR:
            return event.value
        if tag == _MERGE:
            raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not supported",
                                                    event.start_mark)
        builder = self._BUILDERS.get(tag)
        if builder is None:
            raise yaml.constructor.ConstructorError(None, None, f"the tag {tag!r} is not allowed here",
                                                    event.start_mark)
        return builder(self, ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))


def _line(mark: Any) -> int:
    return mark.line + 1 if mark is not None else 0


def _as_format_error(error: yaml.YAMLError) -> YamlFormatError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context and problem else problem
    return YamlFormatError(f"not valid YAML ({text})", _line(mark))


@dataclass(slots=True)
class Item:
    """One value read from the file, with the lines of its fields (``path -> line``)."""

    value: Any
    line: int
    lines: dict[Path, int] = field(default_factory=dict)


def line_of(item: Item, path: Sequence[str | int]) -> int:
    """The line of the deepest field along ``path`` whose line is known (the item's own line at worst)."""
    for length in range(len(path), 0, -1):
        line = item.lines.get(tuple(path[:length]))
        if line:
            return line
    return item.line


class YamlReader:
    """``for key, line in reader.entries(): reader.value() or reader.sequence()`` over a top-level mapping."""

    def __init__(self, stream: IO[bytes] | IO[str]) -> None:
        self._parser = _Parser(stream)
        self._scalars = _Scalars()
        self._anchors: dict[str, Any] = {}
        self._pending = False  # an entry's value has not been read yet

    # -- the top level -------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[str, int]]:
        """The top-level keys in file order. Raises YamlFormatError for an empty file or a non-mapping."""
        try:
            yield from self._entries()
        except yaml.YAMLError as error:
            raise _as_format_error(error) from None
        finally:
            self._parser.dispose()

    def _entries(self) -> Iterator[tuple[str, int]]:
        parser = self._parser
        parser.get_event()  # StreamStart
        if parser.check_event(events.StreamEndEvent):
            raise YamlFormatError("the file is empty", 1)
        parser.get_event()  # DocumentStart
        start = parser.peek_event()
        if not isinstance(start, events.MappingStartEvent):
            if isinstance(start, events.ScalarEvent) and start.value == "" and start.implicit[0]:
                raise YamlFormatError("the file is empty", _line(start.start_mark))
            raise YamlFormatError("the top level of the file must be a mapping (key: value lines)",
                                  _line(start.start_mark))
        parser.get_event()
        seen: set[str] = set()
        while not parser.check_event(events.MappingEndEvent):
            event = parser.get_event()
            if not isinstance(event, events.ScalarEvent):
                raise YamlFormatError("top-level keys must be plain names", _line(event.start_mark))
            key, line = str(self._scalars.build(event)), _line(event.start_mark)
            if key in seen:
                raise YamlFormatError(f"'{key}' appears twice at the top level", line)
            seen.add(key)
            self._pending = True
            yield key, line
            if self._pending:  # the caller did not want this value: read it to move past it
                self._build(LINE_DEPTH, (), {})
                self._pending = False
        parser.get_event()  # MappingEnd
        parser.get_event()  # DocumentEnd
        if not parser.check_event(events.StreamEndEvent):
            raise YamlFormatError("the file holds more than one YAML document", _line(parser.peek_event().start_mark))

    def value(self) -> Item:
        """The whole value of the current top-level entry."""
        self._take_pending()
        try:
            line = _line(self._parser.peek_event().start_mark)
            lines: dict[Path, int] = {}
            return Item(self._build(0, (), lines), line, lines)
        except yaml.YAMLError as error:
            raise _as_format_error(error) from None

    def sequence(self) -> Iterator[Item]:
        """The items of the current entry's list, one at a time (``[]`` and an empty value give none)."""
        self._take_pending()
        try:
            yield from self._sequence()
        except yaml.YAMLError as error:
            raise _as_format_error(error) from None

    def _sequence(self) -> Iterator[Item]:
        get_event = self._parser.get_event
        start = get_event()
        if isinstance(start, events.ScalarEvent) and start.value in ("", "~", "null") and start.implicit[0]:
            return
        if not isinstance(start, events.SequenceStartEvent):
            raise YamlFormatError("expected a list ('- ' items)", _line(start.start_mark))
        while True:
            event = get_event()
            if isinstance(event, events.SequenceEndEvent):
                return
            lines: dict[Path, int] = {}
            yield Item(self._build_from(event, 0, (), lines), _line(event.start_mark), lines)

    def _take_pending(self) -> None:
        if not self._pending:
            raise RuntimeError("value() / sequence() must be called once, right after entries() yields a key")
        self._pending = False

    # -- one value from its events -------------------------------------------------------------------
    def _build(self, depth: int, path: Path, lines: dict[Path, int]) -> Any:
        return self._build_from(self._parser.get_event(), depth, path, lines)

    def _build_from(self, event: events.Event, depth: int, path: Path, lines: dict[Path, int]) -> Any:
        """The value that starts with ``event`` (one get_event per event: this is the hot loop of an import)."""
        get_event = self._parser.get_event
        if isinstance(event, events.ScalarEvent):
            value = self._scalars.build(event)
        elif isinstance(event, events.MappingStartEvent):
            self._check_tag(event)
            value = {}
            while True:
                key_event = get_event()
                if isinstance(key_event, events.MappingEndEvent):
                    break
                if not isinstance(key_event, events.ScalarEvent):
                    raise YamlFormatError("a mapping key must be a plain name", _line(key_event.start_mark))
                key = self._scalars.build(key_event)
                if isinstance(key, bytes | bytearray):
                    raise YamlFormatError("a mapping key must be a name", _line(key_event.start_mark))
                if depth < LINE_DEPTH:
                    lines[(*path, key)] = _line(key_event.start_mark)
                value[key] = self._build_from(get_event(), depth + 1, (*path, key), lines)
        elif isinstance(event, events.SequenceStartEvent):
            self._check_tag(event)
            value = []
            while True:
                item_event = get_event()
                if isinstance(item_event, events.SequenceEndEvent):
                    break
                if depth < LINE_DEPTH:
                    lines[(*path, len(value))] = _line(item_event.start_mark)
                value.append(self._build_from(item_event, depth + 1, (*path, len(value)), lines))
        elif isinstance(event, events.AliasEvent):
            if event.anchor not in self._anchors:
                raise YamlFormatError(f"unknown alias *{event.anchor}", _line(event.start_mark))
            return self._anchors[event.anchor]
        else:  # pragma: no cover - the parser only yields the events above inside a document
            raise YamlFormatError(f"unexpected {type(event).__name__}", _line(event.start_mark))
        if event.anchor:
            self._anchors[event.anchor] = value
        return value

    @staticmethod
    def _check_tag(event: events.CollectionStartEvent) -> None:
        if event.tag not in (None, "!", _MAP, _SEQ):
            raise yaml.constructor.ConstructorError(None, None, f"the tag {event.tag!r} is not allowed here",
                                                    event.start_mark)
