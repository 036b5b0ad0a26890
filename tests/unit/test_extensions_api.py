"""generators_app.extensions: loading, registering and dispatching to extensions, without a server.

Every test loads into a fresh ``LoadedExtensions`` (never the process-wide ``EXTENSIONS``); models that
extensions add to the global catalogue and modules they import are removed again after each test.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from examples import echo_extension
from generators_app import shaping
from generators_app.answers import DroppedConnection, Headers, JsonAnswer, StreamAnswer
from generators_app.catalogue import MODELS, CustomOperation, Operation, get_model, operation_id
from generators_app.errors import ApiError, Surface
from generators_app.extensions import dispatch
from generators_app.extensions.api import (
    AnswerView,
    ExtensionContext,
    ExtensionRequest,
    Latency,
    Response,
    StreamResponse,
    sse_event,
)
from generators_app.extensions.dispatch import (
    ExtensionCall,
    call_for,
    matchable_payload,
    reply_answer,
    route_deployment,
)
from generators_app.extensions.loader import ExtensionLoadError, load_extensions
from generators_app.extensions.registry import (
    EXTENSIONS,
    ExtensionError,
    ExtensionRegistry,
    LoadedExtensions,
    Registered,
    Route,
)
from generators_app.registry import DeploymentConfig

SIMULATOR_HEADERS: Headers = [(b"x-sim", b"1")]


# --- fixtures and helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    """Drop the models and extension modules a test added; check the process-wide EXTENSIONS stayed empty."""
    models, modules = set(MODELS), set(sys.modules)
    names, routes = list(EXTENSIONS.names), list(EXTENSIONS.routes)
    yield
    for name in set(MODELS) - models:
        MODELS.pop(name)
    for name in set(sys.modules) - modules:
        if name.startswith(("unit_ext_", "simulator_extension_unit_ext_")):
            sys.modules.pop(name)
    assert (EXTENSIONS.names, EXTENSIONS.routes) == (names, routes)


@pytest.fixture()
def loaded(monkeypatch: pytest.MonkeyPatch) -> LoadedExtensions:
    """A fresh LoadedExtensions that dispatch selects from (register, then ``validate()`` it)."""
    fresh = LoadedExtensions()
    monkeypatch.setattr(dispatch, "EXTENSIONS", fresh)
    return fresh


def unique(prefix: str = "unit_ext_") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def write_extension(directory: Path, source: str, stem: str | None = None) -> Path:
    path = directory / f"{stem or unique()}.py"
    path.write_text(textwrap.dedent(source))
    return path


def line_of(source: str, marker: str = "# fails") -> int:
    """The 1-based line of ``marker`` in the dedented source."""
    lines = textwrap.dedent(source).splitlines()
    return next(number for number, line in enumerate(lines, 1) if marker in line)


def make_request(json: Any = None, *, operation: str = "chat", route: str | None = None, body: bytes = b"",
                 headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
                 path_params: dict[str, str] | None = None) -> ExtensionRequest:
    return ExtensionRequest(method="POST", path="/x", query=query or {}, headers=headers or {}, body=body, json=json,
                            path_params=path_params or {}, operation=operation, route=route, surface=Surface.AZURE)


def route_call(loaded: LoadedExtensions, route: Route, *, headers: Headers | None = None, body: bytes = b"",
               query: bytes = b"", path_params: dict[str, str] | None = None) -> ExtensionCall:
    """Validate ``loaded`` (after the test registered everything) and build the route request's call."""
    loaded.validate()
    call = call_for(method="POST", path=f"/{route.name}", query_string=query, headers=headers or [], body=body,
                    payload=None, operation=route.operation, surface=route.surface, deployment=None, route=route,
                    path_params=path_params)
    assert call is not None
    return call


def generate(call: ExtensionCall, fallback: Any = None) -> Any:
    async def scenario() -> Any:
        result = call.generator(fallback)(SIMULATOR_HEADERS)
        return await result if asyncio.iscoroutine(result) else result

    return asyncio.run(scenario())


def answer_ok(*_: Any) -> Response:
    return Response({"ok": True})


def decline(*_: Any) -> None:
    return None


def error_of(raised: pytest.ExceptionInfo[ApiError]) -> dict[str, Any]:
    return raised.value.body["error"]


# --- loader ---------------------------------------------------------------------------------------------------

REGISTER_ROUTE = """
def register(sim):
    sim.add_route("{name}", r"^{name}/?$")
"""


def test_a_dotted_module_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = unique()
    write_extension(tmp_path, REGISTER_ROUTE.format(name="dotted"), stem=module)
    target = LoadedExtensions()

    assert load_extensions([module], target) is target
    assert target.names == [module]
    assert [(route.name, route.extension, route.pattern) for route in target.routes] == [
        ("dotted", module, "^dotted/?$")]
    assert target.active


def test_a_file_path_loads(tmp_path: Path) -> None:
    path = write_extension(tmp_path, REGISTER_ROUTE.format(name="filed"))
    target = load_extensions([f"  {path}  "], LoadedExtensions())  # entries are stripped
    assert target.names == [str(path)]
    assert target.routes[0].name == "filed"
    assert target.routes[0].extension == str(path)


