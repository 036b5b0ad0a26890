"""Offline tokenizers and the prompt-token accounting of OpenAI / Azure OpenAI.

The simulator reports `prompt_tokens` / `input_tokens` that clients compare with what the real service
bills, so the rules here are calibrated against recorded gpt-4o-mini traffic
(tests/reference/aoai-recordings) and the OpenAI cookbook; every constant below says where it comes from.

The rank files are shipped in `tokenizer_files/` and verified by hash: a simulator must start on a machine
without internet, so nothing here may fall back to tiktoken's download path.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tiktoken
import tiktoken.load

__all__ = [
    "ENCODING_NAMES",
    "count_chat_prompt",
    "count_responses_input",
    "count_text",
    "get_encoding",
]

_TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizer_files"

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

# Copied from tiktoken_ext.openai_public (tiktoken 0.14); a unit test keeps them in sync with it.
_O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


@dataclass(frozen=True, slots=True)
class _EncodingSpec:
    file_name: str
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]


_SPECS: dict[str, _EncodingSpec] = {
    "o200k_base": _EncodingSpec(
        "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT_STR,
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": _EncodingSpec(
        "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT_STR,
        {
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
}

ENCODING_NAMES: tuple[str, ...] = tuple(_SPECS)


def _build_encoding(name: str, directory: Path = _TOKENIZER_DIR) -> tiktoken.Encoding:
    """Build an encoding from the shipped rank file; the expected hash turns a corrupt or swapped file into an
    error at start-up instead of silently wrong counts."""
    try:
        spec = _SPECS[name]
    except KeyError:
        raise ValueError(f"Unknown encoding {name!r}; expected one of {', '.join(_SPECS)}") from None
    # A local path never reaches tiktoken's HTTP branch, so this cannot download.
    ranks = tiktoken.load.load_tiktoken_bpe(str(directory / spec.file_name), expected_hash=spec.sha256)
    return tiktoken.Encoding(
        name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
    )


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The encoding called `name`, loaded once per process: parsing a rank file takes ~0.5 s and tens of MB,
    far too much to repeat per request or per caller."""
    return _build_encoding(name)


def count_text(encoding_name: str, text: str) -> int:
    """Tokens in `text`, treating special-token look-alikes ("<|endoftext|>") as ordinary text, because that
    is what the service does with user content and because `encode` would raise on them."""
    return len(get_encoding(encoding_name).encode_ordinary(text))


# ----------------------------------------------------------------------------------------------------------
# Calibrated constants.

# OpenAI cookbook ("How to count tokens with tiktoken", gpt-4o family): every message is framed as
# <|im_start|>{role}<|im_sep|>{content}<|im_end|>, a `name` costs one extra token, and the reply is primed
# with <|im_start|>assistant<|im_sep|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER_TOKENS = 3

# Tool definitions (chat): the cookbook's `num_tokens_for_tools` constants for gpt-4o / gpt-4o-mini. They
# reproduce both the cookbook's own API measurement (101) and the recorded Azure request (75).
FUNC_INIT = 7  # per function
PROP_INIT = 3  # once per function that has properties
PROP_KEY = 3  # per property
ENUM_INIT = -3  # per property that has an enum
ENUM_ITEM = 3  # per enum value
FUNC_END = 12  # once, when any function is defined

# `tool_choice` (chat): measured by hmarr/openai-chat-tokens for the equivalent `function_call` parameter:
# "none" costs one token, forcing a named function costs its name plus four.
TOOL_CHOICE_NONE_TOKENS = 1
TOOL_CHOICE_NAMED_TOKENS = 4

# Images cannot be decoded here, so a fixed estimate per image: 85 is OpenAI's base cost, which is all a
# `detail: low` image costs; 765 is what a 1024x1024 image costs at high detail (85 + 4 tiles * 170).
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS_HIGH = 765

# Audio input is estimated from the payload size: ~10 tokens per second of audio (gpt-4o audio models), and
# the size of a second of 16 kHz, 16-bit mono PCM (WAV). Compressed formats are over-estimated; that errs
# toward the conservative side for rate limiting.
AUDIO_TOKENS_PER_SECOND = 10
AUDIO_BYTES_PER_SECOND = 32_000

# Responses API. Azure's `input_tokens` for gpt-4o-mini does not include the tool definitions: the recorded
# request with one tool reports 36 where the same messages cost 32, i.e. only the framing of one extra
# message.
RESPONSES_TOOLS_TOKENS = TOKENS_PER_MESSAGE + 1
# A `function_call` item costs this plus its name and arguments; a `function_call_output` item this plus its
# output. Only their sum (35) is pinned by the recorded follow-up request (137 input tokens); `call_id` is not
# counted at all (two recordings with call ids of different lengths report the same total).
FUNCTION_CALL_ITEM_TOKENS = 17
FUNCTION_CALL_OUTPUT_ITEM_TOKENS = 18

