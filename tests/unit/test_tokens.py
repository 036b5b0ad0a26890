"""Tokenizers load offline, and prompt counts equal what Azure OpenAI reported for the recorded traffic."""

from __future__ import annotations

import copy
import hashlib
import shutil
import socket
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators_app import tokens
from generators_app.tokens import count_chat_prompt, count_responses_input, count_text, get_encoding
from tests.support.reference import cassette_names, load_cassette

O200K = "o200k_base"

SECRET_TOOL_FUNCTION = {
    "name": "secret_retrieval_tool",
    "description": "A tool that requires a password to retrieve a secret.",
    "parameters": {
        "properties": {"password": {"title": "Password", "type": "string"}},
        "required": ["password"],
        "additionalProperties": False,
        "type": "object",
    },
    "strict": False,
}
CHAT_TOOLS = [{"type": "function", "function": SECRET_TOOL_FUNCTION}]
RESPONSES_TOOLS = [{"type": "function", **SECRET_TOOL_FUNCTION}]

CHAT_TOOL_MESSAGES = [
    {"role": "system", "content": "Use parallel tool calling."},
    {
        "role": "user",
        "content": "Please retrieve the secrets associated with each of these passwords: mellon,radiance",
    },
]
CHAT_FOLLOW_UP = [
    *CHAT_TOOL_MESSAGES,
    {
        "role": "assistant",
        "annotations": [],
        "tool_calls": [
            {
                "id": "call_Ogl4xrgYelrGfioRoTJoXCF0",
                "function": {"arguments": '{"password": "mellon"}', "name": "secret_retrieval_tool"},
                "type": "function",
            },
            {
                "id": "call_J8hE6f1cZ8sJIzw3FCswowSI",
                "function": {"arguments": '{"password": "radiance"}', "name": "secret_retrieval_tool"},
                "type": "function",
            },
        ],
    },
    {"role": "tool", "content": "Welcome to Moria!", "tool_call_id": "call_Ogl4xrgYelrGfioRoTJoXCF0"},
    {"role": "tool", "content": "Life before Death", "tool_call_id": "call_J8hE6f1cZ8sJIzw3FCswowSI"},
]

RESPONSES_TOOL_INPUT = [
    {"role": "developer", "content": "Use parallel tool calling."},
    {
        "content": "Please retrieve the secrets associated with each of these passwords: mellon,radiance",
        "role": "user",
    },
]


def _responses_follow_up(ids: tuple[str, str], last_output: str = "Life before Death") -> list[dict]:
    return [
        *RESPONSES_TOOL_INPUT,
        {"call_id": ids[0], "name": "secret_retrieval_tool", "arguments": '{"password":"mellon"}',
         "type": "function_call"},
        {"call_id": ids[1], "name": "secret_retrieval_tool", "arguments": '{"password":"radiance"}',
         "type": "function_call"},
        {"call_id": ids[0], "output": "Welcome to Moria!", "type": "function_call_output"},
        {"call_id": ids[1], "output": last_output, "type": "function_call_output"},
    ]


# --- ground truth: Azure OpenAI gpt-4o-mini (o200k_base) ------------------------------------------------


def test_chat_basic_prompt_matches_azure() -> None:
    assert count_chat_prompt(O200K, [{"role": "user", "content": "What is 4200 + 42?"}]) == 16


def test_chat_max_tokens_prompt_matches_azure() -> None:
    assert count_chat_prompt(O200K, [{"role": "user", "content": "List all U.S. states."}]) == 14


def test_chat_with_tools_matches_azure() -> None:
    assert count_chat_prompt(O200K, CHAT_TOOL_MESSAGES, CHAT_TOOLS) == 75


def test_chat_parallel_tool_call_follow_up_matches_azure() -> None:
    assert count_chat_prompt(O200K, CHAT_FOLLOW_UP, CHAT_TOOLS) == 149


def test_chat_follow_up_does_not_depend_on_ids_key_order_or_null_content() -> None:
    # The streaming recording sends the same turn with other call ids, `content: null` and another key order.
    messages = copy.deepcopy(CHAT_FOLLOW_UP)
    assistant = messages[2]
    del assistant["annotations"]
    assistant["content"] = None
    for index, call in enumerate(assistant["tool_calls"]):
        call["id"] = f"call_{index}"
        messages[3 + index]["tool_call_id"] = f"call_{index}"
    assert count_chat_prompt(O200K, messages, CHAT_TOOLS) == 149


