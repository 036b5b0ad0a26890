"""One function per data-plane operation: validate the parsed body against the deployment's model, plan the
answer with the generators, and frame it as JSON or SSE."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from generators_app.answer_specs import chat_answer_spec, function_call_outputs_answered, responses_answer_spec
from generators_app.answers import Answer, Headers, JsonAnswer, StreamAnswer
from generators_app.catalogue import AnyOperation, ModelSpec, Operation
from generators_app.errors import ApiError, invalid_request
from generators_app.generation.chat import chat_completion_body, chat_stream_frames, plan_chat
from generators_app.generation.common import draw_length, request_rng
from generators_app.generation.completions import completion_body, completion_stream_frames, plan_completion
from generators_app.generation.embeddings import embeddings_body
from generators_app.generation.logprobs import token_logprobs
from generators_app.generation.outputs import plan_output
from generators_app.generation.responses import (
    ResponsePlan,
    output_as_input_items,
    response_body,
    response_echo,
    response_stream_frames,
)
from generators_app.generation.text import text_generator
from generators_app.media_requests import images_body, plan_audio, plan_images
from generators_app.multipart_form import normalized_payload
from generators_app.registry import ConfigSnapshot, DeploymentConfig
from generators_app.response_store import context_items, save_turn
from generators_app.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ResponsesRequest,
    parse_request,
)
from generators_app.tokens import count_chat_prompt, count_responses_input, count_text, get_encoding

if TYPE_CHECKING:
    from generators_app.extensions.dispatch import ExtensionCall

_JSON = b"application/json"
_SSE = b"text/event-stream; charset=utf-8"
_shared_rng = random.Random()
MAX_EMBEDDING_INPUTS = 2048
_BAD_EMBEDDING_INPUT = (
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
)


def _json(body: bytes, headers: Headers, completion_tokens: int = 0) -> JsonAnswer:
    headers.append((b"content-type", _JSON))
    return JsonAnswer(200, body, headers, completion_tokens)


def _stream(frames: list[bytes], first_token_frame: int, headers: Headers, completion_tokens: int) -> StreamAnswer:
    headers.append((b"content-type", _SSE))
    headers.append((b"x-accel-buffering", b"no"))
    headers.append((b"cache-control", b"no-cache"))
    return StreamAnswer(200, frames, headers, first_token_frame, completion_tokens)


def _context_exceeded(model: ModelSpec, prompt_tokens: int, completion_tokens: int) -> ApiError:
    requested = prompt_tokens + completion_tokens
    return invalid_request(
        f"This model's maximum context length is {model.context_window} tokens. However, you requested "
        f"{requested} tokens ({prompt_tokens} in the messages, {completion_tokens} in the completion). "
        "Please reduce the length of the messages or completion.",
        "messages", "context_length_exceeded",
    )


def _completion_lengths(
    deployment: DeploymentConfig, cap: int | None, prompt_tokens: int, n: int, rng: random.Random
) -> list[tuple[int, str]]:
    """`max_tokens` is honoured exactly (finish_reason `length`); without it, a drawn length (`stop`)."""
    model = deployment.model
    room = model.context_window - prompt_tokens
    if cap is not None:
        if cap > room:
            raise _context_exceeded(model, prompt_tokens, cap)
        return [(cap, "length")] * n
    if room < 1:
        raise _context_exceeded(model, prompt_tokens, 1)
    ceiling = min(model.max_output_tokens or room, room)
    mean, std = deployment.output_tokens_mean, deployment.output_tokens_std
    return [(draw_length(rng, mean, std, ceiling), "stop") for _ in range(n)]


@dataclass(slots=True)
class PreparedRequest:
    """A validated request with its prompt counted: what the limiter, the modes and the generator need."""

    operation: AnyOperation
    deployment: DeploymentConfig
    payload: dict[str, Any]
    stream: bool
    prompt_tokens: int
    max_tokens: int | None  # the completion cap the client set, None when it set none
    n: int
    # Builds the answer in generate mode; an extension's generators make it a coroutine function (modes.py).
    generate: Callable[[Headers], Answer | Awaitable[Answer]]
    extension: ExtensionCall | None = None  # the extensions that handle this request (forwarders, in modes.py)


def prepare_chat(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    request = parse_request(ChatCompletionRequest, payload)
    model = deployment.model
    if model.reasoning and request.max_tokens is not None:
        raise invalid_request(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens", "unsupported_parameter",
        )
    cap = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if cap is not None and model.max_output_tokens and cap > model.max_output_tokens:
        param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        raise invalid_request(
            f"{param} is too large: {cap}. This model supports at most {model.max_output_tokens} completion "
            f"tokens, whereas you provided {cap}.",
            param, "invalid_value",
        )
    prompt_tokens = count_chat_prompt(model.tokenizer, payload["messages"], payload.get("tools"),
                                      payload.get("tool_choice"))
    n = request.n or 1
    rng = (
        request_rng(request.seed, deployment.name, payload["messages"], n, cap)
        if request.seed is not None else _shared_rng
    )
    lengths = _completion_lengths(deployment, cap, prompt_tokens, n, rng)
    spec = chat_answer_spec(request, payload, deployment)  # tools, structured output, reasoning
    top_logprobs = (request.top_logprobs or 0) if request.logprobs else None

    def generate(headers: Headers) -> Answer:
        plan = plan_chat(deployment, prompt_tokens, n, lengths, rng, spec, cap, top_logprobs)
        if request.stream:
            options = request.stream_options
            include_usage = bool(options and options.include_usage)
            include_obfuscation = not (options and options.include_obfuscation is False)
            frames, first = chat_stream_frames(plan, rng, include_usage, include_obfuscation)
            return _stream(frames, first, headers, plan.completion_tokens)
        return _json(chat_completion_body(plan), headers, plan.completion_tokens)

    return PreparedRequest(Operation.CHAT, deployment, payload, bool(request.stream), prompt_tokens, cap, n, generate)


def _prompt_texts(encoding_name: str, prompt: Any, param: str) -> tuple[list[str], int]:
    """Normalise str | list[str] | list[int] | list[list[int]] to texts, with their token count."""
    encoding = get_encoding(encoding_name)
    if isinstance(prompt, str):
        prompt = [prompt]
    if not prompt:
        raise invalid_request(f"Invalid '{param}': it must not be empty.", param, "invalid_value")
    texts: list[str] = []
    tokens = 0
    token_lists = [prompt] if isinstance(prompt[0], int) else prompt
    for item in token_lists:
        if isinstance(item, str):
            texts.append(item)
            tokens += count_text(encoding_name, item)
            continue
        try:
            texts.append(encoding.decode(item))
        except (KeyError, ValueError, TypeError, OverflowError):
            raise invalid_request(f"Invalid token id in '{param}'.", param, "invalid_value") from None
        tokens += len(item)
    return texts, tokens


def prepare_completions(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    request = parse_request(CompletionRequest, payload)
    model = deployment.model
    prompts, prompt_tokens = _prompt_texts(model.tokenizer, request.prompt, "prompt")
    n = request.n or 1
    rng = (
        request_rng(request.seed, deployment.name, prompts, n, request.max_tokens)
        if request.seed is not None else _shared_rng
    )
    if request.max_tokens is None:
        (length, finish_reason), = _completion_lengths(deployment, None, prompt_tokens, 1, rng)
    else:
        if prompt_tokens + request.max_tokens > model.context_window:
            raise _context_exceeded(model, prompt_tokens, request.max_tokens)
        length, finish_reason = request.max_tokens, "length"

    def generate(headers: Headers) -> Answer:
        plan = plan_completion(deployment, prompts, prompt_tokens, n, length, finish_reason, bool(request.echo), rng)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            frames, first = completion_stream_frames(plan, include_usage)
            return _stream(frames, first, headers, plan.completion_tokens)
        return _json(completion_body(plan), headers, plan.completion_tokens)

    return PreparedRequest(
        Operation.COMPLETIONS, deployment, payload, bool(request.stream), prompt_tokens, request.max_tokens,
        n * len(prompts), generate,
    )


def prepare_embeddings(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    request = parse_request(EmbeddingRequest, payload)
    model = deployment.model
    raw_input = request.input
    if raw_input == "" or raw_input == [] or (isinstance(raw_input, list) and any(i in ("", []) for i in raw_input)):
        raise invalid_request(_BAD_EMBEDDING_INPUT, "input", "invalid_value")
    if isinstance(raw_input, list) and not isinstance(raw_input[0], int) and len(raw_input) > MAX_EMBEDDING_INPUTS:
        raise invalid_request(
            f"Too many inputs. The max number of inputs is {MAX_EMBEDDING_INPUTS}.", "input", "invalid_value"
        )
    texts, prompt_tokens = _prompt_texts(model.tokenizer, raw_input, "input")
    longest = max(count_text(model.tokenizer, text) for text in texts)
    if longest > model.context_window:
        raise invalid_request(
            f"This model's maximum context length is {model.context_window} tokens, however you requested "
            f"{longest} tokens in your input. Please reduce your prompt.",
            "input", "context_length_exceeded",
        )
    dimensions = model.embedding_dimensions
    if request.dimensions is not None:
        if not model.supports_dimensions:
            raise invalid_request("This model does not support specifying dimensions.", "dimensions",
                                  "invalid_value")
        if request.dimensions > model.embedding_dimensions:
            raise invalid_request(
                f"Invalid value for 'dimensions': {request.dimensions} is above the maximum of "
                f"{model.embedding_dimensions}.",
                "dimensions", "invalid_value",
            )
        dimensions = request.dimensions
    encoding_format = request.encoding_format or "float"

    def generate(headers: Headers) -> Answer:
        body = embeddings_body(texts, dimensions, encoding_format, model.version_string, prompt_tokens)
        return _json(body, headers)

    return PreparedRequest(Operation.EMBEDDINGS, deployment, payload, False, prompt_tokens, 0, 1, generate)


def prepare_images(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    plan = plan_images(payload, deployment.model)

    def generate(headers: Headers) -> Answer:
        return _json(images_body(plan), headers)

    # Image quotas are per request; the prompt is the only token count there is (no completion).
    return PreparedRequest(Operation.IMAGES, deployment, payload, False, plan.prompt_tokens, 0, plan.n, generate)


def _prepare_audio(operation: Operation, task: str, payload: dict[str, Any],
                   deployment: DeploymentConfig) -> PreparedRequest:
    """`payload` is the parsed multipart form; the PreparedRequest carries its normalized, JSON-safe form (the
    file as its SHA-256 and size) for matching and recording. prompt_tokens counts the audio (10 tokens a
    second) and the text prompt, so latency's per-input-token term grows per audio second."""
    plan = plan_audio(task, payload, deployment.model)

    def generate(headers: Headers) -> Answer:
        body, content_type = plan.answer()
        headers.append((b"content-type", content_type))
        return JsonAnswer(200, body, headers, plan.transcript.output_tokens)

    return PreparedRequest(operation, deployment, normalized_payload(payload), False, plan.prompt_tokens, 0, 1,
                           generate)