# Chat tool calls are rendered the way the model sees them; the recorded follow-up (149 prompt tokens) is
# matched exactly by this rendering. One call is addressed to the function itself and its answer comes back
# from it; several calls go through the `multi_tool_use.parallel` wrapper as one JSON document (compact,
# ASCII-escaped), and their answers come back as one JSON list of the tool messages' contents.
_PARALLEL_CALL_HEADER = "assistant to=multi_tool_use.parallel"
_PARALLEL_RESULT_HEADER = "multi_tool_use.parallel to=assistant"

_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=str)


# ----------------------------------------------------------------------------------------------------------
# Shared helpers. Everything below receives parsed JSON of any shape: it must never raise, so each access
# checks the type it relies on and skips what does not fit.


class _Counter:
    """Token counting bound to one encoding, so the hot path does not look the encoding up per string."""

    __slots__ = ("_encode", "_roles")

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self._encode = encoding.encode_ordinary
        self._roles: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return len(self._encode(text)) if text else 0

    def role(self, role: str) -> int:
        """Roles repeat in every message; caching them saves most of the tiny encode calls. Bounded, because
        roles are client-supplied strings."""
        cached = self._roles.get(role)
        if cached is None:
            cached = len(self._encode(role))
            if len(self._roles) < 64:
                self._roles[role] = cached
        return cached


@functools.cache
def _counter(encoding_name: str) -> _Counter:
    return _Counter(get_encoding(encoding_name))


def _as_text(value: object) -> str:
    """Text for a scalar that should have been a string; containers and None give nothing."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list | tuple):
        return ""
    return str(value)


def _as_list(value: object) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return value
    return ()


def _image_tokens(detail: object) -> int:
    return IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_HIGH


def _audio_tokens(data: object) -> int:
    if not isinstance(data, str) or not data:
        return AUDIO_TOKENS_PER_SECOND  # unknown length: assume about a second
    seconds = (len(data) * 3 // 4) / AUDIO_BYTES_PER_SECOND
    return max(1, math.ceil(seconds * AUDIO_TOKENS_PER_SECOND))


def _part_tokens(count: _Counter, part: object) -> int:
    """One content part of either API (chat `text`/`image_url`/`input_audio`/`refusal`, Responses
    `input_text`/`output_text`/`input_image`/...). Unknown parts count their text if they have any."""
    if isinstance(part, str):
        return count(part)
    if not isinstance(part, dict):
        return count(_as_text(part))
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        return count(_as_text(part.get("text")))
    if kind == "refusal":
        return count(_as_text(part.get("refusal")))
    if kind == "image_url":
        image = part.get("image_url")
        return _image_tokens(image.get("detail") if isinstance(image, dict) else None)
    if kind == "input_image":
        return _image_tokens(part.get("detail"))
    if kind == "input_audio":
        audio = part.get("input_audio")
        return _audio_tokens(audio.get("data") if isinstance(audio, dict) else part.get("data"))
    text = part.get("text")
    return count(text) if isinstance(text, str) else 0


def _content_tokens(count: _Counter, content: object) -> int:
    if isinstance(content, str):
        return count(content) if content else 0
    if isinstance(content, list | tuple):
        return sum(_part_tokens(count, part) for part in content)
    if isinstance(content, dict):
        return _part_tokens(count, content)
    return count(_as_text(content))


def _content_text(content: object) -> str:
    """A tool result's content as one string, for rendering it inside the parallel-results JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "".join(texts)
    return _as_text(content)


# ----------------------------------------------------------------------------------------------------------
# Tool definitions.


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(_as_text(k) for k in kind)
    return _as_text(kind)


def _properties_tokens(count: _Counter, parameters: object) -> int:
    """The cookbook's per-property rule, applied recursively to nested objects (the cookbook stops at the
    first level, which undercounts nested schemas badly)."""
    if not isinstance(parameters, dict):
        return 0
    properties = parameters.get("properties")
    if not isinstance(properties, dict) or not properties:
        items = parameters.get("items")
        return _properties_tokens(count, items) if isinstance(items, dict) else 0
    total = PROP_INIT
    for key, schema in properties.items():
        total += PROP_KEY
        if not isinstance(schema, dict):
            total += count(f"{key}::")
            continue
        enum = schema.get("enum")
        if isinstance(enum, list | tuple):
            total += ENUM_INIT
            for item in enum:
                total += ENUM_ITEM + count(_as_text(item))
        description = _as_text(schema.get("description")).removesuffix(".")
        total += count(f"{key}:{_schema_type(schema)}:{description}")
        total += _properties_tokens(count, schema)
    return total