def test_cookbook_tool_example_matches_openai() -> None:
    # The OpenAI cookbook's measured example ("How to count tokens with tiktoken", gpt-4o-mini: 101).
    tools = [{
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string",
                                 "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "description": "The unit of temperature to return",
                             "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }]
    messages = [
        {"role": "system",
         "content": "You are a helpful assistant that can answer to questions about the weather."},
        {"role": "user", "content": "What's the weather like in San Francisco?"},
    ]
    assert count_chat_prompt(O200K, messages, tools) == 101


def test_responses_basic_input_matches_azure() -> None:
    assert count_responses_input(O200K, [{"content": "What is 4200 + 42?", "role": "user"}]) == 16


def test_responses_string_input_counts_as_one_user_message() -> None:
    assert count_responses_input(O200K, "What is 4200 + 42?") == 16


def test_responses_with_tools_matches_azure() -> None:
    assert count_responses_input(O200K, RESPONSES_TOOL_INPUT, tools=RESPONSES_TOOLS) == 36


def test_responses_function_call_follow_up_matches_azure() -> None:
    # As recorded (tools-responses-sync.yaml): the second output is "Life before Death", without a full stop.
    items = _responses_follow_up(("call_ItUb0ok6QKqLmF3waT7Wi7Du", "call_kOPG7p73gWiOqGWGRpEAaVqP"))
    assert count_responses_input(O200K, items, tools=RESPONSES_TOOLS) == 137


def test_responses_follow_up_with_a_full_stop_costs_one_token_more() -> None:
    # "Life before Death." (with a full stop) is one token longer than the recorded output; the recorded
    # request, without it, is the one Azure answered with 137.
    items = _responses_follow_up(("call_a", "call_b"), last_output="Life before Death.")
    assert count_responses_input(O200K, items, tools=RESPONSES_TOOLS) == 138


def test_responses_follow_up_ignores_call_ids() -> None:
    # The streaming recording has call ids of other token lengths (17 + 15 vs 19 + 19) and the same 137.
    items = _responses_follow_up(("call_ZxvfEKOUAaNm2rIvu0CXWN1z", "call_hWZOQA612mDihMo08n25NxOp"))
    assert count_responses_input(O200K, items, tools=RESPONSES_TOOLS) == 137


def _recorded_usage(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        return body.get("usage") or (body.get("response") or {}).get("usage")
    for event in body or []:
        data = event.get("data")
        if isinstance(data, dict):
            usage = _recorded_usage(data)
            if usage:
                return usage
    return None


def _recorded_cases() -> list[tuple[str, dict[str, Any], int]]:
    cases = []
    for name in cassette_names():
        for interaction in load_cassette(name):
            usage = _recorded_usage(interaction.response.body)
            if not usage:
                continue
            reported = usage.get("prompt_tokens", usage.get("input_tokens"))
            if reported:  # 0 means the content filter stopped the request before the model saw it
                cases.append((name, interaction.request.body, reported))
    return cases


@pytest.mark.parametrize(("name", "body", "reported"), _recorded_cases())
def test_every_recorded_usage_is_reproduced(name: str, body: dict[str, Any], reported: int) -> None:
    if "messages" in body:
        counted = count_chat_prompt(O200K, body["messages"], body.get("tools"), body.get("tool_choice"))
    else:
        counted = count_responses_input(O200K, body["input"], body.get("instructions"), body.get("tools"))
    assert counted == reported, name


# --- rules beyond the recordings ------------------------------------------------------------------------


def test_name_costs_its_tokens_plus_one() -> None:
    plain = count_chat_prompt(O200K, [{"role": "user", "content": "hi"}])
    named = count_chat_prompt(O200K, [{"role": "user", "content": "hi", "name": "bob"}])
    assert named == plain + 1 + count_text(O200K, "bob")


def test_content_parts_sum_their_texts_and_image_estimates() -> None:
    text_only = count_chat_prompt(O200K, [{"role": "user", "content": "Describe this."}])
    parts = [
        {"type": "text", "text": "Describe this."},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    counted = count_chat_prompt(O200K, [{"role": "user", "content": parts}])
    assert counted == text_only + tokens.IMAGE_TOKENS_LOW + tokens.IMAGE_TOKENS_HIGH


def test_null_content_refusal_and_audio_parts() -> None:
    empty = count_chat_prompt(O200K, [{"role": "assistant", "content": None}])
    assert empty == tokens.TOKENS_PER_MESSAGE + 1 + tokens.REPLY_PRIMER_TOKENS
    refusal = [{"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot help with that."}]}]
    assert count_chat_prompt(O200K, refusal) == empty + count_text(O200K, "I cannot help with that.")
    one_second = "A" * (tokens.AUDIO_BYTES_PER_SECOND * 4 // 3)
    audio = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": one_second}}]}]
    assert count_chat_prompt(O200K, audio) == empty + tokens.AUDIO_TOKENS_PER_SECOND


def test_single_tool_call_round_trip_is_counted() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    ]
    base = count_chat_prompt(O200K, messages[:1])
    counted = count_chat_prompt(O200K, messages)
    # Call and answer each cost a message frame plus at least their name, arguments and content.
    floor = 2 * tokens.TOKENS_PER_MESSAGE + 2 * count_text(O200K, "weather")
    floor += count_text(O200K, '{"city":"Paris"}')
    assert counted >= base + floor + count_text(O200K, "Sunny")


def test_more_tools_and_properties_cost_more() -> None:
    messages = [{"role": "user", "content": "hi"}]
    one = count_chat_prompt(O200K, messages, CHAT_TOOLS)
    bigger = copy.deepcopy(CHAT_TOOLS)
    bigger[0]["function"]["parameters"]["properties"]["mode"] = {"type": "string", "enum": ["a", "b"]}
    assert count_chat_prompt(O200K, messages, bigger) > one
    assert count_chat_prompt(O200K, messages, CHAT_TOOLS * 2) > one
    assert count_chat_prompt(O200K, messages, []) == count_chat_prompt(O200K, messages)


def test_tool_choice_costs() -> None:
    messages = [{"role": "user", "content": "hi"}]
    auto = count_chat_prompt(O200K, messages, CHAT_TOOLS, "auto")
    assert count_chat_prompt(O200K, messages, CHAT_TOOLS, "none") == auto + tokens.TOOL_CHOICE_NONE_TOKENS
    forced = {"type": "function", "function": {"name": "secret_retrieval_tool"}}
    assert count_chat_prompt(O200K, messages, CHAT_TOOLS, forced) == (
        auto + tokens.TOOL_CHOICE_NAMED_TOKENS + count_text(O200K, "secret_retrieval_tool")
    )


def test_responses_instructions_and_text_parts() -> None:
    items = [{"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": "What is 4200 + 42?"}]}]
    assert count_responses_input(O200K, items) == 16
    with_instructions = count_responses_input(O200K, items, instructions="Be brief.")
    assert with_instructions == 16 + tokens.TOKENS_PER_MESSAGE + 1 + count_text(O200K, "Be brief.")