def test_the_echo_example_loads_into_a_fresh_registry() -> None:
    target = load_extensions(["examples.echo_extension"], LoadedExtensions())
    assert [route.name for route in target.routes] == ["echo"]
    assert [entry.function for entry in target.generators] == [echo_extension.echo_back, echo_extension.chat_echo]
    assert target.select("generators", "chat", None)[0].function is echo_extension.chat_echo


def test_loading_the_same_entry_twice_is_a_no_op(tmp_path: Path) -> None:
    # register() adds a route of a fixed name: a second run would fail with "already exists"
    path = write_extension(tmp_path, REGISTER_ROUTE.format(name="once"))
    target = load_extensions([str(path), str(path), ""], LoadedExtensions())
    load_extensions([str(path)], target)
    assert target.names == [str(path)]
    assert len(target.routes) == 1


def test_active_only_once_something_is_registered() -> None:
    assert not load_extensions([], LoadedExtensions()).active
    target = LoadedExtensions()
    ExtensionRegistry(target, "t").add_response_hook(decline)
    assert not target.active  # not until validate()
    target.validate()
    assert target.active


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent_ext.py"
    with pytest.raises(ExtensionLoadError, match="does not exist") as raised:
        load_extensions([str(missing)], LoadedExtensions())
    assert str(missing) in str(raised.value)


def test_an_unknown_dotted_module_is_named() -> None:
    module = unique("unit_ext_missing_")
    with pytest.raises(ExtensionLoadError, match=f"no module named '{module}'") as raised:
        load_extensions([module], LoadedExtensions())
    assert f"extension '{module}'" in str(raised.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("x = 1\n\ndef register(sim)  # fails\n    pass\n", "SyntaxError: expected ':'", id="syntax"),
        pytest.param("import json\nimport unit_ext_absent_zz  # fails\n",
                     "ModuleNotFoundError: No module named 'unit_ext_absent_zz'", id="import"),
        pytest.param("value = 1 / 0  # fails\n", "ZeroDivisionError", id="raises-at-import"),
    ],
)
def test_a_file_that_fails_to_import_names_the_cause_and_line(tmp_path: Path, source: str, expected: str) -> None:
    path = write_extension(tmp_path, source)
    with pytest.raises(ExtensionLoadError) as raised:
        load_extensions([str(path)], LoadedExtensions())
    message = str(raised.value)
    assert f"extension '{path}' failed to import: {expected}" in message
    assert f"({path}, line {line_of(source)})" in message
    assert not any(name.startswith(f"simulator_extension_{path.stem}") for name in sys.modules)


def test_a_dotted_module_with_a_syntax_error_names_file_and_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = unique()
    path = write_extension(tmp_path, "def register(sim)\n    pass\n", stem=module)
    with pytest.raises(ExtensionLoadError, match="SyntaxError") as raised:
        load_extensions([module], LoadedExtensions())
    assert f"({path}, line 1)" in str(raised.value)


def test_a_dotted_module_importing_a_missing_prefix_named_module_reports_the_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    missing = unique()
    module = f"{missing}_ext"  # the extension exists; the module it imports does not
    write_extension(tmp_path, f"import {missing}\n", stem=module)
    with pytest.raises(ExtensionLoadError) as raised:
        load_extensions([module], LoadedExtensions())
    assert "failed to import: ModuleNotFoundError" in str(raised.value)


@pytest.mark.parametrize("source", ["x = 1\n", "register = 5\n"], ids=["absent", "not-callable"])
def test_an_extension_without_register_is_refused(tmp_path: Path, source: str) -> None:
    path = write_extension(tmp_path, source)
    with pytest.raises(ExtensionLoadError, match=r"has no register\(sim\) function") as raised:
        load_extensions([str(path)], LoadedExtensions())
    assert f"extension '{path}'" in str(raised.value)
    assert str(path) in str(raised.value).split("function", 1)[1]


def test_register_raising_names_the_type_and_the_extension_line(tmp_path: Path) -> None:
    source = """
    def register(sim):
        sim.add_route("partial", r"^partial$")
        raise RuntimeError("boom")  # fails
    """
    path = write_extension(tmp_path, source)
    with pytest.raises(ExtensionLoadError) as raised:
        load_extensions([str(path)], LoadedExtensions())
    assert str(raised.value) == (f"SIMULATOR_EXTENSIONS: register() of extension '{path}' failed: "
                                 f"RuntimeError: boom ({path}, line {line_of(source)})")


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param('sim.add_route("r", r"^r(unclosed")', "pattern '^r(unclosed' is not a regular expression",
                     id="bad-regex"),
        pytest.param('sim.add_route("r", r"^r$"); sim.add_route("r", r"^r2$")', "a route named 'r' already exists",
                     id="duplicate-route"),
        pytest.param('sim.add_route("r", r"^r$", operation="chat")', "operation 'chat' is built in",
                     id="builtin-operation"),
        pytest.param('sim.add_route("r", r"^/api/(?P<rest>.*)$")', "would take over /api/", id="takeover-api"),
        pytest.param('sim.add_route("r", r"^r$", surface="azure_v2")', "surface must be one of", id="bad-surface"),
        pytest.param('sim.add_route("r", r"^r$", methods=("FETCH",))', "methods must be some of", id="bad-method"),
        pytest.param('sim.add_route("Bad-Name", r"^r$")', "route name 'Bad-Name' must be", id="bad-name"),
        pytest.param('sim.add_generator("not a function")', "generator must be a function, not str",
                     id="not-callable"),
    ],
)
def test_an_invalid_registration_stops_the_load(tmp_path: Path, call: str, expected: str) -> None:
    source = f"def register(sim):\n    {call}  # fails\n"
    path = write_extension(tmp_path, source)
    with pytest.raises(ExtensionLoadError) as raised:
        load_extensions([str(path)], LoadedExtensions())
    message = str(raised.value)
    assert message.startswith(f"SIMULATOR_EXTENSIONS: register() of extension '{path}' failed: ")
    assert expected in message
    assert "ExtensionError" not in message  # a registration error reads as a sentence, not an exception type
    assert message.endswith(f"({path}, line 2)")
    assert isinstance(raised.value.__cause__, ExtensionError)


