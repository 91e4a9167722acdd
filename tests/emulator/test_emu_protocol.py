"""Wire-level checks: routes, casings, enums, errors with google.rpc details, stream formats."""

from __future__ import annotations

import base64
import json

import pytest
from emu_http import FLASH, LITE, MODEL, call, call_json, png_b64, sse_events, text_request

from core.catalogue import catalogue
from emulator.launcher import EmulatorProcess


def test_both_versions_and_query_key(emulator: EmulatorProcess) -> None:
    for version in ("v1", "v1beta"):
        status, body = call_json(
            emulator.url,
            f"/{version}/models/{MODEL}:generateContent?key=abc",
            text_request("hi"),
            key=None,
        )
        assert status == 200 and body["candidates"][0]["content"]["parts"][0]["text"]
        assert set(body) == {"candidates", "usageMetadata", "modelVersion", "responseId"}


def test_snake_case_mixed_case_and_integer_enums_are_the_same_request(emulator: EmulatorProcess) -> None:
    camel = {
        "contents": [{"role": "user", "parts": [{"text": "same prompt"}]}],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {
            "maxOutputTokens": 3000,
            "topK": 3.0,
            "thinkingConfig": {"includeThoughts": False},
        },
    }
    snake = {
        "contents": [{"role": "user", "parts": [{"text": "same prompt"}]}],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "safety_settings": [{"category": 7, "threshold": 4}],
        "generation_config": {
            "max_output_tokens": 3000,
            "top_k": 3,
            "thinking_config": {"include_thoughts": False},
        },
    }
    answers = []
    for body in (camel, snake):
        status, reply = call_json(emulator.url, FLASH + ":generateContent", body)
        assert status == 200, reply
        answers.append(reply["candidates"][0]["content"]["parts"][0]["text"])
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"parts": [{"text": "x"}]}], "bogusField": 1}, 'Unknown name "bogusField"'),
        ({"contents": [{"parts": [{"text": "x", "nope": 2}]}]}, 'Unknown name "nope"'),
        (
            {"contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": "!!notbase64!!"}}]}]},
            "Base64 decoding failed",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}}]}]},
            "Unable to process input image",
        ),
        ({"contents": [{"parts": [{"text": "x"}]}], "safetySettings": [{"category": 99}]}, "Invalid value"),
    ],
)
def test_bad_requests_are_400_invalid_argument(emulator: EmulatorProcess, body: dict, message: str) -> None:
    status, reply = call_json(emulator.url, FLASH + ":generateContent", body)
    assert status == 400
    assert reply["error"]["status"] == "INVALID_ARGUMENT" and reply["error"]["code"] == 400
    assert message in reply["error"]["message"]


def test_malformed_json_is_400(emulator: EmulatorProcess) -> None:
    status, data, _ = call(emulator.url, FLASH + ":generateContent", raw=b'{"contents": [')
    assert status == 400 and json.loads(data)["error"]["status"] == "INVALID_ARGUMENT"


def test_payload_over_limit(start_emulator) -> None:
    emu = start_emulator(config_dict={"max_request_bytes": 1_000_000})
    status, reply = call_json(emu.url, FLASH + ":generateContent", text_request("x" * 1_000_001))
    assert status == 400 and reply["error"]["status"] == "INVALID_ARGUMENT"
    assert reply["error"]["message"] == "Request payload size exceeds the limit: 1000000 bytes."
    status, _ = call_json(emu.url, FLASH + ":countTokens", text_request("x" * 900_000))
    assert status == 200


def test_keys_missing_invalid_and_unknown_model(start_emulator, tmp_path) -> None:
    config = tmp_path / "emu.json"
    config.write_text(json.dumps({"accepted_keys": ["good-key"]}))
    emu = start_emulator(config=str(config))
    status, reply = call_json(emu.url, FLASH + ":generateContent", text_request("x"), key=None)
    assert status == 403 and reply["error"]["status"] == "PERMISSION_DENIED"
    status, reply = call_json(emu.url, FLASH + ":generateContent", text_request("x"), key="bad-key")
    assert status == 400 and reply["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert "bad-key" not in json.dumps(reply)
    status, reply = call_json(
        emu.url, "/v1beta/models/gemini-9:generateContent", text_request("x"), key="good-key"
    )
    assert status == 404 and reply["error"]["status"] == "NOT_FOUND"
    assert reply["error"]["message"].startswith("models/gemini-9 is not found for API version v1beta")
    status, _ = call_json(emu.url, FLASH + ":generateContent", text_request("x"), key="good-key")
    assert status == 200


def test_sse_stream_frames(emulator: EmulatorProcess) -> None:
    body = text_request("stream me", generationConfig={"maxOutputTokens": 4000})
    status, data, headers = call(emulator.url, FLASH + ":streamGenerateContent?alt=sse", body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(data)
    assert len(events) > 1
    totals = [e["usageMetadata"]["candidatesTokenCount"] for e in events]
    assert totals == sorted(totals)
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])
    assert events[-1]["candidates"][0]["finishReason"] in ("STOP", "MAX_TOKENS")
    assert {e["responseId"] for e in events} == {events[0]["responseId"]}
    assert all(e["modelVersion"] == MODEL for e in events)


