"""What extensions registered, and ``ExtensionRegistry``: the object each extension's ``register(sim)`` gets.

Registration happens once per process, at start, before the first request; afterwards everything here is
read-only, and the per-(operation, route) selections are computed once and cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from generators_app.catalogue import AnyOperation, CustomOperation, ModelSpec, Operation, add_model, get_model
from generators_app.errors import Surface
from generators_app.extensions.api import (
    Forwarder,
    Generator,
    LatencyFunction,
    RequestHook,
    ResponseHook,
    TokenCost,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SURFACES = (Surface.AZURE, Surface.AZURE_V1, Surface.OPENAI)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_KINDS = ("generators", "forwarders", "latency_functions", "request_hooks", "response_hooks")


class ExtensionError(ValueError):
    """A registration the simulator cannot accept (a bad pattern, a name used twice…)."""


@dataclass(frozen=True, slots=True)
class Route:
    """A path the simulator serves for an extension. Built by ``ExtensionRegistry.add_route``."""

    name: str
    pattern: str  # a regular expression on the path without its leading slash
    operation: CustomOperation
    methods: frozenset[str]
    surface: str
    deployment: str | None  # a fixed deployment; a `deployment` group in the pattern wins
    auth: bool
    auth_header: bytes | None
    limits: bool
    latency: bool
    faults: bool
    record_replay: bool
    metrics: bool
    token_cost: TokenCost | None
    extension: str


@dataclass(frozen=True, slots=True)
class Registered:
    """One registered callable and what it applies to (None: every route or operation)."""

    function: Callable[..., Any]
    route: str | None
    operation: str | None
    extension: str
    name: str  # for messages: extension:function

    def applies(self, operation: str, route: str | None) -> bool:
        return (self.operation is None or self.operation == operation) and (self.route is None or self.route == route)


@dataclass
class LoadedExtensions:
    """Every extension this process loaded. ``active`` is False when there are none: the hot path checks only it."""

    names: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    generators: list[Registered] = field(default_factory=list)
    forwarders: list[Registered] = field(default_factory=list)
    latency_functions: list[Registered] = field(default_factory=list)
    request_hooks: list[Registered] = field(default_factory=list)
    response_hooks: list[Registered] = field(default_factory=list)
    active: bool = False
    _selected: dict[tuple[str, str, str | None], tuple[Registered, ...]] = field(default_factory=dict)

    def select(self, kind: str, operation: str, route: str | None) -> tuple[Registered, ...]:
        """The ``kind`` callables for a request, in registration order (cached)."""
        key = (kind, operation, route)
        found = self._selected.get(key)
        if found is None:
            found = self._selected[key] = tuple(e for e in getattr(self, kind) if e.applies(operation, route))
        return found

    def handles(self, operation: str, route: str | None) -> bool:
        """Whether any extension callable applies (cached: the built-in hot path asks this per request)."""
        key = ("*", operation, route)
        found = self._selected.get(key)
        if found is None:
            found = tuple(entry for kind in _KINDS for entry in self.select(kind, operation, route))
            self._selected[key] = found
        return bool(found)

    def route_named(self, name: str) -> Route | None:
        return next((route for route in self.routes if route.name == name), None)

    def validate(self) -> None:
        """Cross-checks once every extension registered: targets exist, models' operations are served."""
        operations = {op.value for op in Operation} | {route.operation for route in self.routes}
        for kind in _KINDS:
            for entry in getattr(self, kind):
                if entry.route is not None and self.route_named(entry.route) is None:
                    raise ExtensionError(f"{entry.name} is registered for route '{entry.route}', which no extension "
                                         f"added (routes: {', '.join(r.name for r in self.routes) or 'none'})")
                if entry.operation is not None and entry.operation not in operations:
                    raise ExtensionError(f"{entry.name} is registered for operation '{entry.operation}', which is "
                                         f"neither built in nor any route's (known: {', '.join(sorted(operations))})")
        for spec in self.models:
            for operation in spec.operations:
                if operation not in operations:
                    raise ExtensionError(f"model '{spec.name}' serves operation '{operation}', which no route has")
        self.active = bool(self.routes or any(getattr(self, kind) for kind in _KINDS))
        self._selected.clear()


def _callable(function: Any, what: str) -> Callable[..., Any]:
    if not callable(function):
        raise ExtensionError(f"{what} must be a function, not {type(function).__name__}")
    return function


def _describe(function: Callable[..., Any], extension: str) -> str:
    """``my_ext.py:analyse``: the extension as SIMULATOR_EXTENSIONS names it, and the function."""
    return f"{extension}:{getattr(function, '__qualname__', repr(function))}"


def _normalized_pattern(pattern: str) -> str:
    body = pattern[1:] if pattern.startswith("^") else pattern
    return "^" + body.lstrip("/")


