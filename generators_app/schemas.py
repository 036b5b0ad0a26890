"""Typed pydantic v2 models of the OpenAI request bodies, and the mapping of their errors to OpenAI's 400.

Strict mode: OpenAI refuses "5" where an integer is expected, and so do we. Unknown top-level fields are
accepted and ignored, because SDKs add parameters faster than any simulator can list them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from generators_app.errors import ApiError, invalid_request


class _Lenient(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


# --- chat messages -----------------------------------------------------------------------------------------
class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageUrl(_Lenient):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudioPart(_Lenient):
    type: Literal["input_audio"]
    input_audio: dict[str, Any]


class FilePart(_Lenient):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Lenient):
    type: Literal["refusal"]
    refusal: str


def _tagged_union(field: str, members: dict[str, type[BaseModel]]) -> Any:
    """A union chosen by the value of `field`. Tags are written `<value>` so that error locations can drop
    them (pydantic puts the tag into `loc`, and a tag can equal a real field name, such as `function`)."""

    def discriminate(value: Any) -> str | None:
        tag = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        return f"<{tag}>" if isinstance(tag, str) else None

    discriminate.__name__ = field
    choices = tuple(Annotated[model, Tag(f"<{tag}>")] for tag, model in members.items())
    return Annotated[Union[choices], Discriminator(discriminate)]  # noqa: UP007  (a runtime-built union)


UserPart = _tagged_union(
    "type", {"text": TextPart, "image_url": ImagePart, "input_audio": InputAudioPart, "file": FilePart}
)
AssistantPart = _tagged_union("type", {"text": TextPart, "refusal": RefusalPart})


class FunctionCall(_Lenient):
    name: str
    arguments: str


class ToolCall(_Lenient):
    id: str
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(_Lenient):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Lenient):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Lenient):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Lenient):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


class ToolMessage(_Lenient):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Lenient):
    role: Literal["function"]
    content: str | None
    name: str


Message = _tagged_union(
    "role",
    {
        "system": SystemMessage,
        "assistant": AssistantMessage,
        "user": UserMessage,
        "function": FunctionMessage,
        "tool": ToolMessage,
        "developer": DeveloperMessage,
    },
)


# --- tools and formats -------------------------------------------------------------------------------------
class FunctionDefinition(_Lenient):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Lenient):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Lenient):
    name: str


class NamedToolChoice(_Lenient):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Lenient):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(_Lenient):
    type: Literal["text"]


class ResponseFormatJsonObject(_Lenient):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(_Lenient):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = _tagged_union(
    "type",
    {"text": ResponseFormatText, "json_object": ResponseFormatJsonObject, "json_schema": ResponseFormatJsonSchema},
)


class StreamOptions(_Lenient):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


Stop = str | Annotated[list[str], Field(max_length=4)] | None


# --- operations --------------------------------------------------------------------------------------------
class ChatCompletionRequest(_Lenient):
    messages: Annotated[list[Message], Field(min_length=1)]
    model: str | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    response_format: ResponseFormat | None = None
    seed: int | None = None
    stop: Stop = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None


PromptInput = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(_Lenient):
    prompt: PromptInput
    model: str | None = None
    max_tokens: int | None = Field(default=16, ge=0)
    n: int | None = Field(default=None, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=1, le=20)
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    seed: int | None = None
    stop: Stop = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class EmbeddingRequest(_Lenient):
    input: PromptInput
    model: str | None = None
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


# --- error mapping -----------------------------------------------------------------------------------------
_TYPE_NAMES = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _param_path(loc: tuple[Any, ...]) -> str:
    """('messages', 0, '<user>', 'content', 'str') -> 'messages[0].content': union tags and members dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("<") or "[" in part or part in _UNION_MEMBER_NAMES or "-" in part:
            continue
        else:
            out += f".{part}" if out else part
    return out


_UNION_MEMBER_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _pick_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """A union reports one error per member: prefer the one that is about a value rather than a type
    (that member had the right type), and among equals the deepest."""
    for err in errors:
        if err["type"] in {"missing", "union_tag_invalid", "union_tag_not_found"}:
            return err
    about_values = [err for err in errors if err["type"] not in _TYPE_NAMES]
    return max(about_values or errors, key=lambda err: len(err["loc"]))


