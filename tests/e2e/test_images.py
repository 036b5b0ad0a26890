"""Image generations through the real server with the openai SDK: url and b64_json answers, real PNGs of
the requested size, the links the simulator serves, and AOAI's 400s."""

from __future__ import annotations

import base64
import io
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from PIL import Image

from tests.support.reference import IMAGES_RESPONSE, validate_against_spec

IMAGES = "/openai/deployments/{deployment}/images/generations?api-version=2024-10-21"


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def test_dall_e_3_url_answer_links_to_a_png_of_the_requested_size(
    azure_client: openai.AzureOpenAI, base_url: str
) -> None:
    result = azure_client.images.generate(model="dall-e-3", prompt="a lighthouse in a storm", size="1024x1792",
                                          quality="hd", style="natural")
    (image,) = result.data
    assert image.b64_json is None
    assert image.url.startswith(f"{base_url}/openai/images/generated/")
    assert image.revised_prompt.startswith("a lighthouse in a storm. ")
    response = httpx.get(image.url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert _png(response.content).size == (1024, 1792)
    head = httpx.head(image.url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(response.content)


def test_image_answer_has_aoai_content_filter_fields_and_fits_the_spec(http: httpx.Client, api_key: str) -> None:
    response = http.post(IMAGES.format(deployment="dall-e-3"), json={"prompt": "a red fox"},
                         headers={"api-key": api_key})
    assert response.status_code == 200
    body = response.json()
    validate_against_spec(body, IMAGES_RESPONSE)
    (item,) = body["data"]
    assert set(item["content_filter_results"]) == {"hate", "self_harm", "sexual", "violence"}
    assert item["prompt_filter_results"]["profanity"] == {"filtered": False, "detected": False}
    assert "url" in item  # url is dall-e-3's default


def test_b64_json_answers_decode_to_pngs_of_the_requested_size(openai_client: openai.OpenAI) -> None:
    result = openai_client.images.generate(model="gpt-image-1", prompt="three pears on a table", n=2,
                                           size="1536x1024", quality="low")
    assert len(result.data) == 2
    images = [base64.b64decode(item.b64_json) for item in result.data]
    assert all(_png(data).size == (1536, 1024) for data in images)
    assert images[0] != images[1]
    assert result.usage.output_tokens == 2 * 400
    assert result.usage.input_tokens == result.usage.input_tokens_details.text_tokens > 0


def test_dall_e_3_b64_json_on_the_aoai_v1_surface(aoai_v1_client: openai.OpenAI) -> None:
    result = aoai_v1_client.images.generate(model="dall-e-3", prompt="a cat", response_format="b64_json",
                                            size="1792x1024")
    assert _png(base64.b64decode(result.data[0].b64_json)).size == (1792, 1024)


def test_same_prompt_same_picture_seed_changes_it(openai_client: openai.OpenAI) -> None:
    def picture(**extra: object) -> str:
        return openai_client.images.generate(model="dall-e-3", prompt="a quiet harbour", response_format="b64_json",
                                             **extra).data[0].b64_json

    first = picture()
    assert picture() == first
    assert picture(extra_body={"seed": 12}) != first


def test_tampered_or_unsigned_links_are_refused(azure_client: openai.AzureOpenAI) -> None:
    url = azure_client.images.generate(model="dall-e-3", prompt="a kite").data[0].url
    parts = urlsplit(url)
    unsigned = httpx.get(url.split("?")[0])
    assert unsigned.status_code == 403
    assert b"<Code>AuthenticationFailed</Code>" in unsigned.content
    forged_path = parts.path.replace("-1024x1024", "-1792x1024")
    forged = httpx.get(f"{parts.scheme}://{parts.netloc}{forged_path}?{parts.query}")
    assert forged.status_code == 403
    assert httpx.post(url).status_code == 405


@pytest.mark.parametrize(
    ("model", "kwargs", "param", "code"),
    [
        ("dall-e-3", {"size": "512x512"}, "size", "invalid_size"),
        ("dall-e-3", {"n": 2}, "n", "invalid_value"),
        ("dall-e-3", {"quality": "ultra"}, "quality", "invalid_value"),
        ("gpt-image-1", {"size": "1792x1024"}, "size", "invalid_size"),
        ("gpt-image-1", {"n": 11}, "n", "integer_above_max_value"),
        ("gpt-image-1", {"response_format": "url"}, "response_format", "unsupported_value"),
    ],
)
def test_unsupported_options_for_the_model_are_400(
    azure_client: openai.AzureOpenAI, model: str, kwargs: dict, param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client.images.generate(model=model, prompt="a boat", **kwargs)
    assert caught.value.status_code == 400
    assert (caught.value.param, caught.value.code) == (param, code)


def test_bad_image_bodies_are_400(http: httpx.Client, api_key: str) -> None:
    url = IMAGES.format(deployment="dall-e-3")
    headers = {"api-key": api_key}
    missing = http.post(url, json={"size": "1024x1024"}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_required_parameter"
    wrong_type = http.post(url, json={"prompt": "x", "n": "1"}, headers=headers)
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["code"] == "invalid_type"
    not_json = http.post(url, content=b"prompt=x", headers=headers)
    assert not_json.status_code == 400
    chat_model = http.post(IMAGES.format(deployment="gpt-4o-mini"), json={"prompt": "x"}, headers=headers)
    assert chat_model.status_code == 400 and chat_model.json()["error"]["code"] == "OperationNotSupported"
    image_model_for_chat = http.post("/openai/deployments/dall-e-3/chat/completions?api-version=2024-10-21",
                                     json={"messages": [{"role": "user", "content": "hi"}]}, headers=headers)
    assert image_model_for_chat.status_code == 400
    assert image_model_for_chat.json()["error"]["code"] == "OperationNotSupported"