def test_a_pattern_for_a_path_under_api_is_refused() -> None:
    with pytest.raises(ExtensionError, match="would take over"):
        ExtensionRegistry(LoadedExtensions(), "t").add_route("schema", r"^api/schema/?$")


@pytest.mark.parametrize(
    ("body", "expected", "names_callable"),
    [
        pytest.param('sim.add_generator(f, route="ghost")', "registered for route 'ghost', which no extension added",
                     True, id="unknown-route"),
        pytest.param('sim.add_latency(f, operation="ghost_op")',
                     "registered for operation 'ghost_op', which is neither built in nor any route's",
                     True, id="unknown-operation"),
        pytest.param('sim.add_model(MODEL, operations=["chat", "ghost_op"])',
                     "serves operation 'ghost_op', which no route has", False, id="model-operation-unserved"),
    ],
)
def test_validate_cross_checks_the_targets(tmp_path: Path, body: str, expected: str, names_callable: bool) -> None:
    model = unique("unit-model-")
    source = f"MODEL = {model!r}\n\ndef f(*args):\n    return None\n\ndef register(sim):\n    {body}\n"
    path = write_extension(tmp_path, source)
    with pytest.raises(ExtensionLoadError, match=f"^SIMULATOR_EXTENSIONS: .*{expected}") as raised:
        load_extensions([str(path)], LoadedExtensions())
    assert isinstance(raised.value.__cause__, ExtensionError)
    if names_callable:
        assert f"{path}:f is registered" in str(raised.value)  # the callable, by extension and name
    else:
        assert f"model '{model}'" in str(raised.value)


def test_validate_accepts_generators_for_built_in_and_route_operations() -> None:
    target = LoadedExtensions()
    sim = ExtensionRegistry(target, "t")
    route = sim.add_route("docs", r"^docs$", operation="doc_op")
    sim.add_generator(decline, route=route)
    sim.add_generator(decline, operation="doc_op")
    sim.add_generator(decline, operation="embeddings")
    target.validate()
    assert target.active


# --- registry -------------------------------------------------------------------------------------------------


def test_select_filters_by_route_and_operation_in_registration_order() -> None:
    target = LoadedExtensions()
    sim = ExtensionRegistry(target, "t")
    alpha = sim.add_route("alpha", r"^alpha$", operation="alpha_op")
    sim.add_route("beta", r"^beta$")

    def g_alpha(*_: Any) -> None: ...
    def g_chat(*_: Any) -> None: ...
    def g_all(*_: Any) -> None: ...
    def g_beta(*_: Any) -> None: ...
    def g_alpha_op(*_: Any) -> None: ...

    sim.add_generator(g_alpha, route=alpha)
    sim.add_generator(g_chat, operation="chat")
    sim.add_generator(g_all)
    sim.add_generator(g_beta, route="beta")
    sim.add_generator(g_alpha_op, operation="alpha_op")
    target.validate()

    def selected(operation: str, route: str | None) -> list[Any]:
        return [entry.function for entry in target.select("generators", operation, route)]

    assert selected("alpha_op", "alpha") == [g_alpha, g_all, g_alpha_op]
    assert selected("chat", None) == [g_chat, g_all]
    assert selected("beta", "beta") == [g_all, g_beta]
    assert selected("embeddings", None) == [g_all]
    assert target.select("response_hooks", "chat", None) == ()
    assert target.handles("embeddings", None)
    entry = target.generators[0]
    assert (entry.route, entry.operation, entry.extension) == ("alpha", None, "t")
    assert entry.name.endswith("g_alpha")


@pytest.mark.parametrize(
    ("pattern", "normalized"),
    [("^/echo$", "^echo$"), ("/echo", "^echo"), ("echo/(?P<rest>.*)", "^echo/(?P<rest>.*)")],
)
def test_route_patterns_are_anchored_without_the_leading_slash(pattern: str, normalized: str) -> None:
    route = ExtensionRegistry(LoadedExtensions(), "t").add_route("echo", pattern)
    assert route.pattern == normalized


def test_route_defaults_and_options() -> None:
    sim = ExtensionRegistry(LoadedExtensions(), "t")
    plain = sim.add_route("plain", r"^plain$")
    keyed = sim.add_route("keyed", r"^keyed$", operation="doc_op", methods=("get", "Post"),
                          auth_header="Ocp-Apim-Subscription-Key", surface=Surface.OPENAI)
    assert plain.operation == "plain"
    assert isinstance(plain.operation, CustomOperation)
    assert plain.operation.value == "plain"
    assert (plain.methods, plain.surface, plain.auth_header) == (frozenset({"POST"}), Surface.AZURE, None)
    assert keyed.operation.value == "doc_op"
    assert keyed.methods == frozenset({"GET", "POST"})
    assert keyed.auth_header == b"ocp-apim-subscription-key"
    assert keyed.surface == Surface.OPENAI


