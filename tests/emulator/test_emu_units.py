"""In-process unit checks of the emulator's pieces: schema filling, moderation, tokens, quotas,
capacity slots, the latency plan and config loading."""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import time
from typing import Any

import jsonschema
import pytest
from emu_http import MODEL
from PIL import Image

from core.catalogue import Images
from emulator import jsonfill, moderation, tokens
from emulator.errors import ApiError
from emulator.latency import Clock, Slots, plan_for
from emulator.profiles import ConfigError, ModelProfile, load_profile
from emulator.protocol import GENERATE_CONTENT_REQUEST, normalise
from emulator.quotas import Quotas
from emulator.stats import Stats
from tests.waiting import ManualClock

SCHEMAS = [
    {
        "type": "object",
        "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 9}},
        "required": ["a"],
    },
    {"type": "array", "items": {"type": "string", "format": "date-time"}, "minItems": 2, "maxItems": 2},
    {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"$ref": "#/$defs/item"},
                "minItems": 1,
            },
            "note": {"type": ["string", "null"], "minLength": 12, "maxLength": 20},
            "kind": {"const": "fixed"},
            "choice": {
                "anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}]
            },
        },
        "required": ["items", "note", "kind", "choice"],
        "additionalProperties": False,
        "$defs": {
            "item": {
                "type": "object",
                "properties": {"id": {"type": "string", "format": "uuid"}, "ok": {"type": "boolean"}},
                "required": ["id", "ok"],
            }
        },
    },
    {
        "allOf": [
            {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            {"required": ["x"]},
        ]
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_filled_json_validates_and_is_deterministic(schema: dict) -> None:
    first = jsonfill.fill_schema(schema, random.Random(1), [])
    jsonschema.validate(first, schema)
    assert jsonfill.fill_schema(schema, random.Random(1), []) == first


def test_gemini_schema_with_capital_types() -> None:
    raw = {"type": "OBJECT", "properties": {"flagged": {"type": "BOOLEAN"}, "n": {"type": "INTEGER"}}}
    schema = normalise({"generationConfig": {"responseSchema": raw}}, GENERATE_CONTENT_REQUEST, "")
    value = jsonfill.fill_schema(schema["generationConfig"]["responseSchema"], random.Random(2), [])
    assert isinstance(value["flagged"], bool) and isinstance(value["n"], int) and value["flagged"] is False


def test_verdict_fields_follow_markers() -> None:
    schema = {
        "type": "object",
        "properties": {
            "is_safe": {"type": "boolean"},
            "violation": {"type": "boolean"},
            "verdict": {"type": "string", "enum": ["no_violation", "violation"]},
            "decision": {"type": "string", "enum": ["ALLOW", "BLOCK"]},
            "categories": {"type": "array", "items": {"type": "string", "enum": ["none", "hate", "sexual"]}},
            "severity": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    hate = ["HARM_CATEGORY_HATE_SPEECH"]
    unsafe = jsonfill.fill_schema(schema, random.Random(3), hate)
    safe = jsonfill.fill_schema(schema, random.Random(3), [])
    assert unsafe["is_safe"] is False and unsafe["violation"] is True
    assert unsafe["verdict"] == "violation" and unsafe["decision"] == "BLOCK"
    assert unsafe["categories"] == ["hate"] and unsafe["severity"] > 0.5
    assert safe["is_safe"] is True and safe["violation"] is False
    assert safe["verdict"] == "no_violation" and safe["decision"] == "ALLOW"
    assert safe["categories"] == ["none"] and safe["severity"] < 0.5
    assert jsonfill.enum_answer({"enum": ["SAFE", "UNSAFE"]}, random.Random(1), hate) == "UNSAFE"
    assert jsonfill.enum_answer({"enum": ["SAFE", "UNSAFE"]}, random.Random(1), []) == "SAFE"


@pytest.mark.parametrize(
    ("threshold", "level", "blocked"),
    [
        ("BLOCK_LOW_AND_ABOVE", "low", True),
        ("BLOCK_MEDIUM_AND_ABOVE", "low", False),
        ("BLOCK_MEDIUM_AND_ABOVE", "medium", True),
        ("BLOCK_ONLY_HIGH", "medium", False),
        ("BLOCK_ONLY_HIGH", "high", True),
        ("BLOCK_NONE", "high", False),
        ("OFF", "high", False),
        (None, "medium", True),  # no setting: the default threshold blocks
    ],
)
def test_thresholds(threshold: str | None, level: str, blocked: bool) -> None:
    settings = (
        [] if threshold is None else [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": threshold}]
    )
    verdict = moderation.judge(f"post [[unsafe:hate:{level}]]", {"safetySettings": settings})
    assert verdict.unsafe and verdict.prompt_blocked is blocked
    assert moderation.judge("a clean post", {}).unsafe is False


def _image_part(width: int, height: int, **extra: Any) -> dict[str, Any]:
    png = io.BytesIO()
    Image.new("RGB", (width, height)).save(png, format="PNG")
    return {"inlineData": {"mimeType": "image/png", "_bytes": png.getvalue()}, **extra}


def test_images_count_by_the_model_rule() -> None:
    # The 1.5 tiling, now a rule of the catalogue that tokens applies like any other.
    tiles = Images(rule="tiles", tokens=258)
    sizes = [(384, 384), (385, 200), (1536, 1536), (3000, 600)]
    assert [tokens.part_tokens(_image_part(w, h), tiles)[1] for w, h in sizes] == [
        258,
        2 * 258,
        4 * 258,
        16 * 258,
    ]
    flat = Images(rule="flat", tokens=258, by_resolution={"MEDIA_RESOLUTION_LOW": 64})
    assert tokens.part_tokens(_image_part(3000, 600), flat) == ("IMAGE", 258)
    low = {"mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}}
    assert tokens.part_tokens(_image_part(3000, 600, **low), flat) == ("IMAGE", 64)
    # Media other than images keep their flat count whatever the rule.
    audio = {"inlineData": {"mimeType": "audio/wav", "_bytes": b"RIFF"}}
    assert tokens.part_tokens(audio, tiles) == ("AUDIO", 258)
    # Text is an estimate per kind of character (tests/emulator/test_emu_tokens.py); none costs nothing.
    assert tokens.text_tokens("") == 0 and tokens.text_tokens("abcd") == 1


def test_quota_window_rolls() -> None:
    profile = load_profile("realistic", {"quotas": {"m": {"rpm": 2, "tpm": 1000}}})
    quotas = Quotas(profile, time_scale=1.0)
    quotas.admit("k", "m", 10, now=0.0)
    quotas.admit("k", "m", 10, now=1.0)
    with pytest.raises(ApiError) as caught:
        quotas.admit("k", "m", 10, now=2.0)
    assert caught.value.code == 429 and caught.value.details[-1]["retryDelay"] == "58s"
    quotas.admit("k", "m", 10, now=60.5)  # the first request left the window
    quotas.admit("other", "m", 10, now=60.5)  # keys are counted apart


def _retry_delay(error: ApiError) -> str:
    return error.details[-1]["retryDelay"]


def test_quota_window_follows_its_clock_under_a_time_scale() -> None:
    # time scale 0.01: the 60 s window is 0.6 real seconds of the injected clock.
    clock = ManualClock(start=500.0)
    quotas = Quotas(load_profile("realistic", {"quotas": {"m": {"rpm": 2}}}), time_scale=0.01, clock=clock)
    quotas.admit("k", "m", 1)
    clock.advance(0.1)
    quotas.admit("k", "m", 1)
    clock.advance(0.2)
    with pytest.raises(ApiError) as caught:  # 0.3 s after the first: it leaves the window in 0.3 s
        quotas.admit("k", "m", 1)
    assert caught.value.fault == "quota_requests" and _retry_delay(caught.value) == "0.300s"
    assert "Please retry in 0.3s" in caught.value.message
    clock.advance(0.2999)
    with pytest.raises(ApiError) as still:  # rejected requests are not counted: the delay shrinks
        quotas.admit("k", "m", 1)
    assert _retry_delay(still.value) == "0.001s", "sub-millisecond waits round up, never to 0"
    clock.advance(0.001)  # the retryDelay after the 429: the slot is free
    quotas.admit("k", "m", 1)
    with pytest.raises(ApiError) as again:  # the second request is the oldest now
        quotas.admit("k", "m", 1)
    assert _retry_delay(again.value) == "0.100s"


def test_quota_tokens_per_minute_and_retry_delay_rounds_up() -> None:
    clock = ManualClock(start=0.0)
    quotas = Quotas(load_profile("realistic", {"quotas": {"m": {"tpm": 100}}}), time_scale=0.01, clock=clock)
    quotas.admit("k", "m", 60)
    clock.advance(0.1236)
    quotas.admit("k", "m", 30)
    clock.advance(0.1)
    with pytest.raises(ApiError) as caught:  # 60 + 30 + 20 > 100: the first 60 tokens must leave
        quotas.admit("k", "m", 20)
    assert caught.value.fault == "quota_tokens" and "input_token_count" in caught.value.message
    # 0.6 - 0.2236 = 0.3764 s, rounded up to the millisecond: waiting that long is always enough.
    assert _retry_delay(caught.value) == "0.377s"
    quotas.admit("k", "m", 10)  # 90 + 10 fits
    clock.advance(0.377)
    quotas.admit("k", "m", 60)  # the first 60 left the window
    # A request bigger than the whole quota is still let through on an empty window.
    assert Quotas(quotas.profile, time_scale=0.01, clock=clock).admit("k", "m", 500) is None


def test_quota_clock_defaults_to_monotonic_and_time_scale_zero_means_no_window() -> None:
    profile = load_profile("realistic", {"quotas": {"m": {"rpm": 1}}})
    assert Quotas(profile, time_scale=1.0).clock is time.monotonic
    unlimited = Quotas(profile, time_scale=0.0, clock=ManualClock())
    for _ in range(5):
        unlimited.admit("k", "m", 1)


def test_stats_uptime_follows_its_clock() -> None:
    clock = ManualClock(start=1_700_000_000.0)
    stats = Stats(clock=clock)
    stats.begin("generateContent", "m")
    clock.advance(12.3456)
    snapshot = stats.snapshot({"time_scale": 0.01})
    assert snapshot["started_at"] == 1_700_000_000.0 and snapshot["uptime_s"] == 12.346
    assert snapshot["in_flight"] == snapshot["max_in_flight"] == 1 and snapshot["time_scale"] == 0.01
    assert Stats().clock is time.time


def test_slots_queue_fifo_and_timeout() -> None:
    async def scenario() -> list[str]:
        slots = Slots(capacity=1, queue_limit=1)
        await slots.acquire(30.0, 503)
        order: list[str] = []

        async def waiter() -> None:
            await slots.acquire(30.0, 503)  # served long before 30 s: release() hands it the slot
            order.append("served")
            slots.release()

        task = asyncio.create_task(waiter())
        while not slots.queued:  # until the waiter is in the queue: an event, not an amount of time
            await asyncio.sleep(0)  # why: a bare yield to the loop so the waiter task runs; no time passes
        with pytest.raises(ApiError) as full:  # the queue holds one: a second waiter is refused
            await slots.acquire(30.0, 503)
        order.append(f"full:{full.value.code}")
        slots.release()
        await task
        await slots.acquire(30.0, 503)
        # The queue timeout is the feature: a waiter nobody releases gives up with the 504 asked for.
        with pytest.raises(ApiError) as late:
            await slots.acquire(0.02, 504)
        order.append(f"timeout:{late.value.code}:{late.value.fault}")
        assert slots.queued == 0 and slots.busy == 1
        return order

    assert asyncio.run(scenario()) == ["full:503", "served", "timeout:504:queue_timeout"]


def test_latency_plan_scales_and_is_seeded() -> None:
    profile = ModelProfile(ttft_median_ms=500, ttft_sigma=0.3, output_tokens_per_s=100, chunk_tokens=10)
    draws = [plan_for(profile, random.Random(i), Clock(1.0), 0, 50, 0, 0.0).first_delay_s for i in range(400)]
    # median TTFT ~ 0.5 s plus the first chunk's 10 tokens at 100 tokens/s
    assert 0.55 < statistics.median(draws) < 0.67
    a = plan_for(profile, random.Random(9), Clock(0.1), 0, 50, 0, 0.0)
    b = plan_for(profile, random.Random(9), Clock(1.0), 0, 50, 0, 0.0)
    assert len(a.chunk_delays_s) == 4
    assert a.total_s == pytest.approx(b.total_s * 0.1)
    busy = plan_for(profile, random.Random(9), Clock(1.0), 0, 50, 0, 1.0)
    assert busy.total_s > b.total_s


def test_config_errors_are_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown emulator profile 'x'"):
        load_profile("x")
    with pytest.raises(ConfigError, match="unknown key"):
        load_profile("realistic", {"bogus": 1})
    with pytest.raises(ConfigError, match="unknown field"):
        load_profile("realistic", {"models": {MODEL: {"ttft": 1}}})
    with pytest.raises(ConfigError, match="unknown fault"):
        load_profile("realistic", {"faults": {"explode": 0.1}})
    profile = load_profile("small-capacity", {"models": {"my-model": {"capacity": 2}}})
    assert profile.models["my-model"].capacity == 2 and profile.models[MODEL].capacity == 4
