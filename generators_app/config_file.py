"""The config file (SPEC §10): declarative setup of keys and deployments (and, later, profiles and sets).

The flow is:

1. the text is composed with ``yaml.compose`` (safe loader), so every node keeps its line and column;
2. every section handler, in ``SECTIONS`` order, validates its entries into a ``Plan`` — nothing is
   written yet, and any problem raises ``ConfigError`` naming the file, line and column;
3. the plan is applied inside one ``transaction.atomic()``, in the same order (what others refer to
   comes first): entries are created or updated by name, everything the file does not name is left alone.

Extension points (see ``SectionHandler`` and ``Field``):

* a new top-level section is a ``SectionHandler`` (its fields, cross-entry checks and apply function)
  registered before the sections that refer to it: ``register_section(handler, before="deployments")``;
* a new deployment field is a ``Field`` (YAML key -> model attribute values) added to the deployments
  handler: ``register_deployment_field(reference_field("limit_profile", "limit_profiles", LimitProfile))``.

Optional fields keep the database value when an existing entry is updated and take the model's default
when it is created. Key secrets never appear in messages, reports or logs.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import DatabaseError, models, transaction

from generators_app.catalogue import MODELS, get_model
from generators_app.models import ApiKey, Deployment
from generators_app.services import do_set_api_key, do_upsert_deployment, hash_api_key

logger = logging.getLogger(__name__)

__all__ = [
    "DEPLOYMENTS",
    "KEYS",
    "SECTIONS",
    "ApplyReport",
    "ConfigError",
    "Deferred",
    "Field",
    "ParseContext",
    "Plan",
    "PlanItem",
    "SectionHandler",
    "apply_config_file",
    "apply_config_from_settings",
    "apply_config_text",
    "boolean_field",
    "choice_field",
    "integer_field",
    "mean_std_field",
    "number_field",
    "plan_config_file",
    "plan_config_text",
    "reference_field",
    "register_deployment_field",
    "register_section",
    "string_field",
    "string_list_field",
    "upsert_by_name",
]

_TAG = "tag:yaml.org,2002:"

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


# --- errors -------------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """A config file problem. ``str()`` is ``"<file>, line L, column C: <message>"``."""

    def __init__(
        self, message: str, *, source: str = "<config>", line: int | None = None, column: int | None = None
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        where = source
        if line is not None:
            where += f", line {line}"
            if column is not None:
                where += f", column {column}"
        super().__init__(f"{where}: {message}")


def describe(node: yaml.Node) -> str:
    """What a node is, in words, for "expected X, got Y" messages (never the value itself)."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = {
        "null": "nothing (null)",
        "bool": "a boolean",
        "int": "an integer",
        "float": "a decimal number",
        "str": "a string",
        "timestamp": "a date",
        "binary": "binary data",
    }
    return kind.get(node.tag.removeprefix(_TAG), f"a value tagged {node.tag}")


def _close(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=2)
    return f"did you mean {' or '.join(repr(m) for m in matches)}? " if matches else ""


# --- reading nodes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deferred:
    """A value only known at apply time (e.g. a profile the same file creates); ``resolve()`` gets it."""

    resolve: Callable[[], Any]


