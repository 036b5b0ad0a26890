"""Chat completions through the real server, driven by the official openai SDK on all three surfaces."""

from __future__ import annotations

import openai
import pytest

from generators_app.tokens import count_text
from tests.support.reference import (
    CHAT_COMPLETION_CHUNK,
    CHAT_COMPLETION_RESPONSE,
    key_paths,
    load_cassette,
    parse_sse,
    union_key_paths,
    validate_against_spec,
)

QUESTION = [{"role": "user", "content": "What is 4200 + 42?"}]


def _count(text: str) -> int:
    return count_text("o200k_base", text)


def test_plain_chat_on_azure_matches_real_prompt_count(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.usage.prompt_tokens == 16  # what real AOAI says for this prompt
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert completion.usage.completion_tokens == _count(choice.message.content) > 0
    assert completion.usage.total_tokens == 16 + completion.usage.completion_tokens


@pytest.mark.parametrize("client_name", ["openai_client", "aoai_v1_client"])
def test_v1_surfaces_take_the_deployment_from_the_body(client_name: str, request: pytest.FixtureRequest) -> None:
    client: openai.OpenAI = request.getfixturevalue(client_name)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=5)
    assert completion.usage.prompt_tokens == 16
    assert completion.usage.completion_tokens == 5
    assert _count(completion.choices[0].message.content) == 5


def test_max_tokens_is_honoured_exactly(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "List all U.S. states."}], max_tokens=50
    )
    assert completion.usage.prompt_tokens == 14  # real AOAI's count
    assert completion.usage.completion_tokens == 50
    assert completion.choices[0].finish_reason == "length"
    assert _count(completion.choices[0].message.content) == 50


def test_max_completion_tokens_is_honoured_exactly(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4.1-mini", messages=QUESTION, max_completion_tokens=33
    )
    assert completion.usage.completion_tokens == 33
    assert completion.choices[0].finish_reason == "length"


def test_n_choices(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.chat.completions.create(model="gpt-4o", messages=QUESTION, n=2, max_tokens=12)
    assert [choice.index for choice in completion.choices] == [0, 1]
    assert completion.usage.completion_tokens == 24
    assert all(_count(choice.message.content) == 12 for choice in completion.choices)


def test_seed_makes_the_answer_deterministic(azure_client: openai.AzureOpenAI) -> None:
    def ask(seed: int) -> str:
        completion = azure_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, seed=seed)
        return completion.choices[0].message.content

    assert ask(7) == ask(7)
    assert len({ask(seed) for seed in range(1, 6)}) > 1


def test_aoai_headers_on_every_answer(azure_client: openai.AzureOpenAI) -> None:
    raw = azure_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    for header in ("x-request-id", "apim-request-id", "x-ms-region", "azureml-model-session"):
        assert raw.headers.get(header), header
    assert raw.headers["content-type"] == "application/json"


def test_answer_validates_against_spec_and_carries_every_recorded_key(azure_client: openai.AzureOpenAI) -> None:
    raw = azure_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=QUESTION)
    ours = raw.http_response.json()
    validate_against_spec(ours, CHAT_COMPLETION_RESPONSE)
    for cassette in ("basic-chat-sync", "max-tokens-chat-sync"):
        recorded = load_cassette(cassette)[0].response.body
        assert key_paths(recorded) <= key_paths(ours), key_paths(recorded) - key_paths(ours)
    assert list(ours) == list(load_cassette("basic-chat-sync")[0].response.body)  # AOAI's key order


def test_streaming_with_usage(azure_client: openai.AzureOpenAI) -> None:
    stream = azure_client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    ids = {chunk.id for chunk in chunks[1:]}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert len({chunk.created for chunk in chunks[1:]}) == 1
    assert chunks[1].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert usage.prompt_tokens == 16
    assert usage.completion_tokens == _count(text) > 0


def test_stream_framing_matches_the_recording(http, api_key: str) -> None:
    body = {"messages": QUESTION, "stream": True, "max_tokens": 8}
    response = http.post(
        "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        json=body, headers={"api-key": api_key},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.text.endswith("data: [DONE]\n\n")
    ours = [event["data"] for event in parse_sse(response.text)]
    recorded = [event["data"] for event in load_cassette("basic-chat-stream")[0].response.body]
    assert ours[-1] == recorded[-1] == "[DONE]"
    # prompt filter event, role event, 8 content events, finish event, [DONE]
    assert len(ours) == 1 + 1 + 8 + 1 + 1
    assert ours[0] == recorded[0]  # the prompt-filter event is identical
    for position in (1, 2, -2):  # role, first content, finish
        assert list(ours[position]) == list(recorded[position])
        assert key_paths(ours[position]) == key_paths(recorded[position])
    assert union_key_paths(recorded[1:-1]) <= union_key_paths(ours[1:-1])
    for chunk in ours[1:-1]:
        validate_against_spec(chunk, CHAT_COMPLETION_CHUNK)
    assert ours[-2]["choices"][0]["finish_reason"] == "length"


def test_streaming_n_choices_and_max_tokens(openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, n=2, max_tokens=6,
        stream_options={"include_usage": True},
    )
    texts = {0: "", 1: ""}
    usage = None
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
        usage = chunk.usage or usage
    assert usage.completion_tokens == 12
    assert all(_count(text) == 6 for text in texts.values())
