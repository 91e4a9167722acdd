"""google-genai (the current SDK) against the emulator: the calls the suite's transports make."""

from __future__ import annotations

import base64
import json

import jsonschema
import pytest
from emu_http import LITE, MODEL, png_b64
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from core.catalogue import catalogue
from emulator.launcher import EmulatorProcess

FLASH = MODEL


def make_client(url: str, key: str = "test-key", headers: dict[str, str] | None = None) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, headers=headers))


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return make_client(emulator.url)


def test_generate_content_plain(client: genai.Client) -> None:
    reply = client.models.generate_content(model=FLASH, contents="Say something short.")
    assert reply.text
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    usage = reply.usage_metadata
    assert usage.prompt_token_count > 0
    assert usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + (
        usage.thoughts_token_count or 0
    )
    assert reply.model_version == FLASH
    assert reply.response_id


def test_generate_content_stream(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="Tell me a story."))
    assert len(chunks) >= 2
    # usageMetadata is cumulative in every chunk; finishReason only on the last one.
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert len({c.response_id for c in chunks}) == 1


def test_same_prompt_same_answer(client: genai.Client) -> None:
    first = client.models.generate_content(model=FLASH, contents="determinism please")
    second = client.models.generate_content(model=FLASH, contents="determinism please")
    assert first.text == second.text


def test_config_system_instruction_and_max_tokens(client: genai.Client) -> None:
    # Thinking off (a budget model), so all five tokens are the answer's.
    reply = client.models.generate_content(
        model=LITE,
        contents="A long answer please.",
        config=types.GenerateContentConfig(
            max_output_tokens=5,
            system_instruction="You are terse.",
            temperature=0.3,
            top_p=0.9,
            top_k=20,
            stop_sequences=["zzz"],
            thinking_config=types.ThinkingConfig(thinking_budget=0),
        ),
    )
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert reply.usage_metadata.candidates_token_count == 5
    assert not reply.usage_metadata.thoughts_token_count


def test_safety_settings_decide_blocking(client: genai.Client) -> None:
    post = "Moderate this post: [[unsafe:hate]]"
    blocked = client.models.generate_content(model=FLASH, contents=post)
    assert not blocked.candidates
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    relaxed = types.GenerateContentConfig(
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ]
    )
    answered = client.models.generate_content(model=FLASH, contents=post, config=relaxed)
    assert answered.text and answered.candidates[0].finish_reason == types.FinishReason.STOP
    stream = list(client.models.generate_content_stream(model=FLASH, contents=post))
    assert stream[-1].prompt_feedback.block_reason == types.BlockedReason.SAFETY


class Verdict(BaseModel):
    flagged: bool
    category: str
    confidence: float
    reasons: list[str]


def test_json_schema_output_validates_and_follows_markers(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=Verdict,
        safety_settings=[types.SafetySetting(category="HARM_CATEGORY_HARASSMENT", threshold="OFF")],
    )
    clean = client.models.generate_content(model=FLASH, contents="A nice post about cats.", config=config)
    unsafe = client.models.generate_content(
        model=FLASH, contents="A post [[unsafe:harassment]]", config=config
    )
    assert clean.parsed.flagged is False and unsafe.parsed.flagged is True
    json_schema = {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["safe", "unsafe"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        },
        "required": ["verdict", "score", "tags"],
        "additionalProperties": False,
    }
    reply = client.models.generate_content(
        model=FLASH,
        contents="Another clean post.",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=json_schema
        ),
    )
    value = json.loads(reply.text)
    jsonschema.validate(value, json_schema)
    assert value["verdict"] == "safe"


def test_image_input_and_count_tokens(client: genai.Client) -> None:
    image = types.Part.from_bytes(data=base64.b64decode(png_b64(800, 600)), mime_type="image/png")
    contents = [image, "What is in this image?"]
    counted = client.models.count_tokens(model=FLASH, contents=contents)
    reply = client.models.generate_content(model=FLASH, contents=contents)
    assert counted.total_tokens == reply.usage_metadata.prompt_token_count
    # Counted by the model's rule (Gemini 3: its default media resolution, whatever the size).
    image_tokens = [
        d.token_count for d in reply.usage_metadata.prompt_tokens_details if d.modality == "IMAGE"
    ]
    assert image_tokens == [catalogue().models[FLASH].images.tokens_for(800, 600)]


def test_model_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert f"models/{FLASH}" in names and f"models/{LITE}" in names
    model = client.models.get(model=LITE)
    assert model.input_token_limit > 0 and model.display_name == "Gemini 2.5 Flash-Lite"


def test_errors_400_403_404(emulator: EmulatorProcess, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-0-nope", contents="x")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model=FLASH, contents=[types.Part.from_bytes(data=b"junk", mime_type="image/png")]
        )
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    # google-genai refuses an empty api_key; an empty header reaches the server as "no key".
    # (Keep the client in a variable: a dropped Client closes its HTTP client while in use.)
    keyless = make_client(emulator.url, headers={"x-goog-api-key": ""})
    with pytest.raises(errors.ClientError) as caught:
        keyless.models.generate_content(model=FLASH, contents="x")
    assert caught.value.code == 403


def test_errors_429_500_503(start_emulator) -> None:
    # No latency and an unscaled 60 s window: the second call is inside it however slow the machine.
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict={"quotas": {FLASH: {"rpm": 1}}})
    client = make_client(emu.url)
    client.models.generate_content(model=FLASH, contents="first")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="second")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    kinds = {d["@type"].rsplit(".", 1)[-1] for d in caught.value.details["error"]["details"]}
    assert kinds == {"QuotaFailure", "Help", "RetryInfo"}
    for fault, code in (("server_500", 500), ("server_503", 503)):
        emu.set_faults({"reset": True, fault: 1.0})
        with pytest.raises(errors.ServerError) as caught:
            client.models.generate_content(model=LITE, contents="x")
        assert caught.value.code == code
        with pytest.raises(errors.ServerError):
            list(client.models.generate_content_stream(model=LITE, contents="x"))


def test_mid_stream_error_frame_raises(start_emulator) -> None:
    emu = start_emulator(config_dict={"faults": {"stream_error_frame": 1.0}})
    client = make_client(emu.url)
    received = []
    with pytest.raises(errors.APIError):
        for chunk in client.models.generate_content_stream(
            model=FLASH, contents="x", config=types.GenerateContentConfig(max_output_tokens=4000)
        ):
            received.append(chunk)
    assert received  # the error came after some chunks
