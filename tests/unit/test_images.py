"""Images: real PNGs (decoded by Pillow), deterministic naming, signed links, and AOAI's 400s per model."""

from __future__ import annotations

import base64
import io
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from PIL import Image

from generators_app.catalogue import get_model
from generators_app.errors import ApiError
from generators_app.generation.images import (
    ImageLinkError,
    ImageName,
    base_url_from_headers,
    image_url,
    public_base_url,
    verify_image_link,
)
from generators_app.generation.png import draw_png, png_size
from generators_app.media_requests import images_body, plan_images

DALL_E_3 = get_model("dall-e-3")
GPT_IMAGE_1 = get_model("gpt-image-1")


@pytest.mark.parametrize(("width", "height"), [(1024, 1024), (1792, 1024), (1024, 1792), (1, 1), (3, 700)])
def test_png_decodes_at_the_requested_size(width: int, height: int) -> None:
    data = draw_png(11, width, height)
    image = Image.open(io.BytesIO(data))
    image.verify()  # checks the chunk CRCs
    image = Image.open(io.BytesIO(data))
    image.load()  # inflates every scanline
    assert image.size == (width, height) == png_size(data)
    assert image.mode == "RGB"


def test_transparent_png_has_a_transparent_background_and_opaque_shapes() -> None:
    image = Image.open(io.BytesIO(draw_png(5, 400, 300, transparent=True)))
    assert image.mode == "RGBA"
    alphas = {alpha for _, alpha in image.getchannel("A").getcolors()}
    assert alphas == {0, 255}


def test_png_is_deterministic_per_seed_and_size() -> None:
    assert draw_png(7, 256, 128) == draw_png(7, 256, 128)
    assert draw_png(7, 256, 128) != draw_png(8, 256, 128)
    pixels = Image.open(io.BytesIO(draw_png(7, 256, 128))).getcolors(maxcolors=100_000)
    assert len(pixels) > 3  # a picture, not a flat colour


def test_image_links_verify_and_expire() -> None:
    name = ImageName(0x1234, 1024, 1024)
    token = public_base_url.set("https://sim.example")
    try:
        url = image_url(name, now=1_000_000)
    finally:
        public_base_url.reset(token)
    parts = urlsplit(url)
    assert url.startswith("https://sim.example/openai/images/generated/0000000000001234-1024x1024.png?")
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    name_text = parts.path.rsplit("/", 1)[1].removesuffix(".png")
    assert verify_image_link(name_text, query["se"], query["sig"], now=1_000_001) == name
    with pytest.raises(ImageLinkError) as expired:
        verify_image_link(name_text, query["se"], query["sig"], now=1_000_000 + 10 ** 7)
    assert expired.value.status == 403 and b"expiry" in expired.value.xml()
    for tampered in ("0000000000001235-1024x1024", "0000000000001234-1792x1024"):
        with pytest.raises(ImageLinkError) as forged:
            verify_image_link(tampered, query["se"], query["sig"], now=1_000_001)
        assert forged.value.status == 403
    with pytest.raises(ImageLinkError) as unsigned:
        verify_image_link(name_text, None, None)
    assert unsigned.value.status == 403
    with pytest.raises(ImageLinkError) as too_big:
        verify_image_link("0000000000001234-9999x9999", query["se"], query["sig"])
    assert too_big.value.status == 404


def test_base_url_from_the_request_headers(settings) -> None:
    assert base_url_from_headers([(b"host", b"127.0.0.1:8000")]) == "http://127.0.0.1:8000"
    forwarded = [(b"host", b"10.0.0.5"), (b"x-forwarded-host", b"sim.example"), (b"x-forwarded-proto", b"https")]
    assert base_url_from_headers(forwarded) == "https://sim.example"
    settings.SIMULATOR_PUBLIC_URL = "https://public.example/"
    assert base_url_from_headers(forwarded) == "https://public.example"


