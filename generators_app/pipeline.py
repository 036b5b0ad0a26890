"""The data-plane request pipeline: the one place where a request becomes an answer.

parse the route's facts -> api-version -> authenticate -> resolve the deployment (in-process snapshot)
-> parse the body (pydantic) -> the operation's generator -> JSON or SSE frames. Nothing here knows about
ASGI; consumers.py does the transport.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from generators_app import limiting, modes, operations, shaping
from generators_app.answers import Answer, Headers, JsonAnswer
from generators_app.api_versions import V1_API_VERSIONS, accepted_api_versions
from generators_app.catalogue import MULTIPART_OPERATIONS, AnyOperation, Operation
from generators_app.errors import (
    ApiError,
    Surface,
    deployment_not_found,
    invalid_request,
    method_not_allowed,
    operation_not_supported,
    resource_not_found,
    unauthorized,
)
from generators_app.extensions.dispatch import ExtensionCall, call_for, matchable_payload, route_deployment
from generators_app.extensions.registry import EXTENSIONS, Route
from generators_app.generation.images import base_url_from_headers, public_base_url
from generators_app.multipart_form import parse_audio_form
from generators_app.registry import ConfigSnapshot, DeploymentConfig, registry
from generators_app.response_store import preload as preload_previous_responses

logger = logging.getLogger(__name__)

_JSON = b"application/json"
_MODEL_SESSION = b"d070-20250922222629"
_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


@dataclass(slots=True)
class DataPlaneRequest:
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    operation: Operation | None
    surface: str
    path_deployment: str | None = None
    route: Route | None = None  # an extension's route (extensions/), else None
    path_params: dict[str, str] = field(default_factory=dict)
    # What the pipeline learns on the way, for the transport's metrics and request log (observability.py).
    deployment: str = ""
    mode: str = ""
    prompt_tokens: int = 0
    # time.monotonic() when the transport got the request: latency deadlines count from here (shaping.py).
    arrived_at: float = 0.0


def _request_id() -> bytes:
    """A UUID4-shaped id; uuid.uuid4() costs several times more and the hot path makes two per request."""
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-{_UUID_VARIANT[raw[16]]}{raw[17:20]}-{raw[20:]}".encode()


_UUID_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))


def common_headers(deployment_name: str | None, route: Route | None = None) -> Headers:
    """The headers AOAI puts on every answer, errors included (an extension route's: the Azure API Management
    ones, not the model's)."""
    headers = [
        (b"x-request-id", _request_id()),
        (b"apim-request-id", _request_id()),
        (b"x-ms-region", settings.SIMULATOR_REGION.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if route is None:
        headers.insert(3, (b"azureml-model-session", _MODEL_SESSION))
        headers.append((b"x-ms-rai-invoked", b"true"))
    if deployment_name:
        headers.append((b"x-ms-deployment-name", deployment_name.encode()))
    return headers


def error_answer(error: ApiError, deployment_name: str | None = None, route: Route | None = None) -> JsonAnswer:
    headers = common_headers(deployment_name, route)
    headers.append((b"content-type", _JSON))
    headers.extend(error.headers)
    return JsonAnswer(error.status, error.render(), headers)


def _api_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    bearer = None
    for name, value in headers:
        if name == b"api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip()
    return bearer


@lru_cache(maxsize=256)
def _api_version_of(query_string: bytes) -> str | None:
    """Clients repeat the same query string, so its parse is cached."""
    versions = parse_qs(query_string.decode("latin-1")).get("api-version")
    return versions[0] if versions else None


def _check_api_version(request: DataPlaneRequest) -> None:
    version = _api_version_of(request.query_string)
    versions = [version] if version else None
    if request.surface == Surface.AZURE:
        if not versions or versions[0] not in accepted_api_versions():
            raise resource_not_found(request.surface)
    elif request.surface == Surface.AZURE_V1 and versions:
        version = versions[0]
        if version not in V1_API_VERSIONS and version not in accepted_api_versions():
            raise invalid_request(f"API version not supported: {version}", "api-version", "invalid_api_version")


def _authenticate(request: DataPlaneRequest, snapshot: ConfigSnapshot, extra_header: bytes | None = None) -> None:
    key = _api_key(request.headers)
    if key is None and extra_header is not None:  # an extension route's own key header
        key = next((value.decode("latin-1").strip() for name, value in request.headers if name == extra_header), None)
    if not key or hashlib.sha256(key.encode("utf-8")).hexdigest() not in snapshot.key_hashes:
        raise unauthorized(request.surface, key_given=bool(key))


def _parse_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request(_BAD_JSON_MESSAGE) from None


def _parse_body(request: DataPlaneRequest, operation: Operation) -> object:
    """JSON for most operations; the audio operations take multipart/form-data (25 MiB at most)."""
    if operation in MULTIPART_OPERATIONS:
        return parse_audio_form(request.headers, request.body)
    return _parse_json(request.body)


def _resolve_deployment(request: DataPlaneRequest, snapshot: ConfigSnapshot, payload: object) -> DeploymentConfig:
    name = request.path_deployment
    if name is None:
        model = payload.get("model") if isinstance(payload, dict) else None
        if model is None:
            raise invalid_request("you must provide a model parameter", "model", "missing_required_parameter")
        if not isinstance(model, str):
            raise invalid_request("Invalid type for 'model': expected a string.", "model", "invalid_type")
        name = model
    deployment = snapshot.deployments.get(name)
    if deployment is None:
        raise deployment_not_found(request.surface, name)
    return deployment


async def handle_request(request: DataPlaneRequest) -> Answer:
    if request.route is not None:
        return await _handle_route(request, request.route)
    deployment_name = request.path_deployment
    deployment: DeploymentConfig | None = None
    call: ExtensionCall | None = None
    try:
        operation = request.operation
        if operation is None:
            raise resource_not_found(request.surface, request.method, request.path)
        expected_method = "GET" if operation is Operation.MODELS else "POST"
        if request.method != expected_method:
            raise method_not_allowed(request.surface, request.method, request.path)
        _check_api_version(request)
        snapshot = await registry.current()
        _authenticate(request, snapshot)
        if operation is Operation.MODELS:
            return operations.models_answer(snapshot, common_headers(None))
        if request.path_deployment is not None:
            deployment = _resolve_deployment(request, snapshot, None)  # AOAI checks the deployment before the body
        payload = _parse_body(request, operation)
        if deployment is None:  # the v1 surfaces name it in the body
            deployment = _resolve_deployment(request, snapshot, payload)
        deployment_name = request.deployment = deployment.name
        request.mode = deployment.mode
        if not deployment.model.serves(operation):
            raise operation_not_supported(operation, deployment.model.name)
        if operation is Operation.IMAGES:  # `url` answers link back to this simulator, as the client reached it
            public_base_url.set(base_url_from_headers(request.headers))
        if operation is Operation.RESPONSES:  # bring a previous_response_id chain from Redis (response_store.py)
            await preload_previous_responses(payload)
        prepared = operations.prepare(operation, payload, deployment)
        request.prompt_tokens = prepared.prompt_tokens
        if EXTENSIONS.active:
            call = call_for(method=request.method, path=request.path, query_string=request.query_string,
                            headers=request.headers, body=request.body, payload=prepared.payload,
                            operation=operation, surface=request.surface, deployment=deployment)
            if call is not None:
                hooked = await call.request_hooks(lambda: common_headers(deployment_name))
                if hooked is not None:
                    await call.response_hooks(hooked)
                    return hooked
                prepared.generate = call.generator(prepared.generate)
                prepared.extension = call
        return await _serve(request, prepared, snapshot.version, call)
    except ApiError as error:
        return await _error_answer(error, deployment_name, deployment, call)


async def _serve(request: DataPlaneRequest, prepared: operations.PreparedRequest, config_version: int,
                 call: ExtensionCall | None) -> Answer:
    """Limits, latency and faults, then the answer per the deployment's mode: built-in and extension alike."""
    deployment = prepared.deployment
    limit_headers = await limiting.admit(prepared, request.surface, request.query_string)
    # latency and faults (profiles, x-simulator-* headers); raises ApiError for 429/500/503 faults
    shaped = shaping.plan(request, deployment, prepared)
    headers = common_headers(deployment.name, request.route)
    headers.extend(limit_headers)
    # generate, replay or forward-and-record, per the deployment's mode
    answer = await modes.answer_for_mode(request, prepared, headers, config_version)
    if call is not None:
        return await _finish_with_extensions(call, request, answer, shaped, deployment, prepared.operation)
    return shaped.apply(answer) if shaped is not None else answer


async def _finish_with_extensions(call: ExtensionCall, request: DataPlaneRequest, answer: Answer,
                                  shaped: shaping.Shaping | None, deployment: DeploymentConfig | None,
                                  operation: AnyOperation) -> Answer:
    decided = await call.latency(answer)
    if decided is not None:
        shaped = shaping.with_latency(shaped, answer, decided, deployment=deployment, operation=operation,
                                      prompt_tokens=request.prompt_tokens, arrived_at=request.arrived_at)
    if shaped is not None:
        answer = shaped.apply(answer)
    await call.response_hooks(answer)
    return answer


async def _error_answer(error: ApiError, deployment_name: str | None, deployment: DeploymentConfig | None,
                        call: ExtensionCall | None) -> Answer:
    answer = error_answer(error, deployment_name, call.route if call is not None else None)
    answer.headers.extend(await limiting.error_headers(error, deployment))
    if call is not None:
        await call.response_hooks(answer)
    return answer


async def _handle_route(request: DataPlaneRequest, route: Route) -> Answer:
    """An extension's route: the built-in machinery (auth; with a deployment, limits, latency, faults and
    record/replay) around the extension's generators, minus what the route opted out of."""
    deployment: DeploymentConfig | None = None
    name = request.path_deployment or route.deployment
    # Made first, so the response hooks see the simulator's own refusals (401, 404, 405…) too.
    call = call_for(method=request.method, path=request.path, query_string=request.query_string,
                    headers=request.headers, body=request.body, payload=None, operation=route.operation,
                    surface=route.surface, deployment=None, route=route, path_params=request.path_params)
    assert call is not None
    try:
        if request.method not in route.methods:
            raise method_not_allowed(route.surface, request.method, request.path)
        snapshot = await registry.current()
        if route.auth:
            _authenticate(request, snapshot, route.auth_header)
        if name:
            deployment = snapshot.deployments.get(name)
            if deployment is None:
                raise deployment_not_found(route.surface, name)
            if not deployment.model.serves(route.operation):
                raise operation_not_supported(route.operation, deployment.model.name)
            deployment = route_deployment(deployment, route)
            request.deployment, request.mode = name, deployment.mode
            call.set_deployment(deployment)
        hooked = await call.request_hooks(lambda: common_headers(name, route))
        if hooked is not None:
            await call.response_hooks(hooked)
            return hooked
        if deployment is None:
            answer = await call.generator(None)(common_headers(None, route))
            return await _finish_with_extensions(call, request, answer, None, None, route.operation)
        if route.token_cost is not None:
            request.prompt_tokens = call.token_cost(route.token_cost)
        body = call.request.json
        prepared = operations.PreparedRequest(
            route.operation, deployment, matchable_payload(call.request),
            bool(isinstance(body, dict) and body.get("stream") is True), request.prompt_tokens, 0, 1,
            call.generator(None), extension=call,
        )
        return await _serve(request, prepared, snapshot.version, call)
    except ApiError as error:
        return await _error_answer(error, name, deployment, call)