def test_add_model_serves_built_in_and_custom_operations() -> None:
    target = LoadedExtensions()
    name = unique("unit-model-")
    spec = ExtensionRegistry(target, "t").add_model(name, operations=["chat", "doc_op"], tokenizer="cl100k_base")
    assert get_model(name) is spec
    assert target.models == [spec]
    assert (spec.version_string, spec.tokenizer, spec.context_window) == (name, "cl100k_base", 128_000)
    assert spec.serves(Operation.CHAT)
    assert spec.serves(CustomOperation("doc_op"))
    assert not spec.serves(Operation.EMBEDDINGS)
    assert Operation.CHAT in spec.operations  # the enum member, not a look-alike custom operation
    assert operation_id(CustomOperation("doc_op")) == "doc_op"
    assert operation_id(Operation.CHAT) == "ChatCompletions_Create"


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        pytest.param("gpt-4o", {"operations": ["chat"]}, "a model named 'gpt-4o' already exists", id="builtin"),
        pytest.param(None, {"operations": ["chat"], "tokenizer": "p50k_base"}, "tokenizer must be", id="tokenizer"),
        pytest.param(None, {"operations": []}, "must serve at least one operation", id="no-operation"),
    ],
)
def test_add_model_refuses(name: str | None, options: dict[str, Any], expected: str) -> None:
    before = dict(MODELS)
    with pytest.raises(ExtensionError, match=expected):
        ExtensionRegistry(LoadedExtensions(), "t").add_model(name or unique("unit-model-"), **options)
    assert before == MODELS


def test_add_model_refuses_a_name_an_extension_already_added() -> None:
    name = unique("unit-model-")
    sim = ExtensionRegistry(LoadedExtensions(), "t")
    first = sim.add_model(name, operations=["chat"])
    with pytest.raises(ExtensionError, match="already exists"):
        sim.add_model(name, operations=["embeddings"])
    assert MODELS[name] is first


# --- dispatch: replies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sent", "content_type"),
    [
        ({"a": [1, 2]}, b'{"a":[1,2]}', b"application/json"),
        ("h\u00e9llo", "h\u00e9llo".encode(), b"text/plain; charset=utf-8"),
        (b"\x00\x01", b"\x00\x01", b"application/octet-stream"),
    ],
    ids=["dict", "str", "bytes"],
)
def test_a_response_becomes_a_json_answer(body: Any, sent: bytes, content_type: bytes) -> None:
    answer = reply_answer(Response(body, status=201, headers={"X-Trace": 7}, completion_tokens=4),
                          SIMULATOR_HEADERS)
    assert isinstance(answer, JsonAnswer)
    assert (answer.status, answer.body, answer.completion_tokens) == (201, sent, 4)
    assert answer.headers == [(b"x-sim", b"1"), (b"x-trace", b"7"), (b"content-type", content_type)]
    assert answer.headers is not SIMULATOR_HEADERS


def test_a_response_keeps_its_own_content_type() -> None:
    answer = reply_answer(Response("a,b\n", headers={"Content-Type": "text/csv"}), [])
    assert answer.headers == [(b"content-type", b"text/csv")]