def test_stream_without_sse_is_one_json_array(emulator: EmulatorProcess) -> None:
    body = text_request("array stream", generationConfig={"maxOutputTokens": 4000})
    status, data, headers = call(emulator.url, FLASH + ":streamGenerateContent", body)
    assert status == 200 and data.startswith(b"[{") and data.endswith(b"}\n]")
    items = json.loads(data)
    assert len(items) > 1 and items[-1]["candidates"][0]["finishReason"]


def test_count_tokens_matches_usage_and_images_follow_the_model(emulator: EmulatorProcess) -> None:
    parts = [{"text": "describe these images please"}]
    parts.append({"inlineData": {"mimeType": "image/png", "data": png_b64(300, 200)}})
    parts.append({"inline_data": {"mime_type": "image/png", "data": png_b64(1024, 768)}})
    body = {"contents": [{"role": "user", "parts": parts}]}
    status, counted = call_json(emulator.url, FLASH + ":countTokens", body)
    assert status == 200
    image_tokens = {d["modality"]: d["tokenCount"] for d in counted["promptTokensDetails"]}["IMAGE"]
    rule = catalogue().models[MODEL].images
    assert image_tokens == rule.tokens_for(300, 200) + rule.tokens_for(1024, 768)
    status, reply = call_json(emulator.url, FLASH + ":generateContent", body)
    assert reply["usageMetadata"]["promptTokenCount"] == counted["totalTokens"]
    status, wrapped = call_json(emulator.url, FLASH + ":countTokens", {"generateContentRequest": body})
    assert wrapped["totalTokens"] == counted["totalTokens"]


def test_list_and_get_models(emulator: EmulatorProcess) -> None:
    status, listed = call_json(emulator.url, "/v1beta/models?pageSize=2")
    assert status == 200 and len(listed["models"]) == 2 and listed["nextPageToken"]
    status, rest = call_json(emulator.url, f"/v1beta/models?pageSize=50&pageToken={listed['nextPageToken']}")
    names = [m["name"] for m in listed["models"] + rest["models"]]
    assert {f"models/{MODEL}", f"models/{LITE}"} <= set(names)
    status, model = call_json(emulator.url, f"/v1/models/{MODEL}")
    entry = catalogue().models[MODEL]
    assert status == 200 and model["name"] == f"models/{MODEL}"
    assert model["displayName"] == entry.display_name and model["thinking"] is True
    assert (model["inputTokenLimit"], model["outputTokenLimit"]) == (
        entry.input_token_limit,
        entry.output_token_limit,
    )
    status, _ = call_json(emulator.url, "/v1/models/nope")
    assert status == 404


def test_unsafe_marker_blocks_by_threshold(emulator: EmulatorProcess) -> None:
    prompt = "post: you are awful [[unsafe:harassment]]"
    status, blocked = call_json(emulator.url, FLASH + ":generateContent", text_request(prompt))
    assert status == 200 and "candidates" not in blocked
    assert blocked["promptFeedback"]["blockReason"] == "SAFETY"
    allowed = text_request(
        prompt, safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    )
    status, answered = call_json(emulator.url, FLASH + ":generateContent", allowed)
    assert answered["candidates"][0]["finishReason"] == "STOP"
    status, cut = call_json(
        emulator.url, FLASH + ":generateContent", text_request("[[unsafe-output:dangerous]]")
    )
    assert cut["candidates"][0]["finishReason"] == "SAFETY"


def test_thoughts_and_include_thoughts(emulator: EmulatorProcess) -> None:
    body = text_request("think", generationConfig={"thinkingConfig": {"includeThoughts": True}})
    status, reply = call_json(emulator.url, FLASH + ":generateContent", body)
    parts = reply["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and "thought" not in parts[1]
    usage = reply["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    assert (
        usage["totalTokenCount"]
        == usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    # A budget model turns thinking off with a budget of 0 (2.5 Flash-Lite thinks only with one).
    lite = f"/v1beta/models/{LITE}:generateContent"
    on = text_request("think", generationConfig={"thinkingConfig": {"thinkingBudget": 1024}})
    assert call_json(emulator.url, lite, on)[1]["usageMetadata"]["thoughtsTokenCount"] > 0
    off = text_request("think", generationConfig={"thinkingConfig": {"thinkingBudget": 0}})
    assert "thoughtsTokenCount" not in call_json(emulator.url, lite, off)[1]["usageMetadata"]


def test_stats_count_routes_models_statuses_tokens(start_emulator) -> None:
    emu = start_emulator()
    call(emu.url, FLASH + ":generateContent", text_request("a"))
    call(emu.url, FLASH + ":generateContent", text_request("a"), key=None)
    call(emu.url, f"/v1beta/models/{LITE}:streamGenerateContent?alt=sse", text_request("b"))
    stats = emu.stats()
    assert stats["requests_total"] == 3
    assert stats["requests_by_route"] == {
        "v1beta/models.generateContent": 2,
        "v1beta/models.streamGenerateContent": 1,
    }
    assert stats["requests_by_model"] == {MODEL: 2, LITE: 1}
    assert stats["responses_by_status"] == {"200": 2, "403": 1}
    assert stats["tokens_served"]["output"] > 0 and stats["chunks_streamed"] >= 1
    assert "test-key" not in json.dumps(stats)


def test_base64_urlsafe_accepted(emulator: EmulatorProcess) -> None:
    data = base64.b64decode(png_b64(10, 10))
    urlsafe = base64.urlsafe_b64encode(data).decode()
    body = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": urlsafe}}]}]}
    assert call_json(emulator.url, FLASH + ":countTokens", body)[0] == 200
