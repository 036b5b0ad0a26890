"""Every error body the data plane sends, in one place, in the shape of the surface that was called.

AOAI surfaces (`/openai/...`) answer auth and routing failures with AOAI's `{"error": {"code", "message"}}`;
the OpenAI surface (`/v1/...`) answers with OpenAI's bodies. Validation failures use OpenAI's
`{"error": {"message", "type", "param", "code"}}` on both, as AOAI itself does.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from generators_app.catalogue import AnyOperation, operation_id, operation_label
from generators_app.generation.common import PROMPT_FILTER_RESULTS, filtered_results


class Surface:
    AZURE = "azure"  # /openai/deployments/{d}/..., /openai/responses
    AZURE_V1 = "azure_v1"  # /openai/v1/...
    OPENAI = "openai"  # /v1/...


class ApiError(Exception):
    """An answer that ends the pipeline: a status, a JSON body and optional extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []

    def render(self) -> bytes:
        return orjson.dumps(self.body)


def invalid_request(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> ApiError:
    return ApiError(
        status,
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
    )


AOAI_UNAUTHORIZED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
    "an active subscription and use a correct regional API endpoint for your resource."
)


def unauthorized(surface: str, key_given: bool) -> ApiError:
    if surface == Surface.OPENAI:
        if key_given:
            message = (
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return invalid_request(message, code="invalid_api_key", status=401)
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return invalid_request(message, status=401)
    return ApiError(401, {"error": {"code": "401", "message": AOAI_UNAUTHORIZED_MESSAGE}})


def resource_not_found(surface: str, method: str = "POST", path: str = "") -> ApiError:
    if surface == Surface.OPENAI:
        return invalid_request(f"Invalid URL ({method} {path})", status=404)
    return ApiError(404, {"error": {"code": "404", "message": "Resource not found"}})


def deployment_not_found(surface: str, name: str) -> ApiError:
    if surface == Surface.OPENAI:
        return invalid_request(
            f"The model `{name}` does not exist or you do not have access to it.",
            code="model_not_found",
            status=404,
        )
    return ApiError(
        404,
        {
            "error": {
                "code": "DeploymentNotFound",
                "message": (
                    "The API deployment for this resource does not exist. If you created the deployment within "
                    "the last 5 minutes, please wait a moment and try again."
                ),
            }
        },
    )


def operation_not_supported(operation: AnyOperation, model: str) -> ApiError:
    label = operation_label(operation)
    message = (
        f"The {label} operation does not work with the specified model, {model}. Please choose different model "
        "and try again. You can learn more about which models can be used with each operation here: "
        "https://go.microsoft.com/fwlink/?linkid=2197993."
    )
    return invalid_request(message, param="model", code="OperationNotSupported")


def method_not_allowed(surface: str, method: str, path: str) -> ApiError:
    if surface == Surface.OPENAI:
        return invalid_request(f"Invalid method for URL ({method} {path})", status=405)
    return ApiError(405, {"error": {"code": "405", "message": "Method not allowed"}})


def body_too_large(limit: int) -> ApiError:
    return invalid_request(f"The request body is larger than {limit} bytes.", code="request_too_large", status=413)


def _openai_wait(ms: int) -> str:
    """OpenAI's "Please try again in …" durations: 350ms, 2.5s, 7m12s."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g}s"
    minutes, seconds = divmod(math.ceil(ms / 1000), 60)
    return f"{minutes}m{seconds}s"


def rate_limited(
    surface: str,
    operation: AnyOperation,
    api_version: str | None,
    deployment: str,
    *,
    cause: str,
    retry_after_ms: int,
    limit: int,
    used: int,
    requested: int,
    headers: list[tuple[bytes, bytes]],
) -> ApiError:
    """429 from the rate limiter. ``cause`` is "tokens" or "requests"; ``headers`` are the x-ratelimit-* ones.

    Retry-After is whole seconds rounded up (what AOAI sends and the message repeats); retry-after-ms is exact,
    and the openai SDKs prefer it."""
    retry_after_ms = max(1, retry_after_ms)
    seconds = math.ceil(retry_after_ms / 1000)
    all_headers = [
        *headers,
        (b"retry-after", str(seconds).encode()),
        (b"retry-after-ms", str(retry_after_ms).encode()),
    ]
    if surface == Surface.OPENAI:
        unit = "tokens per min (TPM)" if cause == "tokens" else "requests per min (RPM)"
        message = (
            f"Rate limit reached for {deployment} in organization org-simulator on {unit}: Limit {limit}, "
            f"Used {used}, Requested {requested}. Please try again in {_openai_wait(retry_after_ms)}. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        body = {"error": {"message": message, "type": cause, "param": None, "code": "rate_limit_exceeded"}}
        return ApiError(429, body, all_headers)
    kind = "token rate limit" if cause == "tokens" else "call rate limit"
    unit = "second" if seconds == 1 else "seconds"
    message = (
        f"Requests to the {operation_id(operation)} Operation under Azure OpenAI API version "
        f"{api_version or 'v1'} have exceeded {kind} of your current OpenAI S0 pricing tier. Please retry after "
        f"{seconds} {unit}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further "
        "increase the default rate limit."
    )
    return ApiError(429, {"error": {"code": "429", "message": message}}, all_headers)


# --- injected faults (fault profiles, x-simulator-fault) -----------------------------------------------------

_AOAI_SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that! You can retry your request, or "
    "contact us through an Azure support request at: https://go.microsoft.com/fwlink/?linkid=2213926 if you "
    "keep seeing this error."
)


def server_error(surface: str) -> ApiError:
    """500 as the service sends it (the SDKs retry it)."""
    if surface == Surface.OPENAI:
        message = "The server had an error while processing your request. Sorry about that!"
        return ApiError(500, {"error": {"message": message, "type": "server_error", "param": None, "code": None}})
    return ApiError(500, {"error": {"message": _AOAI_SERVER_ERROR, "type": "server_error", "param": None,
                                    "code": None}})


def service_unavailable(surface: str) -> ApiError:
    """503: the backend is overloaded (the SDKs retry it)."""
    if surface == Surface.OPENAI:
        message = "The engine is currently overloaded, please try again later"
        return ApiError(503, {"error": {"message": message, "type": "server_error", "param": None, "code": None}})
    message = "The service is temporarily unable to process your request. Please try again later."
    return ApiError(503, {"error": {"code": "ServiceUnavailable", "message": message}})


CONTENT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please "
    "modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


def prompt_filtered(category: str) -> ApiError:
    """400 ``content_filter``, as AOAI refuses a prompt (tests/reference/aoai-recordings/refusal-chat-sync.yaml):
    ``innererror.content_filter_result`` has every category, with ``category`` filtered."""
    results = filtered_results(PROMPT_FILTER_RESULTS, category)
    return ApiError(400, {"error": {
        "message": CONTENT_FILTER_MESSAGE, "type": None, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": results},
    }})