def test_dall_e_3_plan_and_body() -> None:
    plan = plan_images({"prompt": "a lighthouse at dusk", "size": "1792x1024", "response_format": "b64_json"},
                       DALL_E_3)
    body = orjson.loads(images_body(plan))
    (item,) = body["data"]
    assert Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))).size == (1792, 1024)
    assert item["revised_prompt"].startswith("a lighthouse at dusk. ")
    assert item["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
    assert item["prompt_filter_results"]["profanity"] == {"filtered": False, "detected": False}
    assert "usage" not in body
    assert plan.prompt_tokens == 5


def test_same_prompt_same_images_seed_and_index_vary_them() -> None:
    first = plan_images({"prompt": "a cat", "n": 3}, GPT_IMAGE_1)
    again = plan_images({"prompt": "a cat", "n": 3}, GPT_IMAGE_1)
    seeded = plan_images({"prompt": "a cat", "n": 3, "seed": 7}, GPT_IMAGE_1)
    assert first.names == again.names
    assert len(set(first.names)) == 3
    assert set(seeded.names).isdisjoint(first.names)


def test_gpt_image_1_usage_and_defaults() -> None:
    plan = plan_images({"prompt": "a cat", "n": 2, "size": "1024x1536", "quality": "high"}, GPT_IMAGE_1)
    body = orjson.loads(images_body(plan))
    assert body["usage"]["output_tokens"] == 2 * 6240
    assert body["usage"]["input_tokens"] == plan.prompt_tokens
    assert (body["size"], body["quality"], body["output_format"], body["background"]) == (
        "1024x1536", "high", "png", "opaque")
    assert all("revised_prompt" not in item and "b64_json" in item for item in body["data"])
    auto = plan_images({"prompt": "a cat", "size": "auto", "background": "transparent"}, GPT_IMAGE_1)
    assert (auto.names[0].width, auto.names[0].height, auto.names[0].transparent) == (1024, 1024, True)


@pytest.mark.parametrize(
    ("model", "payload", "param", "code"),
    [
        (DALL_E_3, {}, "prompt", "missing_required_parameter"),
        (DALL_E_3, {"prompt": ""}, "prompt", "empty_string"),
        (DALL_E_3, {"prompt": 42}, "prompt", "invalid_type"),
        (DALL_E_3, {"prompt": "x" * 4001}, "prompt", "string_above_max_length"),
        (DALL_E_3, {"prompt": "x", "size": "512x512"}, "size", "invalid_size"),
        (DALL_E_3, {"prompt": "x", "size": "1536x1024"}, "size", "invalid_size"),
        (DALL_E_3, {"prompt": "x", "n": 2}, "n", "invalid_value"),
        (DALL_E_3, {"prompt": "x", "n": 0}, "n", "integer_below_min_value"),
        (DALL_E_3, {"prompt": "x", "quality": "high"}, "quality", "invalid_value"),
        (DALL_E_3, {"prompt": "x", "style": "cartoon"}, "style", "invalid_value"),
        (DALL_E_3, {"prompt": "x", "response_format": "png"}, "response_format", "invalid_value"),
        (DALL_E_3, {"prompt": "x", "background": "transparent"}, "background", "unknown_parameter"),
        (GPT_IMAGE_1, {"prompt": "x", "size": "1792x1024"}, "size", "invalid_size"),
        (GPT_IMAGE_1, {"prompt": "x", "n": 11}, "n", "integer_above_max_value"),
        (GPT_IMAGE_1, {"prompt": "x", "style": "vivid"}, "style", "unknown_parameter"),
        (GPT_IMAGE_1, {"prompt": "x", "quality": "hd"}, "quality", "invalid_value"),
        (GPT_IMAGE_1, {"prompt": "x", "response_format": "url"}, "response_format", "unsupported_value"),
        (GPT_IMAGE_1, {"prompt": "x", "output_format": "jpeg"}, "output_format", "unsupported_value"),
        (GPT_IMAGE_1, {"prompt": "x", "stream": True}, "stream", "unsupported_value"),
    ],
)
def test_invalid_image_requests_are_400(model, payload: dict, param: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        plan_images(payload, model)
    error = caught.value.body["error"]
    assert caught.value.status == 400
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_dall_e_3_error_messages_are_aoai_s() -> None:
    with pytest.raises(ApiError) as caught:
        plan_images({"prompt": "x", "size": "256x256"}, DALL_E_3)
    assert caught.value.body["error"]["message"] == "The size is not supported by this model."
    with pytest.raises(ApiError) as caught:
        plan_images({"prompt": "x", "quality": "ultra"}, DALL_E_3)
    assert caught.value.body["error"]["message"] == (
        "Invalid value: 'ultra'. Supported values are: 'standard' and 'hd'.")


def test_a_link_alone_redraws_the_same_image_on_any_process() -> None:
    """What a worker that never saw the request does: parse the link's name and draw (no shared state)."""
    request = {"prompt": "a windmill", "size": "1024x1792"}
    as_b64 = orjson.loads(images_body(plan_images({**request, "response_format": "b64_json"}, DALL_E_3)))
    as_url = orjson.loads(images_body(plan_images(request, DALL_E_3)))
    parts = urlsplit(as_url["data"][0]["url"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    name = verify_image_link(parts.path.rsplit("/", 1)[1].removesuffix(".png"), query["se"], query["sig"])
    assert draw_png(name.seed, name.width, name.height) == base64.b64decode(as_b64["data"][0]["b64_json"])
