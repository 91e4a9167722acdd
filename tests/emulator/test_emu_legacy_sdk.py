"""google-generativeai (the legacy SDK, REST transport) against the emulator.

It sends camelCase with integer enums, streams without alt=sse (one JSON array), and raises
google.api_core exceptions. It retries 503 by itself for up to 600 s, so error calls here pass
request_options={"retry": None, "timeout": ...} to stay bounded.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from typing import Any

import jsonschema
import pytest
from emu_http import LITE, png_b64

from core.catalogue import default_model
from emulator.launcher import EmulatorProcess


@pytest.fixture(scope="module")
def genai() -> Any:
    """The SDK, imported when a test runs, not when pytest collects: importing it (it builds ssl
    contexts) before Locust's gevent monkey-patching breaks the other areas' test modules that
    pytest collects after this one (RecursionError in ssl)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import google.generativeai

    return google.generativeai


# This SDK cannot send a thinkingConfig, and a thinking model spends a small maxOutputTokens on
# thinking (an empty answer, where this SDK's .text raises): a model that does not think unasked.
FLASH = LITE
NO_RETRY = {"retry": None, "timeout": 10}


def configure(genai: Any, url: str, key: str = "legacy-key") -> None:
    genai.configure(api_key=key, transport="rest", client_options={"api_endpoint": url})


@pytest.fixture()
def legacy(emulator: EmulatorProcess, genai: Any) -> EmulatorProcess:
    configure(genai, emulator.url)
    return emulator


def test_plain_generation_with_config(legacy: EmulatorProcess, genai: Any) -> None:
    model = genai.GenerativeModel(
        FLASH,
        system_instruction="Be brief.",
        safety_settings={"HARASSMENT": "BLOCK_NONE", "HATE": "BLOCK_LOW_AND_ABOVE"},
        generation_config={"max_output_tokens": 6, "temperature": 0.2, "top_k": 5},
    )
    reply = model.generate_content("Hello there", request_options=NO_RETRY)
    assert reply.text
    assert reply.candidates[0].finish_reason.name == "MAX_TOKENS"
    assert reply.usage_metadata.candidates_token_count == 6


def test_streaming_is_a_json_array(legacy: EmulatorProcess, genai: Any) -> None:
    model = genai.GenerativeModel(FLASH, generation_config={"max_output_tokens": 100})
    chunks = list(model.generate_content("Tell a story", stream=True, request_options=NO_RETRY))
    assert len(chunks) > 1
    assert chunks[-1].candidates[0].finish_reason.name in ("STOP", "MAX_TOKENS")
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts)


def test_integer_enum_safety_settings_block(legacy: EmulatorProcess, genai: Any) -> None:
    model = genai.GenerativeModel(FLASH)
    blocked = model.generate_content("[[unsafe:sexual]]", request_options=NO_RETRY)
    assert blocked.prompt_feedback.block_reason.name == "SAFETY"
    allowed = model.generate_content(
        "[[unsafe:sexual]]", safety_settings={"SEXUALLY_EXPLICIT": "BLOCK_NONE"}, request_options=NO_RETRY
    )
    assert allowed.text


def test_json_schema_images_count_tokens_and_models(legacy: EmulatorProcess, genai: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["ok", "violation"]},
            "violation_categories": {
                "type": "array",
                "items": {"type": "string", "enum": ["hate", "harassment"]},
            },
        },
        "required": ["label"],
    }
    model = genai.GenerativeModel(
        FLASH, generation_config={"response_mime_type": "application/json", "response_schema": schema}
    )
    reply = model.generate_content(
        "[[unsafe:hate]]", safety_settings={"HATE": "BLOCK_NONE"}, request_options=NO_RETRY
    )
    value = json.loads(reply.text)
    jsonschema.validate(value, schema)
    assert value["label"] == "violation" and value.get("violation_categories", ["hate"]) == ["hate"]

    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(png_b64(200, 200))))
    counted = genai.GenerativeModel(FLASH).count_tokens([image, "what is it"])
    answered = genai.GenerativeModel(FLASH).generate_content([image, "what is it"], request_options=NO_RETRY)
    assert counted.total_tokens == answered.usage_metadata.prompt_token_count
    assert counted.total_tokens >= 258

    names = [m.name for m in genai.list_models()]
    assert f"models/{LITE}" in names
    assert genai.get_model(f"models/{LITE}").input_token_limit > 0


def test_errors_400_403_404(legacy: EmulatorProcess, genai: Any) -> None:
    from google.api_core import exceptions as core
    from google.auth.credentials import AnonymousCredentials

    with pytest.raises(core.NotFound):
        genai.GenerativeModel("gemini-0-nope").generate_content("x", request_options=NO_RETRY)
    with pytest.raises(core.BadRequest) as caught:
        genai.GenerativeModel(FLASH).generate_content(
            [{"mime_type": "image/png", "data": b"not an image"}], request_options=NO_RETRY
        )
    assert caught.value.code == 400
    # No key at all. Never configure an empty api_key: the SDK then looks for Application Default
    # Credentials, which probes the cloud metadata server over the network. Anonymous credentials
    # send no key and probe nothing.
    genai.configure(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": legacy.url}
    )
    try:
        with pytest.raises(core.Forbidden) as caught:
            genai.GenerativeModel(FLASH).generate_content("x", request_options=NO_RETRY)
        assert caught.value.code == 403
    finally:
        configure(genai, legacy.url)


def test_errors_429_500_503(start_emulator, genai: Any) -> None:
    from google.api_core import exceptions as core

    # No latency and an unscaled 60 s window: the second call is inside it however slow the machine.
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict={"quotas": {FLASH: {"rpm": 1}}})
    configure(genai, emu.url)
    model = genai.GenerativeModel(FLASH)
    model.generate_content("first", request_options=NO_RETRY)
    with pytest.raises(core.TooManyRequests) as caught:
        model.generate_content("second", request_options=NO_RETRY)
    assert caught.value.code == 429
    pro = genai.GenerativeModel(default_model())
    for fault, exc_class in (
        ("server_500", core.InternalServerError),
        ("server_503", core.ServiceUnavailable),
    ):
        emu.set_faults({"reset": True, fault: 1.0})
        with pytest.raises(exc_class) as caught:
            pro.generate_content("x", request_options=NO_RETRY)
        assert caught.value.code == int(fault[-3:])
