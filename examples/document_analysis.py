"""A simulated non-OpenAI service: Azure AI Document Intelligence's asynchronous document analysis.

    POST /documentintelligence/documentModels/{modelId}:analyze?api-version=2024-11-30
         body {"base64Source": "..."} or {"urlSource": "https://..."} (or the file itself, as application/pdf
         or image/*); key in Ocp-Apim-Subscription-Key (or api-key)
      -> 202, no body, Operation-Location: .../documentModels/{modelId}/analyzeResults/{resultId}?api-version=...
    GET  that Operation-Location
      -> 200 {"status": "running"} with Retry-After until the analysis is done (pages x
         DOCUMENT_ANALYSIS_SECONDS_PER_PAGE, default 1 s), then {"status": "succeeded", "analyzeResult": {...}}
         with pages, lines, words, polygons and spans.

Each model id is a simulator deployment of the model ``document-intelligence`` (see document_analysis.yaml), so
it has its own limit profile (Document Intelligence's S0 tier: 15 analyze requests a second), latency and fault
profiles, record/replay and metrics, like any AOAI deployment. Polling opts out of the limits (the real service
limits polls separately and far higher). Errors come in Document Intelligence's shape (a response hook rewrites
the simulator's 404 and 429 bodies).

The result id carries the document's digest, page count and the time it was submitted, so any worker process
or replica can answer the poll, and the same document always gives the same content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

from generators_app.extensions import (
    AnswerView,
    Deployment,
    ExtensionContext,
    ExtensionRegistry,
    ExtensionRequest,
    Response,
)

MODEL = "document-intelligence"
ANALYZE, RESULT = "document_analysis", "document_analysis_result"
API_VERSIONS = ("2024-11-30", "2024-07-31-preview", "2024-02-29-preview", "2023-10-31-preview")
_PAGE = re.compile(rb"/Type\s*/Page(?![s\w])")
_RESULT_ID = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$")
_LINES_PER_PAGE = 12


def register(sim: ExtensionRegistry) -> None:
    sim.add_model(MODEL, operations=[ANALYZE, RESULT])
    analyze = sim.add_route(
        ANALYZE, r"^documentintelligence/documentModels/(?P<deployment>[^/:]+):analyze$",
        auth_header="ocp-apim-subscription-key",
    )
    result = sim.add_route(
        RESULT, r"^documentintelligence/documentModels/(?P<deployment>[^/:]+)/analyzeResults/(?P<result_id>[^/]+)$",
        methods=("GET",), auth_header="ocp-apim-subscription-key", limits=False,
    )
    sim.add_generator(start_analysis, route=analyze)
    sim.add_generator(analysis_result, route=result)
    sim.add_response_hook(document_intelligence_errors, route=analyze)
    sim.add_response_hook(document_intelligence_errors, route=result)


def seconds_per_page() -> float:
    return float(os.environ.get("DOCUMENT_ANALYSIS_SECONDS_PER_PAGE", "1.0"))


def di_error(status: int, code: str, message: str, inner_code: str | None = None, inner_message: str = "") -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_code:
        error["innererror"] = {"code": inner_code, "message": inner_message}
    return Response({"error": error}, status=status)


def _api_version_problem(request: ExtensionRequest) -> Response | None:
    version = request.query.get("api-version")
    if not version:
        return di_error(400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.")
    if version not in API_VERSIONS:
        return di_error(400, "UnsupportedApiVersion",
                        f"The HTTP resource that matches the request URI does not support the API version '{version}'.")
    return None


def _document(request: ExtensionRequest) -> bytes | str | Response:
    """The bytes to analyse (a URL source stands for itself), or the error answer."""
    invalid = di_error(400, "InvalidRequest", "Invalid request.", "InvalidContent",
                       "The file is corrupted or format is unsupported. Refer to documentation for the list of "
                       "supported formats.")
    content_type = request.headers.get("content-type", "")
    if request.json is None:
        if request.body and (content_type.startswith(("application/pdf", "image/", "application/octet-stream"))):
            return request.body
        return invalid
    sources = request.json if isinstance(request.json, dict) else {}
    if "base64Source" in sources and "urlSource" not in sources:
        try:
            data = base64.b64decode(str(sources["base64Source"]), validate=True)
        except (binascii.Error, ValueError):
            return invalid
        return data if data else invalid
    if "urlSource" in sources and "base64Source" not in sources and str(sources["urlSource"]).startswith("http"):
        return str(sources["urlSource"])
    return di_error(400, "InvalidRequest", "Invalid request.", "InvalidParameter",
                    "Exactly one of urlSource or base64Source must be provided.")


def _page_count(document: bytes | str) -> int:
    if isinstance(document, str):
        return 1 + int(hashlib.sha256(document.encode()).hexdigest(), 16) % 3
    return max(1, len(_PAGE.findall(document)))


def _result_id(seed: int, pages: int, created_ms: int) -> str:
    raw = f"{seed:016x}{pages:04x}{created_ms:012x}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _parse_result_id(result_id: str) -> tuple[int, int, int] | None:
    match = _RESULT_ID.match(result_id)
    if match is None:
        return None
    raw = "".join(match.groups())
    seed, pages, created_ms = int(raw[:16], 16), int(raw[16:20], 16), int(raw[20:], 16)
    return (seed, pages, created_ms) if pages > 0 else None


def start_analysis(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext) -> Response:
    problem = _api_version_problem(request)
    if problem is not None:
        return problem
    document = _document(request)
    if isinstance(document, Response):
        return document
    digest = hashlib.sha256(document.encode() if isinstance(document, str) else document).digest()
    result_id = _result_id(int.from_bytes(digest[:8], "big"), _page_count(document), int(time.time() * 1000))
    model_id = request.path_params["deployment"]
    host = request.headers.get("host", "localhost")
    scheme = request.headers.get("x-forwarded-proto", "http")
    location = (f"{scheme}://{host}/documentintelligence/documentModels/{model_id}/analyzeResults/{result_id}"
                f"?api-version={request.query['api-version']}")
    return Response(b"", status=202, headers={"operation-location": location, "content-type": "text/plain"})


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def analysis_result(request: ExtensionRequest, deployment: Deployment | None, context: ExtensionContext) -> Response:
    problem = _api_version_problem(request)
    if problem is not None:
        return problem
    parsed = _parse_result_id(request.path_params["result_id"])
    if parsed is None:
        return di_error(404, "NotFound", "Resource not found.", "AnalyzeResultNotFound",
                        "Analyze result not found.")
    seed, pages, created_ms = parsed
    done_ms = created_ms + int(pages * seconds_per_page() * 1000)
    now_ms = int(time.time() * 1000)
    if now_ms < done_ms:
        body = {"status": "running", "createdDateTime": _iso(created_ms), "lastUpdatedDateTime": _iso(now_ms)}
        return Response(body, headers={"retry-after": "1"})
    model_id = request.path_params["deployment"]
    result = analyze_result(seed, pages, model_id, request.query["api-version"], context)
    body = {"status": "succeeded", "createdDateTime": _iso(created_ms), "lastUpdatedDateTime": _iso(done_ms),
            "analyzeResult": result}
    return Response(body, completion_tokens=context.count_tokens(result["content"]))


def analyze_result(seed: int, pages: int, model_id: str, api_version: str, context: ExtensionContext
                   ) -> dict[str, Any]:
    """Pages of lines and words with polygons (inches, US letter) and spans into ``content``: the same seed
    always gives the same result."""
    context.rng = random.Random(seed)
    content_parts: list[str] = []
    offset = 0
    page_results: list[dict[str, Any]] = []
    paragraphs: list[dict[str, Any]] = []
    for page_number in range(1, pages + 1):
        page_start = offset
        lines: list[dict[str, Any]] = []
        words: list[dict[str, Any]] = []
        for line_index in range(_LINES_PER_PAGE):
            text = " ".join(context.text(context.rng.randint(6, 14)).split())
            top = 1.0 + line_index * 0.6
            left = 1.0
            word_offset = offset
            for word in text.split(" "):
                width = 0.08 * len(word)
                words.append({
                    "content": word,
                    "polygon": _box(left, top, width, 0.2),
                    "confidence": round(0.9 + context.rng.random() * 0.099, 3),
                    "span": {"offset": word_offset, "length": len(word)},
                })
                left += width + 0.06
                word_offset += len(word) + 1
            lines.append({"content": text, "polygon": _box(1.0, top, left - 1.06, 0.2),
                          "spans": [{"offset": offset, "length": len(text)}]})
            paragraphs.append({"spans": [{"offset": offset, "length": len(text)}],
                               "boundingRegions": [{"pageNumber": page_number,
                                                    "polygon": _box(1.0, top, left - 1.06, 0.2)}],
                               "content": text})
            content_parts.append(text)
            offset += len(text) + 1
        page_results.append({
            "pageNumber": page_number, "angle": 0, "width": 8.5, "height": 11, "unit": "inch",
            "words": words, "lines": lines, "spans": [{"offset": page_start, "length": offset - 1 - page_start}],
        })
    return {
        "apiVersion": api_version, "modelId": model_id, "stringIndexType": "textElements",
        "content": "\n".join(content_parts), "pages": page_results, "paragraphs": paragraphs,
        "contentFormat": "text",
    }


def _box(left: float, top: float, width: float, height: float) -> list[float]:
    right, bottom = round(left + width, 4), round(top + height, 4)
    return [round(left, 4), round(top, 4), right, round(top, 4), right, bottom, round(left, 4), bottom]


def document_intelligence_errors(request: ExtensionRequest, deployment: Deployment | None,
                                 context: ExtensionContext, answer: AnswerView) -> None:
    """The simulator's own AOAI-shaped refusals, reworded as Document Intelligence words them."""
    if answer.status == 404 and b"DeploymentNotFound" in (answer.body or b""):
        answer.body = di_error(404, "NotFound", "Resource not found.", "ModelNotFound",
                               "The requested model was not found.").encoded()[0]
    elif answer.status == 429:
        seconds = answer.header("retry-after") or "1"
        version = request.query.get("api-version", API_VERSIONS[0])
        message = (f"Requests to the Analyze Document Operation under Form Recognizer API version {version} have "
                   f"exceeded rate limit of your current FormRecognizer S0 pricing tier. Please retry after "
                   f"{seconds} second{'s' if seconds != '1' else ''}. To increase your rate limit switch to a paid "
                   "tier.")
        answer.body = di_error(429, "429", message).encoded()[0]