class ParseContext:
    """Typed readers over YAML nodes; every error they raise carries the node's line and column."""

    def __init__(self, source: str) -> None:
        self.source = source
        # section key -> entry name -> the entry's node, for the sections validated so far
        self.declared: dict[str, dict[str, yaml.Node]] = {}
        self.label: str | None = None
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node | None, message: str) -> ConfigError:
        if self.label:
            message = f"{self.label}: {message}"
        if node is None:
            return ConfigError(message, source=self.source)
        mark = node.start_mark
        return ConfigError(message, source=self.source, line=mark.line + 1, column=mark.column + 1)

    @contextmanager
    def within(self, label: str | None) -> Iterator[None]:
        previous, self.label = self.label, label
        try:
            yield
        finally:
            self.label = previous

    # scalars

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value, got {describe(node)}")
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            problem = getattr(exc, "problem", None) or "unreadable value"
            raise self.error(node, f"{what}: {problem}") from None

    def string(self, node: yaml.Node, what: str, *, allow_empty: bool = False) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str):
            hint = " (put it in quotes)" if value is not None else ""
            raise self.error(node, f"{what} must be a string, got {describe(node)}{hint}")
        if not allow_empty and not value.strip():
            raise self.error(node, f"{what} must not be empty")
        return value

    def integer(
        self, node: yaml.Node, what: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(node, f"{what} must be a whole number, got {describe(node)}")
        self._check_range(node, what, value, minimum, maximum)
        return value

    def number(
        self, node: yaml.Node, what: str, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        value = self.scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(node, f"{what} must be a number, got {describe(node)}")
        self._check_range(node, what, value, minimum, maximum)
        return float(value)

    def _check_range(self, node: yaml.Node, what: str, value: float, minimum: Any, maximum: Any) -> None:
        if minimum is not None and value < minimum:
            raise self.error(node, f"{what} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(node, f"{what} must be at most {maximum}, got {value}")

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            raise self.error(node, f"{what} must be true or false, got {describe(node)}")
        return value

    def choice(self, node: yaml.Node, what: str, choices: Sequence[str]) -> str:
        value = self.string(node, what)
        if value not in choices:
            hint, expected = _close(value, choices), ", ".join(choices)
            raise self.error(node, f"unknown {what} '{value}'; {hint}expected one of: {expected}")
        return value

    # collections

    def sequence(self, node: yaml.Node, what: str, *, allow_null: bool = True) -> list[yaml.Node]:
        if allow_null and isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list, got {describe(node)}")
        return list(node.value)

    def string_list(self, node: yaml.Node, what: str) -> list[str]:
        return [self.string(item, f"each item of {what}") for item in self.sequence(node, what)]

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """A free-form mapping's (key, value) nodes, refusing repeated keys (e.g. fault ``kinds``)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping, got {describe(node)}")
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                message = f"the keys of {what} must be plain values, not {describe(key_node)}"
                raise self.error(key_node, message)
            if key_node.value in seen:
                first = seen[key_node.value].start_mark.line + 1
                message = f"duplicate key '{key_node.value}' in {what} (first at line {first})"
                raise self.error(key_node, message)
            seen[key_node.value] = key_node
        return list(node.value)

    def mapping(
        self, node: yaml.Node, what: str | None, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> MappingReader:
        return MappingReader(self, node, what, tuple(allowed), tuple(required))

    def reference(self, node: yaml.Node, what: str, section: str, model: type[models.Model]) -> Deferred:
        """A name of an entry of ``section``: declared earlier in this file, or already in the database."""
        name = self.string(node, what)
        manager = model._default_manager
        if name not in self.declared.get(section, {}) and not manager.filter(name=name).exists():
            message = f"{what} '{name}' is neither in this file's '{section}' nor in the database"
            raise self.error(node, message)
        return Deferred(lambda: manager.get(name=name))


class MappingReader:
    """A mapping checked against the keys it may have: unknown, repeated and missing keys are errors.

    ``what`` names the mapping in messages; ``None`` for a section entry (the context label names it)."""

    def __init__(
        self,
        ctx: ParseContext,
        node: yaml.Node,
        what: str | None,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> None:
        if not isinstance(node, yaml.MappingNode):
            raise ctx.error(node, f"{what or 'each entry'} must be a mapping, got {describe(node)}")
        self.ctx, self.node, self.what = ctx, node, what
        where = f" in {what}" if what else ""
        self.entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise ctx.error(key_node, f"the keys{where} must be plain names, not {describe(key_node)}")
            if key in self.entries:
                first = self.entries[key][0].start_mark.line + 1
                raise ctx.error(key_node, f"duplicate key '{key}'{where} (first at line {first})")
            if key not in allowed:
                hint, listed = _close(key, allowed), ", ".join(allowed) or "none"
                raise ctx.error(key_node, f"unknown key '{key}'{where}; {hint}allowed: {listed}")
            self.entries[key] = (key_node, value_node)
        for key in required:
            if key not in self.entries:
                raise ctx.error(node, f"missing the required key '{key}'{where}")

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __iter__(self) -> Iterator[tuple[str, yaml.Node]]:
        for key, (_, value_node) in self.entries.items():
            yield key, value_node

    def value_node(self, key: str) -> yaml.Node:
        return self.entries[key][1]

    def key_node(self, key: str) -> yaml.Node:
        return self.entries[key][0]

    def exactly_one_of(self, *keys: str) -> str:
        present = [key for key in keys if key in self]
        options = " or ".join(f"'{key}'" for key in keys)
        where = f" in {self.what}" if self.what else ""
        if not present:
            raise self.ctx.error(self.node, f"give one of {options}{where}")
        if len(present) > 1:
            raise self.ctx.error(self.key_node(present[1]), f"give only one of {options}{where}, not both")
        return present[0]

    def at_most_one_of(self, *keys: str) -> str | None:
        present = [key for key in keys if key in self]
        if len(present) > 1:
            options = " or ".join(f"'{key}'" for key in keys)
            where = f" in {self.what}" if self.what else ""
            raise self.ctx.error(self.key_node(present[1]), f"give only one of {options}{where}, not both")
        return present[0] if present else None


# --- fields and sections ------------------------------------------------------------------------------------

FieldReader = Callable[[ParseContext, yaml.Node, str], dict[str, Any]]


@dataclass(frozen=True)
class Field:
    """One key of a section entry. ``read(ctx, value_node, key)`` validates the YAML value and returns the
    model attribute values it sets (a value may be a ``Deferred``, resolved at apply time)."""

    key: str
    read: FieldReader
    required: bool = False


@dataclass(repr=False)
class PlanItem:
    """One validated entry, ready to apply. ``values`` may hold secrets: it is kept out of ``repr``."""

    section: str
    name: str
    node: yaml.Node
    values: dict[str, Any]

    def resolved(self) -> dict[str, Any]:
        return {k: v.resolve() if isinstance(v, Deferred) else v for k, v in self.values.items()}

    def __repr__(self) -> str:
        return f"PlanItem({self.section!r}, {self.name!r})"


EntryCheck = Callable[[ParseContext, MappingReader, dict[str, Any]], None]
SectionCheck = Callable[[ParseContext, list[PlanItem]], None]


@dataclass
class SectionHandler:
    """A top-level section: a list of ``{name, ...fields}`` entries, created or updated by name.

    * ``fields``: the keys an entry may have besides ``name`` (``Field.read`` validates each one);
    * ``exactly_one`` / ``at_most_one``: groups of keys that exclude each other (e.g. key / key_env);
    * ``entry_checks``: cross-field checks of one entry, ``(ctx, reader, values)``;
    * ``section_checks``: checks across all entries and the database, ``(ctx, items)``;
    * ``apply``: writes one item, returns ``"created"``, ``"updated"`` or ``"unchanged"``;
    * ``model``: where the entries live; plain model fields are also checked with the model field's
      own validation (max_length, choices, validators) before anything is written.
    """

    key: str
    item_label: str
    model: type[models.Model]
    fields: dict[str, Field]
    apply: Callable[[PlanItem], str]
    exactly_one: list[tuple[str, ...]] = field(default_factory=list)
    at_most_one: list[tuple[str, ...]] = field(default_factory=list)
    entry_checks: list[EntryCheck] = field(default_factory=list)
    section_checks: list[SectionCheck] = field(default_factory=list)

    def add_field(self, new: Field) -> Field:
        self.fields[new.key] = new
        return new

    def parse(self, ctx: ParseContext, node: yaml.Node) -> list[PlanItem]:
        items: list[PlanItem] = []
        declared = ctx.declared.setdefault(self.key, {})
        for index, entry_node in enumerate(ctx.sequence(node, f"'{self.key}'"), start=1):
            hint = _peek_name(entry_node)
            label = f"{self.item_label} '{hint}'" if hint else f"{self.item_label} #{index}"
            with ctx.within(label):
                item = self._parse_entry(ctx, entry_node)
            if item.name in declared:
                first = declared[item.name].start_mark.line + 1
                raise ctx.error(
                    _name_node(entry_node),
                    f"duplicate {self.item_label} name '{item.name}' in '{self.key}' (first at line {first})",
                )
            declared[item.name] = entry_node
            items.append(item)
        for check in self.section_checks:
            check(ctx, items)
        return items

    def _parse_entry(self, ctx: ParseContext, node: yaml.Node) -> PlanItem:
        required = ["name", *(key for key, f in self.fields.items() if f.required)]
        reader = ctx.mapping(node, None, ["name", *self.fields], required)
        name_node = reader.value_node("name")
        name = ctx.string(name_node, "name")
        self._clean_model_field(ctx, "name", name, name_node)
        for group in self.exactly_one:
            reader.exactly_one_of(*group)
        for group in self.at_most_one:
            reader.at_most_one_of(*group)
        values: dict[str, Any] = {}
        for key, value_node in reader:
            if key == "name":
                continue
            produced = self.fields[key].read(ctx, value_node, key)
            for attr, value in produced.items():
                if not isinstance(value, Deferred):
                    self._clean_model_field(ctx, attr, value, value_node)
            values.update(produced)
        for check in self.entry_checks:
            check(ctx, reader, values)
        return PlanItem(self.key, name, node, values)

    def _clean_model_field(self, ctx: ParseContext, attr: str, value: Any, node: yaml.Node) -> None:
        try:
            model_field = self.model._meta.get_field(attr)
        except FieldDoesNotExist:
            return  # not a model attribute (e.g. a key's secret): its reader validated it
        if not model_field.concrete or model_field.is_relation:
            return
        try:
            model_field.clean(value, None)
        except ValidationError as exc:
            raise ctx.error(node, f"{attr} is not valid: {' '.join(exc.messages)}") from None


def _peek_name(node: yaml.Node) -> str | None:
    name_node = _name_node(node)
    if isinstance(name_node, yaml.ScalarNode) and name_node.tag == _TAG + "str" and name_node.value:
        return name_node.value
    return None


def _name_node(node: yaml.Node) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == "name":
                return value_node
    return node


# --- field helpers (for this module and for the sections to come) -------------------------------------------


def string_field(key: str, attr: str | None = None, *, required: bool = False) -> Field:
    return Field(key, lambda ctx, node, what: {attr or key: ctx.string(node, what)}, required)


def integer_field(
    key: str,
    attr: str | None = None,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
    required: bool = False,
) -> Field:
    return Field(
        key,
        lambda ctx, node, what: {attr or key: ctx.integer(node, what, minimum=minimum, maximum=maximum)},
        required,
    )


def number_field(
    key: str,
    attr: str | None = None,
    *,
    minimum: float | None = 0,
    maximum: float | None = None,
    required: bool = False,
) -> Field:
    return Field(
        key,
        lambda ctx, node, what: {attr or key: ctx.number(node, what, minimum=minimum, maximum=maximum)},
        required,
    )


def boolean_field(key: str, attr: str | None = None, *, required: bool = False) -> Field:
    return Field(key, lambda ctx, node, what: {attr or key: ctx.boolean(node, what)}, required)


def choice_field(
    key: str, choices: Callable[[], Sequence[str]], attr: str | None = None, *, required: bool = False
) -> Field:
    """``choices`` is called at validation time, so it can read a model field's current choices."""
    return Field(key, lambda ctx, node, what: {attr or key: ctx.choice(node, what, choices())}, required)


def string_list_field(key: str, attr: str | None = None, *, required: bool = False) -> Field:
    return Field(key, lambda ctx, node, what: {attr or key: ctx.string_list(node, what)}, required)


def reference_field(
    key: str, section: str, model: type[models.Model], attr: str | None = None, *, required: bool = False
) -> Field:
    """A name of an entry of another section (validated before this one, so put ``section`` earlier)."""

    def read(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
        return {attr or key: ctx.reference(node, what, section, model)}

    return Field(key, read, required)


def mean_std_field(
    key: str,
    mean_attr: str,
    std_attr: str,
    *,
    integer: bool = False,
    mean_minimum: float = 0,
    required: bool = False,
) -> Field:
    """A ``{mean, std}`` pair (a normal distribution clipped at zero); ``std`` may be left out."""

    def read(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
        reader = ctx.mapping(node, what, ("mean", "std"), ("mean",))
        number = ctx.integer if integer else ctx.number
        values = {mean_attr: number(reader.value_node("mean"), f"{what}.mean", minimum=mean_minimum)}
        if "std" in reader:
            values[std_attr] = number(reader.value_node("std"), f"{what}.std", minimum=0)
        return values

    return Field(key, read, required)


def upsert_by_name(model: type[models.Model]) -> Callable[[PlanItem], str]:
    """A generic ``apply`` for sections whose entries are plain rows keyed by a unique ``name``."""

    def apply(item: PlanItem) -> str:
        values = item.resolved()
        obj = model._default_manager.filter(name=item.name).first()
        if obj is None:
            obj = model(name=item.name, **values)
            action = CREATED
        else:
            changed = {attr: v for attr, v in values.items() if getattr(obj, attr) != v}
            if not changed:
                return UNCHANGED
            for attr, value in changed.items():
                setattr(obj, attr, value)
            action = UPDATED
        obj.full_clean()
        obj.save()
        return action

    return apply


# --- keys ---------------------------------------------------------------------------------------------------


def _read_key_secret(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    return {"secret": ctx.string(node, what)}


def _read_key_env(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    variable = ctx.string(node, what)
    secret = os.environ.get(variable, "").strip()
    if not secret:
        raise ctx.error(node, f"{what}: the environment variable '{variable}' is not set or is empty")
    return {"secret": secret}


def _check_key_secrets(ctx: ParseContext, items: list[PlanItem]) -> None:
    """Secrets are unique (only their hash is stored): within the file, and against other stored keys."""
    names_in_file = {item.name for item in items}
    by_hash: dict[str, PlanItem] = {}
    for item in items:
        key_hash = hash_api_key(item.values["secret"])
        if key_hash in by_hash:
            first = by_hash[key_hash].name
            raise ctx.error(item.node, f"key '{item.name}' has the same secret as key '{first}'")
        by_hash[key_hash] = item
        holders = ApiKey.objects.filter(key_hash=key_hash).exclude(name=item.name)
        other = holders.values_list("name", flat=True).first()
        if other is not None and other not in names_in_file:
            raise ctx.error(item.node, f"key '{item.name}' has the same secret as the existing key '{other}'")


def _apply_key(item: PlanItem) -> str:
    secret = item.values["secret"]
    existing = ApiKey.objects.filter(name=item.name).first()
    if existing is not None and existing.enabled and existing.key_hash == hash_api_key(secret):
        return UNCHANGED
    do_set_api_key(item.name, secret)
    return CREATED if existing is None else UPDATED


KEYS = SectionHandler(
    key="keys",
    item_label="key",
    model=ApiKey,
    fields={
        "key": Field("key", _read_key_secret),
        "key_env": Field("key_env", _read_key_env),
    },
    apply=_apply_key,
    exactly_one=[("key", "key_env")],
    section_checks=[_check_key_secrets],
)


# --- deployments --------------------------------------------------------------------------------------------


def _read_model(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    name = ctx.string(node, what)
    if get_model(name) is None:
        known = list(MODELS)
        shown = ", ".join(known[:6]) + (", …" if len(known) > 6 else "")
        hint = _close(name, known)
        message = f"unknown model '{name}'; {hint}known models include: {shown} ({len(known)} in all)"
        raise ctx.error(node, message)
    return {"model": name}


def _deployment_modes() -> list[str]:
    return [value for value, _ in Deployment._meta.get_field("mode").choices]


def _apply_deployment(item: PlanItem) -> str:
    values = item.resolved()
    existing = Deployment.objects.filter(name=item.name).first()
    if existing is not None and all(getattr(existing, attr) == value for attr, value in values.items()):
        return UNCHANGED
    do_upsert_deployment(item.name, **values)
    return CREATED if existing is None else UPDATED


DEPLOYMENTS = SectionHandler(
    key="deployments",
    item_label="deployment",
    model=Deployment,
    fields={
        "model": Field("model", _read_model, required=True),
        "mode": choice_field("mode", _deployment_modes),
        "output_tokens": mean_std_field(
            "output_tokens", "output_tokens_mean", "output_tokens_std", integer=True, mean_minimum=1
        ),
    },
    apply=_apply_deployment,
)


# In dependency order: a section may refer only to sections before it; it is validated and applied so.
SECTIONS: dict[str, SectionHandler] = {handler.key: handler for handler in (KEYS, DEPLOYMENTS)}


def register_section(handler: SectionHandler, *, before: str | None = None) -> SectionHandler:
    """Add a section (last, or ahead of ``before``, a section that refers to it) or replace one in place."""
    if before is None and handler.key in SECTIONS:
        SECTIONS[handler.key] = handler
        return handler
    order = [h for key, h in SECTIONS.items() if key != handler.key]
    position = next((i for i, h in enumerate(order) if h.key == before), len(order))
    order.insert(position, handler)
    SECTIONS.clear()
    SECTIONS.update((h.key, h) for h in order)
    return handler


def register_deployment_field(new: Field) -> Field:
    return DEPLOYMENTS.add_field(new)


# --- plan and apply -----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A validated file: the items of every section, in apply order."""

    source: str
    items: list[PlanItem]

    def summary(self) -> str:
        counts = {key: sum(1 for item in self.items if item.section == key) for key in SECTIONS}
        named = ", ".join(f"{n} {key}" for key, n in counts.items() if n) or "nothing"
        return f"{self.source} is valid: {named}"


@dataclass
class ApplyReport:
    """What applying a file did: ``(section, name, action)`` per entry, action created/updated/unchanged."""

    source: str
    actions: list[tuple[str, str, str]] = field(default_factory=list)

    def names(self, section: str, action: str) -> list[str]:
        return [name for sec, name, act in self.actions if sec == section and act == action]

    def _by_action(self, action: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for section, name, act in self.actions:
            if act == action:
                out.setdefault(section, []).append(name)
        return out

    @property
    def created(self) -> dict[str, list[str]]:
        return self._by_action(CREATED)

    @property
    def updated(self) -> dict[str, list[str]]:
        return self._by_action(UPDATED)

    @property
    def unchanged(self) -> dict[str, list[str]]:
        return self._by_action(UNCHANGED)

    @property
    def changed(self) -> bool:
        return any(act != UNCHANGED for _, _, act in self.actions)

    def summary(self) -> str:
        lines = [f"Applied {self.source}:"]
        sections = list(dict.fromkeys(section for section, _, _ in self.actions))
        for section in sections:
            parts = []
            for action in (CREATED, UPDATED, UNCHANGED):
                names = self.names(section, action)
                if names:
                    listed = f" ({', '.join(names)})" if action != UNCHANGED else ""
                    parts.append(f"{len(names)} {action}{listed}")
            lines.append(f"  {section}: {'; '.join(parts)}")
        if not sections:
            lines[0] += " nothing to do"
        return "\n".join(lines)


def _compose(text: str, source: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or 'syntax error'}"
        if exc.context:
            context = exc.context
            if exc.context_mark is not None and exc.problem_mark is not None:
                context += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            message += f" ({context})"
        # Built from the marks alone: the error's own str() quotes the line, which may hold a secret.
        if mark is None:
            raise ConfigError(message, source=source) from None
        raise ConfigError(message, source=source, line=mark.line + 1, column=mark.column + 1) from None
    except yaml.YAMLError as exc:  # a ReaderError: a character YAML does not allow
        position = getattr(exc, "position", None)
        reason = getattr(exc, "reason", "unreadable input")
        if position is None:
            raise ConfigError(f"invalid YAML: {reason}", source=source) from None
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        raise ConfigError(f"invalid YAML: {reason}", source=source, line=line, column=column) from None
    if root is None:
        raise ConfigError(
            f"the file is empty; expected a mapping with {' and/or '.join(repr(k) for k in SECTIONS)}",
            source=source,
            line=1,
            column=1,
        )
    return root


def plan_config_text(text: str, source: str = "<config>") -> Plan:
    """Validate everything (reading, never writing, the database); ``ConfigError`` on the first problem."""
    ctx = ParseContext(source)
    root = _compose(text, source)
    if not isinstance(root, yaml.MappingNode):
        message = f"the top level must be a mapping of sections such as 'keys', not {describe(root)}"
        raise ctx.error(root, message)
    top = ctx.mapping(root, "the top level", SECTIONS)
    items: list[PlanItem] = []
    for key, handler in SECTIONS.items():
        if key in top:
            items.extend(handler.parse(ctx, top.value_node(key)))
    return Plan(source, items)


def plan_config_file(path: str | Path) -> Plan:
    return plan_config_text(*_read(path))


def _read(path: str | Path) -> tuple[str, str]:
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=source) from None
    try:
        return data.decode("utf-8-sig"), source
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError("the file is not UTF-8 text", source=source, line=line) from None


def _apply_plan(plan: Plan) -> ApplyReport:
    report = ApplyReport(plan.source)
    ctx = ParseContext(plan.source)
    with transaction.atomic():
        for item in plan.items:
            handler = SECTIONS[item.section]
            try:
                action = handler.apply(item)
            except (ValueError, ValidationError, DatabaseError) as exc:
                detail = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                message = f"could not apply {handler.item_label} '{item.name}': {detail}"
                raise ctx.error(item.node, message) from None
            report.actions.append((item.section, item.name, action))
    return report


def apply_config_text(text: str, source: str = "<config>") -> ApplyReport:
    """Validate ``text`` completely, then create/update what it names in one transaction."""
    return _apply_plan(plan_config_text(text, source))


def apply_config_file(path: str | Path) -> ApplyReport:
    """Like ``apply_config_text`` for a file; errors name the file."""
    return _apply_plan(plan_config_file(path))


def apply_config_from_settings() -> ApplyReport | None:
    """Apply ``settings.SIMULATOR_CONFIG`` if it is set (at server start); ``None`` if it is not."""
    path = getattr(settings, "SIMULATOR_CONFIG", "")
    if not path:
        return None
    report = apply_config_file(path)
    logger.info("%s", report.summary())
    return report


# Sections that other concerns contribute (limit/latency/fault profiles, recording sets, ...).
from generators_app import config_sections  # noqa: E402

config_sections.load_all()
