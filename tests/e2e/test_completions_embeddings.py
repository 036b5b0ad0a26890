"""Legacy completions, embeddings and the models list through the real server with the openai SDK."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest

from generators_app.tokens import count_text
from tests.support.reference import COMPLETION_RESPONSE, EMBEDDINGS_RESPONSE, validate_against_spec


def test_legacy_completion(azure_client: openai.AzureOpenAI) -> None:
    completion = azure_client.completions.create(
        model="gpt-35-turbo-instruct", prompt="Say this is a test", max_tokens=7
    )
    assert completion.object == "text_completion"
    assert completion.usage.prompt_tokens == count_text("cl100k_base", "Say this is a test")
    assert completion.usage.completion_tokens == 7
    assert count_text("cl100k_base", completion.choices[0].text) == 7
    assert completion.choices[0].finish_reason == "length"


def test_legacy_completion_defaults_to_16_tokens_and_validates(http, api_key: str) -> None:
    response = http.post(
        "/openai/deployments/gpt-35-turbo-instruct/completions?api-version=2024-10-21",
        json={"prompt": ["one", "two"], "n": 2}, headers={"api-key": api_key},
    )
    body = response.json()
    validate_against_spec(body, COMPLETION_RESPONSE)
    assert len(body["choices"]) == 4
    assert body["usage"]["completion_tokens"] == 4 * 16
    assert [r["prompt_index"] for r in body["prompt_filter_results"]] == [0, 1]


def test_legacy_completion_echo_and_stream(openai_client: openai.OpenAI) -> None:
    echoed = openai_client.completions.create(
        model="gpt-35-turbo-instruct", prompt="Once upon a time", max_tokens=5, echo=True
    )
    assert echoed.choices[0].text.startswith("Once upon a time")
    stream = openai_client.completions.create(
        model="gpt-35-turbo-instruct", prompt="Once upon a time", max_tokens=9, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(choice.text for chunk in chunks for choice in chunk.choices)
    assert count_text("cl100k_base", text) == 9
    assert chunks[-1].usage.completion_tokens == 9


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_embeddings_default_base64_decoded_by_the_sdk(azure_client: openai.AzureOpenAI) -> None:
    first = azure_client.embeddings.create(model="text-embedding-3-small", input="hello world")
    again = azure_client.embeddings.create(model="text-embedding-3-small", input="hello world")
    vector = first.data[0].embedding
    assert len(vector) == 1536
    assert abs(_norm(vector) - 1.0) < 1e-5
    assert vector == again.data[0].embedding
    assert first.usage.prompt_tokens == count_text("cl100k_base", "hello world")
    other = azure_client.embeddings.create(model="text-embedding-3-small", input="something else")
    assert other.data[0].embedding != vector


def test_embeddings_dimensions_and_batches(openai_client: openai.OpenAI) -> None:
    result = openai_client.embeddings.create(
        model="text-embedding-3-large", input=["a", "b", "c"], dimensions=256
    )
    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(item.embedding) == 256 for item in result.data)
    assert all(abs(_norm(item.embedding) - 1.0) < 1e-5 for item in result.data)
    full = openai_client.embeddings.create(model="text-embedding-3-large", input="a").data[0].embedding
    assert len(full) == 3072


def test_embeddings_float_format_and_token_input(http, api_key: str) -> None:
    headers = {"api-key": api_key}
    url = "/openai/deployments/text-embedding-ada-002/embeddings?api-version=2024-10-21"
    as_float = http.post(url, json={"input": "hello world"}, headers=headers).json()
    validate_against_spec(as_float, EMBEDDINGS_RESPONSE)
    as_b64 = http.post(url, json={"input": "hello world", "encoding_format": "base64"}, headers=headers).json()
    decoded = struct.unpack("<1536f", base64.b64decode(as_b64["data"][0]["embedding"]))
    assert list(decoded) == pytest.approx(as_float["data"][0]["embedding"], abs=1e-7)
    tokens = http.post(url, json={"input": [15339, 1917]}, headers=headers).json()  # "hello world"
    assert tokens["data"][0]["embedding"] == as_float["data"][0]["embedding"]
    assert tokens["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_dimensions_refused_for_ada(azure_client: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)
    assert "dimensions" in caught.value.message


@pytest.mark.parametrize("client_name", ["openai_client", "aoai_v1_client"])
def test_models_list(client_name: str, request: pytest.FixtureRequest) -> None:
    client: openai.OpenAI = request.getfixturevalue(client_name)
    ids = {model.id for model in client.models.list()}
    assert {"gpt-4o-mini", "gpt-35-turbo-instruct", "text-embedding-3-small"} <= ids
