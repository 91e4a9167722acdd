"""Image tokens by the model's rule: a flat count per image on 2.5 models whatever the size, the
media resolution on Gemini 3 (the part's own, else generationConfig's, else the model's default),
the same in countTokens and in usageMetadata."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from emu_http import MODEL, PINNED_AS_OF, call_json, png_b64
from google import genai
from google.genai import types

from core.catalogue import catalogue
from emulator.launcher import EmulatorProcess

FLASH_2_5 = "gemini-2.5-flash"
# gemini-3.8-flash's figures: LOW 280, MEDIUM 560, HIGH 1120 (its default), ULTRA_HIGH 2240.
LOW, MEDIUM, HIGH, ULTRA_HIGH = 280, 560, 1120, 2240
SMALL = png_b64(640, 480)


def image_tokens(url: str, model: str, part: dict[str, Any], **generation: Any) -> int:
    """The IMAGE tokens of one image part, from countTokens and generateContent (which must agree)."""
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [part, {"text": "what is it?"}]}]}
    if generation:
        body["generationConfig"] = generation
    path = f"/v1beta/models/{model}"
    status, counted = call_json(url, path + ":countTokens", {"generateContentRequest": body})
    assert status == 200, counted
    status, reply = call_json(url, path + ":generateContent", body)
    assert status == 200, reply
    assert reply["usageMetadata"]["promptTokenCount"] == counted["totalTokens"]
    return {d["modality"]: d["tokenCount"] for d in counted["promptTokensDetails"]}["IMAGE"]


def image(data: str, level: Any = None) -> dict[str, Any]:
    part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": data}}
    if level is not None:
        part["mediaResolution"] = {"level": level}
    return part


def test_a_2_5_model_counts_an_8k_and_a_vga_image_the_same(start_emulator: Any) -> None:
    emu = start_emulator({"as_of": PINNED_AS_OF})
    huge = image_tokens(emu.url, FLASH_2_5, image(png_b64(7680, 4320)))
    assert huge == image_tokens(emu.url, FLASH_2_5, image(SMALL)) == 258
    low = catalogue().models[FLASH_2_5].images.tokens_for(640, 480, "MEDIA_RESOLUTION_LOW")
    assert image_tokens(emu.url, FLASH_2_5, image(SMALL, "MEDIA_RESOLUTION_LOW")) == low


def test_gemini_3_follows_the_media_resolution(emulator: EmulatorProcess) -> None:
    url = emulator.url
    assert image_tokens(url, MODEL, image(SMALL)) == HIGH
    assert image_tokens(url, MODEL, image(SMALL, "MEDIA_RESOLUTION_LOW")) == LOW
    assert image_tokens(url, MODEL, image(SMALL), mediaResolution="MEDIA_RESOLUTION_MEDIUM") == MEDIUM
    # The part's own resolution wins over generationConfig's.
    per_part = image(SMALL, "MEDIA_RESOLUTION_LOW")
    assert image_tokens(url, MODEL, per_part, mediaResolution="MEDIA_RESOLUTION_MEDIUM") == LOW
    # ULTRA_HIGH exists per part only; the legacy integer enum (4) and lower case are the same value.
    assert image_tokens(url, MODEL, image(SMALL, 4)) == ULTRA_HIGH
    assert image_tokens(url, MODEL, image(SMALL, "media_resolution_ultra_high")) == ULTRA_HIGH
    status, reply = call_json(
        url, f"/v1beta/models/{MODEL}:countTokens", {"contents": [{"parts": [image(SMALL, 9)]}]}
    )
    assert status == 400 and "mediaResolution.level" in reply["error"]["message"]


def test_the_same_image_costs_what_each_model_says(emulator: EmulatorProcess) -> None:
    assert image_tokens(emulator.url, "gemini-2.5-flash-lite", image(SMALL)) == 258
    assert image_tokens(emulator.url, MODEL, image(SMALL)) == HIGH


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=emulator.url))


def test_the_sdk_per_part_resolution_wins_over_the_config(client: genai.Client) -> None:
    data = base64.b64decode(SMALL)
    low = types.Part(
        inline_data=types.Blob(data=data, mime_type="image/png"),
        media_resolution=types.PartMediaResolution(level=types.PartMediaResolutionLevel.MEDIA_RESOLUTION_LOW),
    )
    plain = types.Part.from_bytes(data=data, mime_type="image/png")
    medium = types.GenerateContentConfig(media_resolution=types.MediaResolution.MEDIA_RESOLUTION_MEDIUM)
    counts = {}
    for name, part in (("low", low), ("plain", plain)):
        reply = client.models.generate_content(model=MODEL, contents=[part, "what is it?"], config=medium)
        details = reply.usage_metadata.prompt_tokens_details
        counts[name] = next(d.token_count for d in details if d.modality == types.MediaModality.IMAGE)
    assert counts == {"low": LOW, "plain": MEDIUM}