class ExtensionRegistry:
    """What ``register(sim)`` receives. Every method checks its arguments at once and raises ExtensionError
    with a readable message, so a broken extension stops the start instead of failing requests later."""

    def __init__(self, loaded: LoadedExtensions, extension: str) -> None:
        self._loaded = loaded
        self.extension = extension

    def add_route(
        self,
        name: str,
        pattern: str,
        *,
        operation: str | None = None,
        methods: Iterable[str] = ("POST",),
        surface: str = Surface.AZURE,
        deployment: str | None = None,
        auth: bool = True,
        auth_header: str | None = None,
        limits: bool = True,
        latency: bool = True,
        faults: bool = True,
        record_replay: bool = True,
        metrics: bool = True,
        token_cost: TokenCost | None = None,
    ) -> Route:
        """Serve requests whose path matches ``pattern`` (a regular expression on the path without its
        leading slash; a named group ``deployment`` names the deployment, else ``deployment`` fixes it, else
        the route has none and limits, latency, faults and record/replay, which are per deployment, are off).

        ``operation`` (default: the route's name) is what generators, hooks, metrics and recordings know the
        route's requests as. ``auth_header`` is a header that carries the API key besides ``api-key`` and
        ``Authorization: Bearer`` (``ocp-apim-subscription-key``). ``token_cost`` counts a request's tokens
        for a token-per-minute limit (default 0: only the request limits apply). The flags opt out of the
        built-in machinery; all are on by default.
        """
        if not _NAME.match(name or ""):
            raise ExtensionError(f"route name '{name}' must be 1-32 lower-case letters, digits or _")
        if self._loaded.route_named(name) is not None:
            raise ExtensionError(f"a route named '{name}' already exists")
        operation = operation or name
        if not _NAME.match(operation):
            raise ExtensionError(f"operation '{operation}' must be 1-32 lower-case letters, digits or _")
        if operation in {op.value for op in Operation}:
            raise ExtensionError(f"operation '{operation}' is built in; use add_generator(operation=...) to answer "
                                 "it, or give the route an operation of its own")
        normalized = _normalized_pattern(pattern)
        try:
            compiled = re.compile(normalized)
        except re.error as error:
            raise ExtensionError(f"route '{name}': pattern {pattern!r} is not a regular expression: {error}") from None
        # Those paths are routed ahead of every extension (asgi.py): say so now rather than never match.
        for taken in ("api/", "admin/", "static/", "healthz", "readyz", "metrics"):
            if compiled.match(taken) or normalized.startswith("^" + taken):
                raise ExtensionError(f"route '{name}': pattern {pattern!r} would take over /{taken}")
        wanted = frozenset(method.upper() for method in methods)
        if not wanted or not wanted <= _METHODS:
            raise ExtensionError(f"route '{name}': methods must be some of {', '.join(sorted(_METHODS))}")
        if surface not in _SURFACES:
            raise ExtensionError(f"route '{name}': surface must be one of {', '.join(_SURFACES)}")
        if token_cost is not None:
            _callable(token_cost, f"route '{name}': token_cost")
        route = Route(
            name=name, pattern=normalized, operation=CustomOperation(operation), methods=wanted, surface=surface,
            deployment=deployment, auth=auth,
            auth_header=auth_header.lower().encode("latin-1") if auth_header else None, limits=limits,
            latency=latency, faults=faults, record_replay=record_replay, metrics=metrics, token_cost=token_cost,
            extension=self.extension,
        )
        self._loaded.routes.append(route)
        return route

    def add_model(
        self,
        name: str,
        *,
        operations: Iterable[str],
        tokenizer: str = "o200k_base",
        version: str | None = None,
        context_window: int = 128_000,
        max_output_tokens: int = 16_384,
    ) -> ModelSpec:
        """A model deployments can name: for a route's own operation (``document_analysis``) or a built-in
        one (a ``chat`` model the catalogue lacks)."""
        if get_model(name) is not None:
            raise ExtensionError(f"a model named '{name}' already exists")
        if tokenizer not in ("o200k_base", "cl100k_base"):
            raise ExtensionError(f"model '{name}': tokenizer must be o200k_base or cl100k_base")
        builtin = {op.value: op for op in Operation}
        served: set[AnyOperation] = {builtin.get(op) or CustomOperation(op) for op in operations}
        if not served:
            raise ExtensionError(f"model '{name}' must serve at least one operation")
        spec = ModelSpec(name, version or name, tokenizer, frozenset(served), context_window, max_output_tokens)
        add_model(spec)
        self._loaded.models.append(spec)
        return spec

    def _add(self, kind: str, function: Any, route: Route | str | None, operation: str | None) -> None:
        function = _callable(function, kind.rstrip("s").replace("_", " "))
        route_name = route.name if isinstance(route, Route) else route
        getattr(self._loaded, kind).append(
            Registered(function, route_name, operation, self.extension, _describe(function, self.extension))
        )

    def add_generator(self, function: Generator, *, route: Route | str | None = None,
                      operation: str | None = None) -> None:
        """Answer requests: ``function(request, deployment, context)`` returns a Response or StreamResponse,
        or None to decline (the next generator is tried; the built-in one comes last)."""
        self._add("generators", function, route, operation)

    def add_forwarder(self, function: Forwarder, *, route: Route | str | None = None,
                      operation: str | None = None) -> None:
        """Record modes: ``function(request, deployment, context)`` returns the Upstream to forward to, or None
        (the next forwarder, then the deployment's upstream endpoint)."""
        self._add("forwarders", function, route, operation)

    def add_latency(self, function: LatencyFunction, *, route: Route | str | None = None,
                    operation: str | None = None) -> None:
        """``function(request, deployment, context, answer)`` returns a Latency, milliseconds, or None (the
        deployment's latency profile then applies). An x-simulator-latency-ms header still wins."""
        self._add("latency_functions", function, route, operation)

    def add_request_hook(self, function: RequestHook, *, route: Route | str | None = None,
                         operation: str | None = None) -> None:
        """Before limits: ``function(request, deployment, context)``; a Response it returns answers at once."""
        self._add("request_hooks", function, route, operation)

    def add_response_hook(self, function: ResponseHook, *, route: Route | str | None = None,
                          operation: str | None = None) -> None:
        """After the answer is made, errors included: ``function(request, deployment, context, answer)``."""
        self._add("response_hooks", function, route, operation)


EXTENSIONS = LoadedExtensions()