def test_count_text_treats_special_tokens_as_text() -> None:
    assert count_text(O200K, "a <|endoftext|> b") > 3
    assert count_text("cl100k_base", "<|endofprompt|>") > 1
    assert count_text(O200K, "") == 0


def test_lone_surrogates_do_not_raise() -> None:
    assert count_text(O200K, "bad \ud800 text") > 0
    assert count_chat_prompt(O200K, [{"role": "user", "content": "\udfff"}]) > 0


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_KEYS = [
    "role", "content", "type", "text", "name", "tool_calls", "function", "arguments", "tool_call_id",
    "image_url", "detail", "parameters", "properties", "enum", "output", "call_id", "input_audio", "data",
    "refusal", "description", "items", "function_call",
]
_json = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(_KEYS) | st.text(max_size=5),
        children,
        max_size=5,
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=_json, tools=_json, tool_choice=_json)
def test_chat_counting_never_raises_on_any_json(messages: Any, tools: Any, tool_choice: Any) -> None:
    assert count_chat_prompt(O200K, messages, tools, tool_choice) >= tokens.REPLY_PRIMER_TOKENS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=_json, instructions=_json, tools=_json)
def test_responses_counting_never_raises_on_any_json(items: Any, instructions: Any, tools: Any) -> None:
    assert count_responses_input(O200K, items, instructions, tools) >= tokens.REPLY_PRIMER_TOKENS


# --- loading the shipped rank files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", tokens.ENCODING_NAMES)
def test_encoding_parameters_match_tiktoken(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from tiktoken_ext import openai_public

    # The upstream constructor would fetch the ranks; give it none, we only compare the parameters.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
    upstream = openai_public.ENCODING_CONSTRUCTORS[name]()
    spec = tokens._SPECS[name]
    assert spec.pat_str == upstream["pat_str"]
    assert spec.special_tokens == upstream["special_tokens"]


@pytest.mark.parametrize("name", tokens.ENCODING_NAMES)
def test_shipped_rank_files_have_the_published_hashes(name: str) -> None:
    spec = tokens._SPECS[name]
    data = (tokens._TOKENIZER_DIR / spec.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.sha256


@pytest.mark.parametrize("name", tokens.ENCODING_NAMES)
def test_encodings_load_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path, name: str) -> None:
    read: list[str] = []
    real_read_file = tiktoken.load.read_file

    def local_only(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise AssertionError(f"tried to download {blobpath}")
        read.append(blobpath)
        return real_read_file(blobpath)

    def no_connect(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(tiktoken.load, "read_file", local_only)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))  # nothing cached to fall back on

    # `_build_encoding` is what the cached `get_encoding` calls; using it leaves the process cache intact.
    fresh = tokens._build_encoding(name)

    assert read == [str(tokens._TOKENIZER_DIR / tokens._SPECS[name].file_name)]
    sample = "Hello, world! <|endoftext|> 1234567 naïve café"
    assert fresh.encode_ordinary(sample) == get_encoding(name).encode_ordinary(sample)
    assert fresh.n_vocab == get_encoding(name).n_vocab


def test_corrupt_rank_file_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    spec = tokens._SPECS["cl100k_base"]
    shutil.copy(tokens._TOKENIZER_DIR / spec.file_name, tmp_path / spec.file_name)
    with open(tmp_path / spec.file_name, "ab") as handle:
        handle.write(b"IQ== 999999\n")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="Hash mismatch"):
        tokens._build_encoding("cl100k_base", directory=tmp_path)


def test_get_encoding_is_cached_and_rejects_unknown_names() -> None:
    assert get_encoding(O200K) is get_encoding(O200K)
    assert isinstance(get_encoding("cl100k_base"), tiktoken.Encoding)
    with pytest.raises(ValueError, match="Unknown encoding"):
        get_encoding("p50k_base")
