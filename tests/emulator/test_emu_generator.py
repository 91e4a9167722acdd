"""The generator on its own: admission, refusals counted in the Stats it is given, and streams
built from its frame cache, with no server and no socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from emu_http import MODEL, text_request

from emulator import responses
from emulator.errors import ApiError
from emulator.generation import DropConnection, Generator
from emulator.latency import Clock
from emulator.profiles import load_profile
from emulator.stats import Stats

T = TypeVar("T")


def generator(config: dict[str, Any] | None = None) -> tuple[Generator, Stats]:
    stats = Stats()
    # The `fast` profile has no latency, so nothing below waits.
    return Generator(load_profile("fast", config), stats, Clock(1.0), seed=3), stats


def body(text: str, **extra: Any) -> bytes:
    return json.dumps(text_request(text, **extra)).encode()


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


def test_a_full_queue_is_refused_and_counted_while_a_stream_holds_the_slot() -> None:
    gen, stats = generator({"model_defaults": {"capacity": 1, "queue_limit": 0}})
    profile = gen.profile.models[MODEL]

    async def scenario() -> None:
        chunks = gen.stream(body("long", generationConfig={"maxOutputTokens": 64}), "k", MODEL, profile, True)
        async with contextlib.aclosing(chunks):
            await anext(chunks)  # the first chunk is out: the stream holds the only slot
            assert gen.slots[MODEL].busy == 1
            with pytest.raises(ApiError) as refused:
                await gen.generate(body("x"), "k", MODEL, profile)
            assert refused.value.code == 503 and refused.value.fault == "queue_full"
        assert gen.slots[MODEL].busy == 0, "closing a stream early frees its slot"
        await gen.generate(body("x"), "k", MODEL, profile)

    run(scenario)
    assert stats.by_limit == {"queue_full": 1} and stats.tokens["output"] > 0


def test_quota_refusals_are_counted_and_keys_are_apart() -> None:
    gen, stats = generator({"quotas": {MODEL: {"rpm": 1}}})
    profile = gen.profile.models[MODEL]

    async def scenario() -> None:
        await gen.generate(body("a"), "k1", MODEL, profile)
        with pytest.raises(ApiError) as refused:
            await gen.generate(body("b"), "k1", MODEL, profile)
        assert refused.value.code == 429
        await gen.generate(body("b"), "k2", MODEL, profile)

    run(scenario)
    assert stats.by_limit == {"quota_requests": 1} and gen.slots[MODEL].busy == 0


def test_injected_faults_come_before_quota_and_slots() -> None:
    gen, stats = generator({"faults": {"server_503": 1.0}, "quotas": {MODEL: {"rpm": 1}}})
    profile = gen.profile.models[MODEL]

    async def scenario() -> None:
        for _ in range(2):  # an rpm of 1 is never reached: the fault answers first
            with pytest.raises(ApiError) as injected:
                await gen.generate(body("x"), "k", MODEL, profile)
            assert injected.value.code == 503
        gen.faults.update({"connection_reset": 1.0}, reset=True)
        with pytest.raises(DropConnection):
            await anext(gen.stream(body("x"), "k", MODEL, profile, True))

    run(scenario)
    assert stats.by_fault == {"server_503": 2, "connection_reset": 1} and not stats.by_limit
    assert gen.slots[MODEL].busy == 0


@pytest.mark.parametrize("sse", [True, False])
def test_cached_frames_are_the_built_ones_with_a_fresh_response_id(sse: bool) -> None:
    gen, stats = generator({"model_defaults": {"chunk_tokens": 4}})
    profile = gen.profile.models[MODEL]
    # Room for the default level's thinking and an answer of several chunks after it.
    config = {"maxOutputTokens": 4000, "thinkingConfig": {"includeThoughts": True}}
    raw = body("tell me more", generationConfig=config)

    async def collect() -> list[bytes]:
        return [chunk async for chunk in gen.stream(raw, "k", MODEL, profile, sse)]

    first, second = run(collect), run(collect)
    events = [parse(first, sse), parse(second, sse)]
    ids = [{event["responseId"] for event in stream} for stream in events]
    assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1], "one id per answer, a new one each time"
    # What the cache sends is what building the frames afresh for that id gives.
    prepared = gen.prepare(raw, MODEL, profile)
    rid = ids[0].pop()
    built = responses.stream_frames(
        prepared.answer, prepared.prompt_tokens, prepared.details, MODEL, rid, profile
    )
    assert [json.dumps(e) for e in events[0]] == [json.dumps(json.loads(f)) for f in built]
    assert len(built) > 2 and "thought" in built[0] and stats.chunks == 2 * len(built)


def parse(chunks: list[bytes], sse: bool) -> list[dict[str, Any]]:
    text = b"".join(chunks).decode()
    if sse:
        return [json.loads(event.removeprefix("data: ")) for event in text.split("\r\n\r\n") if event]
    return json.loads(text)


def test_a_stats_reset_zeroes_counters_in_place_and_keeps_calls_in_flight() -> None:
    # The server and the generator hold the same Stats, so a reset must not swap the object.
    stats = Stats()
    stats.begin("v1beta/models.generateContent", MODEL)
    stats.by_fault["server_503"] += 1
    stats.reset()
    assert stats.requests == 0 and not stats.by_fault and stats.in_flight == stats.max_in_flight == 1
    stats.end(200)
    assert stats.in_flight == 0 and stats.by_status == {"200": 1}
