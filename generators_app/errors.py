"""Every error body the data plane sends, in one place, in the shape of the surface that was called.

AOAI surfaces (`/openai/...`) answer auth and routing failures with AOAI's `{"error": {"code", "message"}}`;
the OpenAI surface (`/v1/...`) answers with OpenAI's bodies. Validation failures use OpenAI's
`{"error": {"message", "type", "param", "code"}}` on both, as AOAI itself does.
"""

from __future__ import annotations

from typing import Any

import orjson

from generators_app.catalogue import OPERATION_LABELS, Operation


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


def operation_not_supported(operation: Operation, model: str) -> ApiError:
    label = OPERATION_LABELS[operation]
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
