"""What the realistic profile's streams and bodies look like on the wire: answer chunks of dozens of
tokens, thinking streamed as several `thought: true` chunks before the answer and its time spread
over them, and JSON laid out as the real API lays it out (the bytes are the suite's response_bytes)."""

from __future__ import annotations

import asyncio
import json

import pytest
from emu_http import MODEL, text_request

from emulator.generation import Generator, _gap_before
from emulator.latency import Clock, Plan
from emulator.profiles import load_profile
from emulator.stats import Stats

THINK_ALOUD = {
    "maxOutputTokens": 8192,
    "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
}


def _stream(profile_name: str, config: dict | None, text: str = "think it over") -> list[dict]:
    """Every frame of one SSE stream, at time scale 0.001."""
    generator = Generator(load_profile(profile_name), Stats(), Clock(0.001), seed=4)
    profile = generator.profile.models[MODEL]
    raw = json.dumps(text_request(text, generationConfig=config or {})).encode()

    async def collect() -> list[dict]:
        chunks = [chunk async for chunk in generator.stream(raw, "k", MODEL, profile, True)]
        return [json.loads(chunk.decode().removeprefix("data: ")) for chunk in chunks]

    return asyncio.run(collect())


def _parts(frame: dict) -> list[dict]:
    return frame["candidates"][0].get("content", {}).get("parts", [])


def test_thinking_streams_as_several_thought_chunks_before_the_answer() -> None:
    frames = _stream("realistic", THINK_ALOUD)
    thought = [f for f in frames if any(p.get("thought") for p in _parts(f))]
    answer = [f for f in frames if _parts(f) and not any(p.get("thought") for p in _parts(f))]
    assert len(thought) >= 2, "several thought chunks, as the real API sends"
    assert frames[: len(thought)] == thought, "every thought chunk comes before the answer"
    summary = "".join(p["text"] for f in thought for p in _parts(f))
    assert summary.startswith("**Thinking it through**") and "  " not in summary.replace("\n\n", "")
    thoughts = frames[-1]["usageMetadata"]["thoughtsTokenCount"]
    assert all(f["usageMetadata"]["thoughtsTokenCount"] == thoughts for f in frames)
    assert answer and frames[-1]["candidates"][0]["finishReason"] in ("STOP", "MAX_TOKENS")


def test_answer_chunks_carry_dozens_of_tokens() -> None:
    frames = _stream("realistic", {"thinkingConfig": {"thinkingLevel": "LOW"}})
    counts = [f["usageMetadata"].get("candidatesTokenCount", 0) for f in frames]
    steps = [b - a for a, b in zip([0, *counts], counts, strict=False) if b - a > 0]
    chunk = load_profile("realistic").models[MODEL].chunk_tokens
    assert chunk >= 32
    assert steps and max(steps) == min(chunk, counts[-1]), steps
    assert all(step <= chunk for step in steps)


def test_the_generate_body_is_indented_and_sse_events_are_one_line() -> None:
    generator = Generator(load_profile("fast"), Stats(), Clock(0.0), seed=4)
    profile = generator.profile.models[MODEL]
    raw = json.dumps(text_request("lay it out")).encode()
    body = asyncio.run(generator.generate(raw, "k", MODEL, profile)).decode()
    assert body.startswith('{\n  "candidates": [\n    {\n')
    assert json.loads(body)["usageMetadata"]["promptTokenCount"] > 0

    async def first_event() -> bytes:
        async for chunk in generator.stream(raw, "k", MODEL, profile, True):
            return chunk
        raise AssertionError("no event")

    event = asyncio.run(first_event()).decode()
    assert event.startswith('data: {"candidates": [{"content": {') and event.endswith("}\r\n\r\n")
    assert event.count("\n") == 2


def test_thinking_time_is_spread_over_the_thought_chunks() -> None:
    """Each thought chunk goes out as its share of thinking is done; the answer's first chunk after
    the last share; then the answer's own delays, in order."""
    plan = Plan(first_delay_s=5.0, thinking_s=3.0, chunk_delays_s=[0.5, 0.25])
    gaps = [_gap_before(plan, 3, index) for index in range(1, 6)]
    assert gaps == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.25])
    assert [_gap_before(plan, 0, index) for index in (1, 2, 3)] == [0.5, 0.25, 0.0]