def _function_tokens(count: _Counter, function: dict[str, Any]) -> int:
    description = _as_text(function.get("description")).removesuffix(".")
    total = FUNC_INIT + count(f"{_as_text(function.get('name'))}:{description}")
    return total + _properties_tokens(count, function.get("parameters"))


def _tool_functions(tools: object) -> Iterable[dict[str, Any]]:
    """Function definitions from either API's tool shape: chat nests them under `function`, Responses inlines
    them. Non-function tools (web search, code interpreter, ...) are skipped."""
    for tool in _as_list(tools):
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        if isinstance(function, dict):
            yield function
        elif tool.get("type", "function") == "function" and "name" in tool:
            yield tool


def _tools_tokens(count: _Counter, tools: object) -> int:
    total = 0
    for function in _tool_functions(tools):
        total += _function_tokens(count, function)
    return total + FUNC_END if total else 0


@functools.lru_cache(maxsize=256)
def _cached_tools_tokens(encoding_name: str, tools_json: bytes) -> int:
    return _tools_tokens(_counter(encoding_name), orjson.loads(tools_json))


def _tools_tokens_of(encoding_name: str, tools: object) -> int:
    """Agents send the same tool definitions with every request: count each set once (keyed by its JSON,
    which costs a few microseconds against a dozen tokenizer calls)."""
    if not tools:
        return 0
    try:
        key = orjson.dumps(tools)
    except TypeError:
        return _tools_tokens(_counter(encoding_name), tools)
    return _cached_tools_tokens(encoding_name, key)


def _tool_choice_tokens(count: _Counter, tool_choice: object) -> int:
    if tool_choice == "none":
        return TOOL_CHOICE_NONE_TOKENS
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
        if isinstance(name, str):
            return TOOL_CHOICE_NAMED_TOKENS + count(name)
    return 0


# ----------------------------------------------------------------------------------------------------------
# Chat completions.


def _call_function(call: object) -> tuple[str, str]:
    """(name, arguments) of a chat tool call, however malformed."""
    if not isinstance(call, dict):
        return "", _as_text(call)
    function = call.get("function")
    if not isinstance(function, dict):
        function = call  # tolerate a flattened {"name", "arguments"}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = "" if arguments is None else _json_encoder.encode(arguments)
    return _as_text(function.get("name")), arguments


def _parallel_arguments(arguments: str) -> str:
    """Arguments as they sit inside the parallel-call document: re-serialised compactly when they are JSON."""
    try:
        return _json_encoder.encode(json.loads(arguments))
    except (ValueError, RecursionError):
        return _json_encoder.encode(arguments)


def _tool_calls_tokens(count: _Counter, calls: list[tuple[str, str]]) -> int:
    if len(calls) == 1:
        name, arguments = calls[0]
        return TOKENS_PER_MESSAGE + count(f"assistant to=functions.{name}") + count(arguments)
    return TOKENS_PER_MESSAGE + count(_PARALLEL_CALL_HEADER) + count(_parallel_tool_uses(calls))


def _parallel_tool_uses(calls: list[tuple[str, str]]) -> str:
    """Several calls as the model writes them: one multi_tool_use.parallel call with a tool_uses list."""
    uses = ",".join(
        f'{{"recipient_name":{_json_encoder.encode("functions." + name)},'
        f'"parameters":{_parallel_arguments(arguments)}}}'
        for name, arguments in calls
    )
    return f'{{"tool_uses":[{uses}]}}'


def count_chat_prompt(
    encoding_name: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: object = None,
) -> int:
    """Prompt tokens of a chat completions request, as the service reports them in `usage.prompt_tokens`.

    Matches recorded gpt-4o-mini traffic exactly for plain messages, tool definitions and a parallel tool-call
    round trip; images and audio are estimates (see the constants above).
    """
    count = _counter(encoding_name)
    role_tokens = count.role
    total = REPLY_PRIMER_TOKENS + _tools_tokens_of(encoding_name, tools) + _tool_choice_tokens(count, tool_choice)
    call_names: dict[str, str] = {}
    in_parallel_results = False  # inside the run of tool messages answering a parallel call
    pending_results: list[str] = []

    def flush_results() -> int:
        text = _json_encoder.encode(pending_results)
        pending_results.clear()
        return TOKENS_PER_MESSAGE + count(_PARALLEL_RESULT_HEADER) + count(text)

    for message in _as_list(messages):
        if not isinstance(message, dict):
            continue
        role = _as_text(message.get("role"))
        if role == "tool" and in_parallel_results:
            pending_results.append(_content_text(message.get("content")))
            continue
        if pending_results:
            total += flush_results()
        in_parallel_results = False

        content = message.get("content")
        tool_calls = message.get("tool_calls")
        calls = [_call_function(call) for call in _as_list(tool_calls)]
        legacy_call = message.get("function_call")
        if not calls and isinstance(legacy_call, dict):
            calls = [_call_function(legacy_call)]

        if role == "tool":
            call_id = message.get("tool_call_id")
            name = call_names.get(call_id) if isinstance(call_id, str) else None
            header = f"functions.{name} to=assistant" if name is not None else role
            total += TOKENS_PER_MESSAGE + count(header) + _content_tokens(count, content)
            continue

        if calls:
            for call, (name, _) in zip(_as_list(tool_calls), calls, strict=False):
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    call_names[call["id"]] = name
            total += _tool_calls_tokens(count, calls)
            in_parallel_results = len(calls) > 1
            if not content and not message.get("refusal"):
                continue

        total += TOKENS_PER_MESSAGE + role_tokens(role) + _content_tokens(count, content)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and not content:
            total += count(refusal)
        name = message.get("name")
        if name is not None:
            total += TOKENS_PER_NAME + count(_as_text(name))

    if pending_results:
        total += flush_results()
    return total