def validation_error_to_api_error(exc: ValidationError) -> ApiError:
    err = _pick_error(exc.errors(include_url=False))
    param = _param_path(tuple(err["loc"]))
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "missing":
        return invalid_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        if not isinstance(value, dict):
            return invalid_request(
                f"Invalid type for '{param}': expected an object, but got {_json_type_name(value)} instead.",
                param, "invalid_type",
            )
        field = str(ctx.get("discriminator", "type")).strip("'()")
        field_param = f"{param}.{field}" if param else field
        if field not in value:
            return invalid_request(
                f"Missing required parameter: '{field_param}'.", field_param, "missing_required_parameter"
            )
        tags = [tag.strip("<>' ") for tag in str(ctx.get("expected_tags", "")).split(",") if tag.strip()]
        supported = ", ".join(f"'{tag}'" for tag in tags)
        return invalid_request(
            f"Invalid value: '{value.get(field)}'. Supported values are: {supported}.", field_param, "invalid_value"
        )
    if kind in _TYPE_NAMES:
        return invalid_request(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got {_json_type_name(value)} instead.",
            param, "invalid_type",
        )
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = next(iter(ctx.values()), "")
        relation = {
            "greater_than_equal": "below the minimum", "greater_than": "not above",
            "less_than_equal": "above the maximum", "less_than": "not below",
        }[kind]
        return invalid_request(
            f"Invalid value for '{param}': {value!r} is {relation} of {bound}.", param, "invalid_value"
        )
    if kind in {"too_short", "too_long"}:
        if kind == "too_short":
            detail = f"expected an array with minimum length {ctx.get('min_length')}"
        else:
            detail = f"expected an array with maximum length {ctx.get('max_length')}"
        actual = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else "?")
        return invalid_request(
            f"Invalid '{param}': {detail}, but got an array with length {actual} instead.",
            param, "array_above_max_length" if kind == "too_long" else "empty_array",
        )
    if kind == "literal_error":
        return invalid_request(
            f"Invalid value: {value!r}. Supported values are: {ctx.get('expected')}.", param, "invalid_value"
        )
    if kind in {"string_too_short", "string_too_long", "string_pattern_mismatch"}:
        return invalid_request(f"Invalid '{param}': {err['msg'].lower()}.", param, "invalid_value")
    return invalid_request(f"Invalid value for '{param}': {err['msg']}.", param, "invalid_value")


M = TypeVar("M", bound=BaseModel)


def parse_request(model: type[M], payload: Any) -> M:
    if not isinstance(payload, dict):
        raise invalid_request(
            f"Invalid type for request body: expected an object, but got {_json_type_name(payload)} instead.",
            None, "invalid_type",
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error_to_api_error(exc) from None


# --- Responses API -----------------------------------------------------------------------------------------
class InputTextPart(_Lenient):
    type: Literal["input_text"]
    text: str


class InputImagePart(_Lenient):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class InputFilePart(_Lenient):
    type: Literal["input_file"]


class OutputTextPart(_Lenient):
    type: Literal["output_text"]
    text: str


class InputAudioItemPart(_Lenient):
    type: Literal["input_audio"]


ResponsesContentPart = _tagged_union(
    "type",
    {
        "input_text": InputTextPart, "input_image": InputImagePart, "input_file": InputFilePart,
        "input_audio": InputAudioItemPart, "output_text": OutputTextPart, "refusal": RefusalPart,
    },
)


class ResponsesMessageItem(_Lenient):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ResponsesContentPart]


class FunctionCallItem(_Lenient):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class FunctionCallOutputItem(_Lenient):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[ResponsesContentPart]


class ItemReference(_Lenient):
    type: Literal["item_reference"]
    id: str


class ReasoningInputItem(_Lenient):
    type: Literal["reasoning"]


def _responses_item_tag(value: Any) -> str | None:
    """Items are tagged by `type`; a message may leave it out (`{"role": "user", "content": "..."}`)."""
    if isinstance(value, dict):
        tag = value.get("type")
        if tag is None and "role" in value:
            tag = "message"
    else:
        tag = getattr(value, "type", None)
    return f"<{tag}>" if isinstance(tag, str) else None


_responses_item_tag.__name__ = "type"
_RESPONSES_ITEMS: dict[str, type[BaseModel]] = {
    "message": ResponsesMessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "item_reference": ItemReference,
    "reasoning": ReasoningInputItem,
}
ResponsesInputItem = Annotated[
    Union[tuple(Annotated[model, Tag(f"<{tag}>")] for tag, model in _RESPONSES_ITEMS.items())],  # noqa: UP007
    Discriminator(_responses_item_tag),
]


class ResponsesFunctionTool(_Lenient):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ResponsesHostedTool(_Lenient):
    """web_search, file_search, code_interpreter, mcp, ...: accepted and echoed, never called here."""

    type: str


def _responses_tool_tag(value: Any) -> str | None:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(tag, str):
        return None
    return "<function>" if tag == "function" else "<hosted>"


_responses_tool_tag.__name__ = "type"
ResponsesTool = Annotated[
    Union[Annotated[ResponsesFunctionTool, Tag("<function>")], Annotated[ResponsesHostedTool, Tag("<hosted>")]],  # noqa: UP007
    Discriminator(_responses_tool_tag),
]


class ResponsesToolChoiceObject(_Lenient):
    type: str
    name: str | None = None


class ResponsesTextFormatText(_Lenient):
    type: Literal["text"]


class ResponsesTextFormatJsonObject(_Lenient):
    type: Literal["json_object"]


class ResponsesTextFormatJsonSchema(_Lenient):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


ResponsesTextFormat = _tagged_union(
    "type",
    {
        "text": ResponsesTextFormatText,
        "json_object": ResponsesTextFormatJsonObject,
        "json_schema": ResponsesTextFormatJsonSchema,
    },
)


class ResponsesText(_Lenient):
    format: ResponsesTextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesReasoning(_Lenient):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesStreamOptions(_Lenient):
    include_obfuscation: bool | None = None


class ResponsesRequest(_Lenient):
    model: str | None = None
    input: str | list[ResponsesInputItem] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = Field(default=None, ge=1)
    previous_response_id: str | None = None
    stream: bool | None = None
    stream_options: ResponsesStreamOptions | None = None
    tools: list[ResponsesTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ResponsesToolChoiceObject | None = None
    parallel_tool_calls: bool | None = None
    text: ResponsesText | None = None
    reasoning: ResponsesReasoning | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
    store: bool | None = None
    background: bool | None = None
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