def prepare_audio_transcriptions(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    return _prepare_audio(Operation.AUDIO_TRANSCRIPTIONS, "transcribe", payload, deployment)


def prepare_audio_translations(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    return _prepare_audio(Operation.AUDIO_TRANSLATIONS, "translate", payload, deployment)


_LOGPROBS_INCLUDE = "message.output_text.logprobs"


def prepare_responses(payload: dict[str, Any], deployment: DeploymentConfig) -> PreparedRequest:
    """The Responses API: input items (after the `previous_response_id` chain) counted, the answer decided as in
    chat (answer_specs/outputs), framed by generation/responses.py; stored for follow-ups unless `store: false`."""
    request = parse_request(ResponsesRequest, payload)
    model = deployment.model
    if request.input is None and request.previous_response_id is None:
        raise invalid_request("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    cap = request.max_output_tokens
    if cap is not None and model.max_output_tokens and cap > model.max_output_tokens:
        raise invalid_request(
            f"max_output_tokens is too large: {cap}. This model supports at most {model.max_output_tokens} output "
            f"tokens, whereas you provided {cap}.",
            "max_output_tokens", "invalid_value",
        )
    raw_input = payload.get("input")
    own_items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input or [])
    context: list[dict[str, Any]] | None = []
    if request.previous_response_id is not None:
        context = context_items(request.previous_response_id)
        if context is None and deployment.mode == "generate":
            raise invalid_request(f"Previous response with id '{request.previous_response_id}' not found.",
                                  "previous_response_id", "previous_response_not_found")
    if context is None:  # replay/record modes: the chain is the upstream's, count this turn only
        context = []
    else:
        function_call_outputs_answered(context, own_items)
    items = [*context, *own_items]
    spec = responses_answer_spec(request, items, deployment)
    prompt_tokens = count_responses_input(model.tokenizer, items, request.instructions, payload.get("tools"))
    if prompt_tokens + (cap or 1) > model.context_window:
        raise invalid_request("Your input exceeds the context window of this model. Please adjust your input and try "
                              "again.", "input", "context_length_exceeded")
    seed = payload.get("seed")  # not in the API; honoured like chat's for deterministic tests
    rng = request_rng(seed, deployment.name, items, cap) if type(seed) is int else _shared_rng
    (length, finish_reason), = _completion_lengths(deployment, cap, prompt_tokens, 1, rng)
    top_logprobs = (request.top_logprobs or 0) if _LOGPROBS_INCLUDE in (request.include or []) else None
    echo = response_echo(payload, deployment.name, spec.reasoning_effort)

    def generate(headers: Headers) -> Answer:
        output = plan_output(spec, text_generator(model.tokenizer), length, finish_reason, cap, rng)
        logprobs = token_logprobs(output.pieces, top_logprobs, rng) if top_logprobs is not None else None
        plan = ResponsePlan(echo, prompt_tokens, output, spec.reasoning_effort is not None, logprobs)
        if request.store is not False:
            save_turn(plan.id, request.previous_response_id, own_items + output_as_input_items(plan))
        if request.stream:
            include_obfuscation = not (request.stream_options and request.stream_options.include_obfuscation is False)
            frames, first = response_stream_frames(plan, rng, include_obfuscation)
            return _stream(frames, first, headers, output.completion_tokens)
        return _json(response_body(plan), headers, output.completion_tokens)

    return PreparedRequest(Operation.RESPONSES, deployment, payload, bool(request.stream), prompt_tokens, cap, 1,
                           generate)


PREPARERS: dict[Operation, Callable[[dict[str, Any], DeploymentConfig], PreparedRequest]] = {
    Operation.CHAT: prepare_chat,
    Operation.RESPONSES: prepare_responses,
    Operation.COMPLETIONS: prepare_completions,
    Operation.EMBEDDINGS: prepare_embeddings,
    Operation.IMAGES: prepare_images,
    Operation.AUDIO_TRANSCRIPTIONS: prepare_audio_transcriptions,
    Operation.AUDIO_TRANSLATIONS: prepare_audio_translations,
}


def prepare(operation: Operation, payload: object, deployment: DeploymentConfig) -> PreparedRequest:
    """Validate and count a request for its operation; raises ApiError (4xx) for anything the client got wrong."""
    if not isinstance(payload, dict):
        raise invalid_request("Invalid type for request body: expected an object.", None, "invalid_type")
    preparer = PREPARERS.get(operation)
    if preparer is None:
        raise invalid_request(f"The {operation} operation is not available on this simulator.", None,
                              "OperationNotSupported")
    return preparer(payload, deployment)


def models_answer(snapshot: ConfigSnapshot, headers: Headers) -> JsonAnswer:
    """The deployments of models that serve an OpenAI operation (not those of an extension's own service)."""
    data = [
        {"id": name, "object": "model", "created": deployment.model.created, "owned_by": "system"}
        for name, deployment in sorted(snapshot.deployments.items())
        if any(isinstance(operation, Operation) for operation in deployment.model.operations)
    ]
    return _json(orjson.dumps({"object": "list", "data": data}), headers)
