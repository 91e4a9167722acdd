"""The answer cache keys on the whole model id: two models whose ids share a long prefix
(gemini-2.5-flash / gemini-2.5-flash-lite, or ids that differ only after byte 16) never share an
answer, a thinking count or a modelVersion (issue 14)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emu_http import PINNED_AS_OF, call, call_json, sse_events, text_request

from emulator import content, protocol
from emulator.launcher import EmulatorProcess
from emulator.profiles import load_profile

FLASH = "gemini-2.5-flash"  # exactly 16 bytes: the old key cut every longer id to its first 16
LITE = "gemini-2.5-flash-lite"
SEED = 7
PINNED = {"as_of": PINNED_AS_OF}  # gemini-2.5-flash is served on that day


@pytest.fixture(scope="module")
def emulator_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shared `emulator` of this module serves the line-up of PINNED_AS_OF."""
    path = tmp_path_factory.mktemp("emu") / "pinned.json"
    path.write_text(json.dumps(PINNED))
    return {"time_scale": 0.01, "seed": SEED, "config": str(path)}


def expected_thoughts(request: dict[str, Any], model: str, config: dict[str, Any] | None = None) -> int:
    """The thinking count the emulator's answer for `model` has, computed here from the same seed."""
    body = protocol.parse_generate_request(json.dumps(request).encode())
    profile = load_profile("realistic", {**PINNED, **(config or {})}).models[model]
    return content.answer_for(body, model, profile, SEED).thoughts_tokens


def generate(base: str, model: str, request: dict[str, Any]) -> dict[str, Any]:
    status, reply = call_json(base, f"/v1beta/models/{model}:generateContent", request)
    assert status == 200, reply
    return reply


def stream_last(base: str, model: str, request: dict[str, Any]) -> dict[str, Any]:
    status, data, _ = call(base, f"/v1beta/models/{model}:streamGenerateContent?alt=sse", request)
    assert status == 200, data
    return sse_events(data)[-1]


def test_flash_and_flash_lite_get_their_own_answers(emulator: EmulatorProcess) -> None:
    request = text_request("one prompt for two models that share a prefix")
    want = {model: expected_thoughts(request, model) for model in (FLASH, LITE)}
    assert want[FLASH] > 0 and want[LITE] == 0, "Flash thinks by default, Flash-Lite does not"
    # Flash first, so the old cache held Flash's answer when Flash-Lite asked; then back again.
    for model in (FLASH, LITE, FLASH, LITE):
        reply = generate(emulator.url, model, request)
        assert reply["modelVersion"] == model
        assert reply["usageMetadata"].get("thoughtsTokenCount", 0) == want[model], model


def test_streams_of_flash_and_flash_lite_get_their_own_frames(emulator: EmulatorProcess) -> None:
    request = text_request("one streamed prompt for two models")
    want = {model: expected_thoughts(request, model) for model in (FLASH, LITE)}
    for model in (FLASH, LITE, FLASH):
        last = stream_last(emulator.url, model, request)
        assert last["modelVersion"] == model
        assert last["usageMetadata"].get("thoughtsTokenCount", 0) == want[model], model


def test_ids_that_differ_only_after_byte_16_are_apart(start_emulator: Any) -> None:
    # Two custom models, equal in their first 16 bytes; only the first one thinks.
    first, second = "custom-model-0123-thinks", "custom-model-0123-plain"
    assert first.encode()[:16] == second.encode()[:16]
    config = {
        "models": {
            first: {"thinking": True, "thoughts_tokens_median": 200},
            second: {"thinking": False},
        }
    }
    emu = start_emulator({**PINNED, **config}, seed=SEED)
    request = text_request("same body, two custom models")
    want = {model: expected_thoughts(request, model, config) for model in (first, second)}
    assert want[first] > 0 and want[second] == 0
    for model in (first, second, first):
        reply = generate(emu.url, model, request)
        assert reply["modelVersion"] == model
        assert reply["usageMetadata"].get("thoughtsTokenCount", 0) == want[model], model