# ----------------------------------------------------------------------------------------------------------
# Responses API.


def _item_tokens(count: _Counter, item: object) -> int:
    if isinstance(item, str):  # tolerated: a bare string item reads as a user message
        return TOKENS_PER_MESSAGE + count.role("user") + count(item)
    if not isinstance(item, dict):
        return 0
    kind = item.get("type")
    if kind == "function_call":
        arguments = _as_text(item.get("arguments"))
        return FUNCTION_CALL_ITEM_TOKENS + count(_as_text(item.get("name"))) + count(arguments)
    if kind == "function_call_output":
        return FUNCTION_CALL_OUTPUT_ITEM_TOKENS + _content_tokens(count, item.get("output"))
    if kind == "custom_tool_call":
        tool_input = _as_text(item.get("input"))
        return FUNCTION_CALL_ITEM_TOKENS + count(_as_text(item.get("name"))) + count(tool_input)
    if kind == "custom_tool_call_output":
        return FUNCTION_CALL_OUTPUT_ITEM_TOKENS + _content_tokens(count, item.get("output"))
    if kind in (None, "message") and "role" in item:
        return (
            TOKENS_PER_MESSAGE
            + count.role(_as_text(item.get("role")))
            + _content_tokens(count, item.get("content"))
        )
    # Reasoning items, references to stored items, hosted-tool calls: nothing the simulator can price.
    return 0


def count_responses_input(
    encoding_name: str,
    input: str | list[Any],
    instructions: str | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> int:
    """Input tokens of a Responses API request, as Azure reports them in `usage.input_tokens`.

    The framing is the chat one (a string input is one user message, `instructions` a system message);
    function items and tools follow the constants calibrated on recorded Azure gpt-4o-mini traffic.
    """
    count = _counter(encoding_name)
    role_tokens = count.role
    total = REPLY_PRIMER_TOKENS
    if isinstance(instructions, str) and instructions:
        total += TOKENS_PER_MESSAGE + role_tokens("system") + count(instructions)
    if any(isinstance(tool, dict) for tool in _as_list(tools)):
        total += RESPONSES_TOOLS_TOKENS
    if isinstance(input, str):
        return total + TOKENS_PER_MESSAGE + role_tokens("user") + count(input)
    for item in _as_list(input):
        total += _item_tokens(count, item)
    return total


# ----------------------------------------------------------------------------------------------------------
# Tool calls the model writes (completion side).

# A tool-call answer costs its recipient header, its arguments and this framing (the separator and the end of
# the message). Pinned by the recordings: two parallel calls bill 54 completion tokens in both chat and
# Responses (5 + 6 for " to=multi_tool_use.parallel" + 43 for the tool_uses document).
TOOL_CALL_OUTPUT_FRAMING_TOKENS = 5


def count_tool_calls_output(encoding_name: str, calls: list[tuple[str, str]]) -> int:
    """Completion tokens of an answer made of tool calls, given (name, arguments) for each call.

    One call is addressed to the function itself; several go through the `multi_tool_use.parallel` wrapper
    as one JSON document, the rendering `count_chat_prompt` uses when such an answer comes back as history.
    """
    count = _counter(encoding_name)
    if not calls:
        return 0
    if len(calls) == 1:
        name, arguments = calls[0]
        return TOOL_CALL_OUTPUT_FRAMING_TOKENS + count(f" to=functions.{name}") + count(arguments)
    return TOOL_CALL_OUTPUT_FRAMING_TOKENS + count(" to=multi_tool_use.parallel") + count(_parallel_tool_uses(calls))


def tool_call_output_overhead(encoding_name: str, name: str) -> int:
    """The tokens of a single tool call besides its arguments (to cut arguments at a token cap)."""
    return TOOL_CALL_OUTPUT_FRAMING_TOKENS + _counter(encoding_name)(f" to=functions.{name}")