SSE_HEADERS = [(b"x-sim", b"1"), (b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
EVENTS: list[Any] = [{"n": 1}, "two", b"event: three\ndata: 3\n\n"]
FRAMES = [b'data: {"n":1}\n\n', b"data: two\n\n", b"event: three\ndata: 3\n\n"]
DONE = b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("options", "frames", "first_token_frame", "tokens"),
    [
        pytest.param({}, [*FRAMES, DONE], 0, 3, id="done"),
        pytest.param({"done": False}, FRAMES, 0, 2, id="not-done"),
        pytest.param({"paced_from": 1}, [*FRAMES, DONE], 1, 2, id="paced-from"),
        pytest.param({"completion_tokens": 17}, [*FRAMES, DONE], 0, 17, id="explicit-tokens"),
    ],
)
def test_a_stream_response_becomes_framed_events(options: dict[str, Any], frames: list[bytes],
                                                 first_token_frame: int, tokens: int) -> None:
    answer = reply_answer(StreamResponse(list(EVENTS), **options), SIMULATOR_HEADERS)
    assert isinstance(answer, StreamAnswer)
    assert answer.frames == frames
    assert (answer.first_token_frame, answer.completion_tokens, answer.source) == (first_token_frame, tokens, None)
    assert answer.headers == SSE_HEADERS


def test_a_stream_response_keeps_its_status_and_content_type() -> None:
    answer = reply_answer(StreamResponse([], status=206, headers={"Content-Type": "text/x-custom"}), [])
    assert answer.status == 206
    assert answer.frames == [DONE]
    assert answer.headers[0] == (b"content-type", b"text/x-custom")
    assert [name for name, _ in answer.headers].count(b"content-type") == 1


def test_an_async_stream_response_is_passed_on_as_it_comes() -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[Any]:
        try:
            yield b"data: raw\n\n"
            yield {"n": 2}
            yield b"never read"
        finally:
            closed.append(True)

    answer = reply_answer(StreamResponse(events(), headers={"x-kind": "live"}), SIMULATOR_HEADERS)
    assert isinstance(answer, StreamAnswer)
    assert answer.frames == []
    assert answer.source is not None
    assert (b"x-kind", b"live") in answer.headers

    async def consume() -> list[bytes]:
        source = answer.source
        assert source is not None
        chunks = [await source.__anext__(), await source.__anext__()]
        await source.aclose()  # type: ignore[attr-defined]
        return chunks

    assert asyncio.run(consume()) == [b"data: raw\n\n", b'data: {"n":2}\n\n']
    assert closed == [True]


def test_an_async_stream_response_keeps_its_completion_tokens() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"data: x\n\n"

    answer = reply_answer(StreamResponse(events(), completion_tokens=5), [])
    assert answer.completion_tokens == 5


@pytest.mark.parametrize("reply", [{"ok": True}, JsonAnswer(200, b"{}")], ids=["dict", "answer"])
def test_anything_else_is_a_type_error(reply: Any) -> None:
    entry = Registered(answer_ok, None, None, "t", "mod.make_reply")
    with pytest.raises(TypeError, match=f"mod.make_reply returned {type(reply).__name__}; expected Response"):
        reply_answer(reply, [], entry)


@pytest.mark.parametrize(
    ("data", "event", "framed"),
    [
        ({"a": 1}, None, b'data: {"a":1}\n\n'),
        ("hi", "delta", b"event: delta\ndata: hi\n\n"),
        (b"raw", "", b"data: raw\n\n"),
    ],
)
def test_sse_event(data: Any, event: str | None, framed: bytes) -> None:
    assert sse_event(data, event) == framed


# --- dispatch: the call ---------------------------------------------------------------------------------------


def test_the_request_hides_the_api_key_headers(loaded: LoadedExtensions) -> None:
    route = ExtensionRegistry(loaded, "t").add_route("keyed", r"^keyed$", auth_header="Ocp-Apim-Subscription-Key")
    headers = [(b"api-key", b"k1"), (b"authorization", b"Bearer k2"), (b"ocp-apim-subscription-key", b"k3"),
               (b"x-custom", b"v"), (b"content-type", b"application/json")]
    call = route_call(loaded, route, headers=headers, body=b'{"a": 1}', query=b"api-version=2024-10-21&a=1&b=",
                      path_params={"deployment": "d1"})
    request = call.request
    assert dict(request.headers) == {"x-custom": "v", "content-type": "application/json"}
    assert request.json == {"a": 1}
    assert dict(request.query) == {"api-version": "2024-10-21", "a": "1", "b": ""}
    assert dict(request.path_params) == {"deployment": "d1"}
    assert (request.route, request.operation, request.surface, request.method) == ("keyed", "keyed", "azure", "POST")
    assert call.context.tokenizer == "o200k_base"


@pytest.mark.parametrize(
    ("content_type", "body", "parsed"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        (None, b'{"a": 1}', {"a": 1}),
        ("application/merge-patch+json; charset=utf-8", b"[1]", [1]),
        ("text/plain", b'{"a": 1}', None),
        ("application/json", b"{not json", None),
        ("Application/JSON", b'{"a": 1}', {"a": 1}),
    ],
)
def test_the_body_is_parsed_only_when_it_is_json(loaded: LoadedExtensions, content_type: str | None, body: bytes,
                                                 parsed: Any) -> None:
    route = ExtensionRegistry(loaded, "t").add_route("docs", r"^docs$")
    headers = [(b"content-type", content_type.encode())] if content_type else []
    assert route_call(loaded, route, headers=headers, body=body).request.json == parsed


def test_a_built_in_operation_gets_a_call_only_when_an_extension_handles_it(loaded: LoadedExtensions) -> None:
    def chat_call() -> ExtensionCall | None:
        return call_for(method="POST", path="/openai/deployments/d/chat/completions", query_string=b"",
                        headers=[(b"api-key", b"k")], body=b"{}", payload={"messages": []}, operation=Operation.CHAT,
                        surface=Surface.AZURE, deployment=None)

    assert chat_call() is None  # nothing loaded
    ExtensionRegistry(loaded, "t").add_generator(decline, operation="embeddings")
    loaded.validate()
    assert chat_call() is None  # loaded, but not for chat
    ExtensionRegistry(loaded, "t").add_request_hook(decline, operation="chat")
    loaded.validate()
    call = chat_call()
    assert call is not None
    assert call.request.json == {"messages": []}
    assert (call.request.route, call.request.operation, dict(call.request.headers)) == (None, "chat", {})


def test_no_generator_answering_a_route_is_a_501(loaded: LoadedExtensions) -> None:
    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_generator(decline, route=route)
    with pytest.raises(ApiError) as raised:
        generate(route_call(loaded, route))
    assert raised.value.status == 501
    assert error_of(raised)["code"] == "not_implemented"
    assert "route 'docs'" in error_of(raised)["message"]


def _raising_generator(*_: Any) -> Any:
    raise RuntimeError("secret detail /etc/passwd")


def _wrong_type_generator(*_: Any) -> Any:
    return {"not": "a Response"}


@pytest.mark.parametrize(("function", "kind"), [(_raising_generator, "RuntimeError"),
                                                (_wrong_type_generator, "TypeError")])
def test_a_failing_generator_is_a_500_without_details(loaded: LoadedExtensions, function: Any, kind: str) -> None:
    sim = ExtensionRegistry(loaded, "my_ext")
    route = sim.add_route("docs", r"^docs$")
    sim.add_generator(function, route=route)
    with pytest.raises(ApiError) as raised:
        generate(route_call(loaded, route))
    error = error_of(raised)
    assert (raised.value.status, error["code"], error["type"]) == (500, "extension_error", "server_error")
    assert error["message"] == f"The simulator extension function my_ext:{function.__name__} failed ({kind})."
    rendered = raised.value.render().decode()
    assert "secret" not in rendered
    assert "Traceback" not in rendered


def test_an_api_error_from_a_generator_passes_through(loaded: LoadedExtensions) -> None:
    teapot = ApiError(418, {"error": {"message": "short and stout"}})

    def refuse(*_: Any) -> Any:
        raise teapot

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_generator(refuse, route=route)
    with pytest.raises(ApiError) as raised:
        generate(route_call(loaded, route))
    assert raised.value is teapot


def test_sync_and_async_generators_answer_in_turn(loaded: LoadedExtensions) -> None:
    seen: list[str] = []

    async def async_decline(request: ExtensionRequest, deployment: Any, context: ExtensionContext) -> None:
        seen.append("async_decline")
        context.values["first"] = request.json["q"]

    async def async_answer(request: ExtensionRequest, deployment: Any, context: ExtensionContext) -> Response:
        seen.append("async_answer")
        return Response({"q": context.values["first"]}, completion_tokens=2)

    def never(*_: Any) -> Response:
        seen.append("never")
        return Response({})

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    for function in (decline, async_decline, async_answer, never):
        sim.add_generator(function, route=route)
    answer = generate(route_call(loaded, route, body=b'{"q": "why"}'))
    assert seen == ["async_decline", "async_answer"]
    assert isinstance(answer, JsonAnswer)
    assert (answer.body, answer.completion_tokens, answer.headers[0]) == (b'{"q":"why"}', 2, SIMULATOR_HEADERS[0])


def test_a_sync_generator_answers(loaded: LoadedExtensions) -> None:
    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_generator(answer_ok, route=route)
    answer = generate(route_call(loaded, route))
    assert (answer.status, answer.body) == (200, b'{"ok":true}')


def test_the_built_in_fallback_answers_after_the_declines(loaded: LoadedExtensions) -> None:
    calls: list[Headers] = []
    built_in = JsonAnswer(200, b'{"built":"in"}')

    def fallback(headers: Headers) -> JsonAnswer:
        calls.append(headers)
        return built_in

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    call = route_call(loaded, route)
    assert call.generator(fallback) is fallback  # nothing registered: the built-in generator, untouched
    sim.add_generator(decline, route=route)
    call = route_call(loaded, route)
    assert generate(call, fallback) is built_in
    assert calls == [SIMULATOR_HEADERS]


@pytest.mark.parametrize(
    ("decided", "expected"),
    [
        (Latency(120, 5), (120.0, 5.0)),
        (Latency(-5, -1), (0.0, 0.0)),
        (250, (250.0, 0.0)),
        (None, None),
    ],
)
def test_latency_functions_decide(loaded: LoadedExtensions, decided: Any, expected: Any) -> None:
    def latency(*_: Any) -> Any:
        return decided

    def later(*_: Any) -> Any:
        raise AssertionError("a later latency function runs only when the earlier ones decline")

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_latency(decline, route=route)
    sim.add_latency(latency, route=route)
    if decided is not None:
        sim.add_latency(later, route=route)
    call = route_call(loaded, route)
    assert asyncio.run(call.latency(JsonAnswer(200, b"{}"))) == expected


@pytest.mark.parametrize("decided", ["100", True], ids=["str", "bool"])
def test_a_latency_function_returning_something_else_is_a_500(loaded: LoadedExtensions, decided: Any) -> None:
    def latency(*_: Any) -> Any:
        return decided

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_latency(latency, route=route)
    with pytest.raises(ApiError) as raised:
        asyncio.run(route_call(loaded, route).latency(JsonAnswer(200, b"{}")))
    assert (raised.value.status, error_of(raised)["code"]) == (500, "extension_error")


def test_a_request_hook_reply_answers_at_once(loaded: LoadedExtensions) -> None:
    later_ran: list[bool] = []

    async def block(request: ExtensionRequest, *_: Any) -> Response | None:
        return Response({"blocked": request.headers.get("x-tenant")}, status=403)

    def later(*_: Any) -> None:
        later_ran.append(True)

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    for function in (decline, block, later):
        sim.add_request_hook(function, route=route)
    call = route_call(loaded, route, headers=[(b"x-tenant", b"acme")])
    answer = asyncio.run(call.request_hooks(lambda: [(b"x-request-id", b"r1")]))
    assert isinstance(answer, JsonAnswer)
    assert (answer.status, answer.body) == (403, b'{"blocked":"acme"}')
    assert answer.headers[0] == (b"x-request-id", b"r1")
    assert later_ran == []


def test_request_hooks_that_all_decline_answer_nothing(loaded: LoadedExtensions) -> None:
    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_request_hook(decline, route=route)
    assert asyncio.run(route_call(loaded, route).request_hooks(lambda: [])) is None


def test_response_hooks_change_headers_and_the_body(loaded: LoadedExtensions) -> None:
    def patch(request: ExtensionRequest, deployment: Any, context: ExtensionContext, answer: AnswerView) -> None:
        assert (answer.status, answer.stream, answer.dropped, answer.completion_tokens) == (200, False, False, 3)
        assert answer.header("Content-Type") == "application/json"
        answer.set_header("X-Mark", "one")
        answer.body = orjson.dumps({**answer.json(), "patched": True})

    async def remark(request: ExtensionRequest, deployment: Any, context: ExtensionContext,
                     answer: AnswerView) -> None:
        answer.set_header("x-mark", "two")

    sim = ExtensionRegistry(loaded, "t")
    route = sim.add_route("docs", r"^docs$")
    sim.add_response_hook(patch, route=route)
    sim.add_response_hook(remark, route=route)
    answer = JsonAnswer(200, b'{"a":1}', [(b"x-mark", b"zero"), (b"content-type", b"application/json")], 3)
    asyncio.run(route_call(loaded, route).response_hooks(answer))
    assert orjson.loads(answer.body) == {"a": 1, "patched": True}
    assert answer.headers == [(b"content-type", b"application/json"), (b"x-mark", b"two")]


def test_an_answer_view_of_a_stream() -> None:
    answer = StreamAnswer(200, [b"data: 1\n\n", DONE], [(b"content-type", b"text/event-stream")])
    view = AnswerView(answer)
    assert (view.stream, view.body, view.json(), view.header("x-missing")) == (True, None, None, None)
    assert view.events is answer.frames
    with pytest.raises(TypeError, match="only a complete"):
        view.body = b"{}"
    assert AnswerView(DroppedConnection("reset")).dropped


def test_token_cost(loaded: LoadedExtensions) -> None:
    route = ExtensionRegistry(loaded, "t").add_route("docs", r"^docs$")
    call = route_call(loaded, route, body=b'{"pages": 42}')
    assert call.token_cost(lambda request: request.json["pages"]) == 42
    assert call.token_cost(lambda request: -3) == 0


def test_a_failing_token_cost_is_a_500(loaded: LoadedExtensions) -> None:
    route = ExtensionRegistry(loaded, "t").add_route("docs", r"^docs$")
    with pytest.raises(ApiError) as raised:
        route_call(loaded, route).token_cost(lambda request: 1 // 0)
    assert (raised.value.status, error_of(raised)["code"]) == (500, "extension_error")
    assert "function t:token_cost failed (ZeroDivisionError)" in error_of(raised)["message"]


# --- recordings and deployments of routes ---------------------------------------------------------------------


def test_matchable_payload_of_a_json_body() -> None:
    request = make_request({"a": 1}, body=b'{"a": 1}', query={"api-version": "2024-10-21", "page": "2"},
                           path_params={"deployment": "d1"})
    assert matchable_payload(request) == {"path": {"deployment": "d1"}, "query": {"page": "2"}, "body": {"a": 1}}


def test_matchable_payload_of_other_bodies() -> None:
    pdf = b"%PDF-1.7 not really"
    request = make_request(None, body=pdf, headers={"content-type": "application/pdf"})
    assert matchable_payload(request)["body"] == {"sha256": hashlib.sha256(pdf).hexdigest(), "bytes": len(pdf),
                                                  "content_type": "application/pdf"}
    assert matchable_payload(make_request(None)) == {"path": {}, "query": {}, "body": None}


def stand_in_deployment(mode: str = "replay") -> DeploymentConfig:
    spec = get_model("gpt-4o-mini")
    assert spec is not None
    return DeploymentConfig(name="d", model=spec, mode=mode, output_tokens_mean=30, output_tokens_std=0,
                            limit_profile=SimpleNamespace(name="limits"),  # type: ignore[arg-type]
                            latency_profile=SimpleNamespace(name="latency"),  # type: ignore[arg-type]
                            fault_profile=SimpleNamespace(name="faults"),  # type: ignore[arg-type]
                            recording_set=SimpleNamespace(name="set"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "left", "mode"),
    [
        ({"limits": False}, {"latency", "faults"}, "replay"),
        ({"faults": False}, {"limits", "latency"}, "replay"),
        ({"record_replay": False}, {"limits", "latency", "faults"}, "generate"),
        ({"limits": False, "latency": False, "faults": False, "record_replay": False}, set(), "generate"),
    ],
)
def test_route_deployment_leaves_off_what_the_route_opted_out_of(flags: dict[str, bool], left: set[str],
                                                                mode: str) -> None:
    deployment = stand_in_deployment()
    route = ExtensionRegistry(LoadedExtensions(), "t").add_route("docs", r"^docs$", **flags)
    seen = route_deployment(deployment, route)
    profiles = [seen.limit_profile, seen.latency_profile, seen.fault_profile]
    assert {profile.name for profile in profiles if profile is not None} == left
    assert seen.mode == mode
    assert (seen.name, seen.model, seen.recording_set) == (deployment.name, deployment.model,
                                                           deployment.recording_set)


def test_route_deployment_with_every_flag_on_is_the_deployment() -> None:
    deployment = stand_in_deployment()
    route = ExtensionRegistry(LoadedExtensions(), "t").add_route("docs", r"^docs$")
    assert route_deployment(deployment, route) is deployment


# --- shaping.with_latency -------------------------------------------------------------------------------------

DOC_OP = CustomOperation("doc_op")


def test_with_latency_builds_a_shaping() -> None:
    answer = JsonAnswer(200, b"{}", completion_tokens=5)
    shaped = shaping.with_latency(None, answer, (100.0, 10.0), deployment=None, operation=DOC_OP, prompt_tokens=7,
                                  arrived_at=50.0)
    assert (shaped.deployment, shaped.operation, shaped.prompt_tokens, shaped.arrived_at) == (None, DOC_OP, 7, 50.0)
    assert (shaped.latency, shaped.fault) == (None, None)
    assert shaped.latency_override == (150.0, 10.0)  # not token-timed: first + per-token x completion tokens


@pytest.mark.parametrize(
    ("answer", "operation", "override"),
    [
        (JsonAnswer(200, b"{}", completion_tokens=5), Operation.CHAT, (100.0, 10.0)),  # token-timed on apply
        (JsonAnswer(200, b"{}", completion_tokens=5), Operation.EMBEDDINGS, (150.0, 10.0)),
        (StreamAnswer(200, [b"a", b"b"], completion_tokens=5), DOC_OP, (100.0, 10.0)),
    ],
    ids=["chat-json", "embeddings-json", "custom-stream"],
)
def test_with_latency_adds_per_token_time_to_complete_untimed_answers(answer: Any, operation: Any,
                                                                      override: tuple[float, float]) -> None:
    shaped = shaping.with_latency(None, answer, (100.0, 10.0), deployment=None, operation=operation,
                                  prompt_tokens=0, arrived_at=1.0)
    assert shaped.latency_override == override


def test_with_latency_keeps_a_header_override() -> None:
    existing = shaping.Shaping(None, Operation.CHAT, 3, 10.0, latency_override=(5.0, 1.0))
    answer = JsonAnswer(200, b"{}", completion_tokens=2)
    kept = shaping.with_latency(existing, answer, (900.0, 90.0), deployment=None, operation=Operation.CHAT,
                                prompt_tokens=3, arrived_at=10.0)
    assert kept is existing
    assert kept.latency_override == (5.0, 1.0)


def test_with_latency_replaces_the_profile_of_a_planned_shaping() -> None:
    existing = shaping.Shaping(None, DOC_OP, 3, 10.0)
    answer = JsonAnswer(200, b"{}", completion_tokens=4)
    shaped = shaping.with_latency(existing, answer, (20.0, 5.0), deployment=None, operation=DOC_OP,
                                  prompt_tokens=3, arrived_at=10.0)
    assert shaped is existing
    assert shaped.latency_override == (40.0, 5.0)


@pytest.mark.parametrize("operation", [DOC_OP, Operation.CHAT], ids=["custom", "chat"])
def test_applied_latency_sets_the_delivery_deadline(operation: Any) -> None:
    answer = JsonAnswer(200, b"{}", completion_tokens=5)
    shaped = shaping.with_latency(None, answer, (100.0, 10.0), deployment=None, operation=operation,
                                  prompt_tokens=0, arrived_at=1000.0)
    assert shaped.apply(answer) is answer
    assert answer.deliver_at == pytest.approx(1000.15)


def test_applied_latency_paces_a_stream() -> None:
    answer = reply_answer(StreamResponse([{"n": 1}, {"n": 2}, {"n": 3}]), [])
    shaped = shaping.with_latency(None, answer, (100.0, 10.0), deployment=None, operation=DOC_OP,
                                  prompt_tokens=0, arrived_at=1000.0)
    shaped.apply(answer)
    assert list(answer.frame_deadlines) == pytest.approx([1000.1, 1000.11, 1000.12])


def test_an_error_answer_is_not_delayed() -> None:
    answer = JsonAnswer(500, b"{}", completion_tokens=5)
    shaping.with_latency(None, answer, (100.0, 0.0), deployment=None, operation=DOC_OP, prompt_tokens=0,
                         arrived_at=1000.0).apply(answer)
    assert answer.deliver_at == 0.0


# --- the echo example -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [[{"role": "user", "content": "hello"}],
     [{"role": "user", "content": "echo: early"}, {"role": "user", "content": "late"}]],
    ids=["no-prefix", "not-the-last"],
)
def test_chat_echo_declines_other_messages(messages: list[Any]) -> None:
    request = make_request({"messages": messages})
    assert echo_extension.chat_echo(request, None, ExtensionContext(rng=random.Random(1))) is None


def test_chat_echo_answers_with_the_text_after_the_prefix() -> None:
    context = ExtensionContext(rng=random.Random(1))
    request = make_request({"messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "echo:  hello there "}]})
    reply = echo_extension.chat_echo(request, None, context)
    assert isinstance(reply, Response)
    body = reply.body
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hello there", "refusal": None}
    assert body["model"] == "echo"
    assert reply.completion_tokens == context.count_tokens("hello there") == body["usage"]["completion_tokens"]


def test_chat_echo_streams_one_word_per_chunk() -> None:
    request = make_request({"stream": True, "messages": [{"role": "user", "content": "echo:a b"}]})
    reply = echo_extension.chat_echo(request, None, ExtensionContext(rng=random.Random(1)))
    assert isinstance(reply, StreamResponse)
    assert reply.paced_from == 1
    deltas = [event["choices"][0]["delta"] for event in reply.events]  # type: ignore[union-attr]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "a"}, {"content": " b"}, {}]
