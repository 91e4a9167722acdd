"""Vertex AI's quota (emulator.vertex): a project caller is held to Standard PayGo's floor of input
tokens per minute for its model's family, with no requests per minute or per day, and refused with
Vertex's 429 without RetryInfo; a Developer API key keeps its tier's limits, and an express key
shares that key's windows. In process: Emulator.generate_route through an in-memory Wire, its
quota windows on a manual clock (so a minute of emulated time passes only when a test says so).
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import datetime
from typing import Any

import pytest
from emu_http import MODEL, PINNED_AS_OF, text_request

from core.catalogue import catalogue
from emulator import lineup, vertex
from emulator.auth import CLOUD_PLATFORM
from emulator.profiles import ConfigError, load_profile
from emulator.quotas import PACIFIC, Quotas, daily_limit
from emulator.server import Emulator
from emulator.tokens import text_tokens
from emulator.vertex import DSQ_MESSAGE, VertexTarget
from tests.waiting import ManualClock

PROJECT = VertexTarget("test-project", "global")
EXPRESS = VertexTarget()
PRO = "gemini-2.5-pro"  # a Pro (the smallest floor) served on PINNED_AS_OF
TIME_SCALE = 0.01  # an emulated minute is 0.6 s of the manual clock
MINUTE = 60 * TIME_SCALE
# Noon Pacific on a winter day: no emulated midnight within the few emulated minutes a test plays.
NOON = datetime(2026, 11, 2, 12, 0, 0, tzinfo=PACIFIC).timestamp()
DSQ_429 = {"error": {"code": 429, "message": DSQ_MESSAGE, "status": "RESOURCE_EXHAUSTED"}}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
SMALL = json.dumps(text_request("Is this post fine?")).encode()


class MemoryWire:
    """A Wire (emulator.wire) in memory: the request's credentials and body; the answer's status and
    bytes."""

    def __init__(self, raw: bytes, api_key: str | None, authorization: str | None) -> None:
        self.raw = raw
        self.api_key = api_key
        self.authorization = authorization
        self.request_id: str | None = None
        self.sse = False
        self.status = 0
        self.sent = b""

    async def body(self) -> bytes:
        return self.raw

    async def send(self, status: int, body: bytes) -> None:
        self.status, self.sent = status, body

    async def write(self, chunk: bytes) -> None:
        self.status = self.status or 200
        self.sent += chunk

    async def end(self) -> None:
        pass

    def reset(self) -> None:
        raise AssertionError("no fault is configured: nothing resets the connection")


class InProcess:
    """A `fast` emulator (no latency) on the free tier, its quotas on a manual clock; a bearer token
    for the Vertex project route."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.clock = ManualClock(start=100.0)
        profile = load_profile("fast", {"as_of": PINNED_AS_OF, "quota_tier": "free", **(config or {})})
        self.emulator = Emulator(profile, time_scale=TIME_SCALE)
        generator = self.emulator.generator
        generator.quotas = Quotas(profile, TIME_SCALE, clock=self.clock, wall=lambda: NOON)
        self.token, _ = self.emulator.tokens.issue(frozenset({CLOUD_PLATFORM}))

    def send(
        self, raw: bytes, model: str = MODEL, target: VertexTarget | None = PROJECT, key: str | None = None
    ) -> tuple[int, Any]:
        """One generateContent: on a Vertex route (`target`) or, with target None, the Developer API's."""
        bearer = f"Bearer {self.token}" if target is not None and not target.express else None
        wire = MemoryWire(raw, key, bearer)
        version = "v1beta" if target is None else "v1beta1"
        asyncio.run(self.emulator.generate_route(wire, version, model, "generateContent", target))
        return wire.status, json.loads(wire.sent)

    def prompt_tokens(self, raw: bytes, model: str) -> int:
        return self.emulator.generator.prepare(raw, model, self.emulator.profile.models[model]).prompt_tokens


def test_a_project_has_no_requests_per_minute_or_day_while_a_developer_key_keeps_its_tier() -> None:
    run = InProcess()
    profile = run.emulator.profile
    rpm, _ = profile.quota_for(MODEL)
    rpd = daily_limit(profile, MODEL)
    assert rpm and rpd, "the free tier limits requests per minute and per day"
    calls = 3 * max(rpm, rpd)
    for _ in range(calls):  # every one inside one emulated minute
        assert run.send(SMALL)[0] == 200
        run.clock.advance(MINUTE / (2 * calls))
    assert run.emulator.stats.by_quota == {}
    # A Developer API key of the same model: its tier's requests per minute, then the 429 with RetryInfo.
    for _ in range(rpm):
        assert run.send(SMALL, target=None, key="k")[0] == 200
    status, body = run.send(SMALL, target=None, key="k")
    assert status == 429 and body != DSQ_429
    assert RETRY_INFO in {detail["@type"] for detail in body["error"]["details"]}
    # An express key is held to that key's Developer window: refused too, in Vertex's words.
    assert run.send(SMALL, target=EXPRESS, key="k") == (429, DSQ_429)
    assert run.send(SMALL)[0] == 200, "a project's window is its own"
    # ...and to the tier's requests per day: no RetryInfo once the day's are spent.
    sent = rpm
    while sent < rpd:
        run.clock.advance(MINUTE)
        for _ in range(min(rpm, rpd - sent)):
            assert run.send(SMALL, target=None, key="k")[0] == 200
            sent += 1
    run.clock.advance(MINUTE)
    status, body = run.send(SMALL, target=None, key="k")
    assert status == 429 and RETRY_INFO not in {detail["@type"] for detail in body["error"]["details"]}
    assert run.emulator.stats.by_quota == {"rpm": 2, "rpd": 1}


def test_a_project_is_refused_past_its_familys_token_floor_until_the_window_rolls() -> None:
    run = InProcess()
    floor = catalogue().vertex.standard_paygo_tpm[lineup.family(PRO)]
    unit = "lorem ipsum dolor sit amet "
    per_unit = text_tokens(unit * 1000) / 1000
    big = json.dumps(text_request(unit * math.ceil(0.6 * floor / per_unit))).encode()
    big_tokens, small_tokens = run.prompt_tokens(big, PRO), run.prompt_tokens(SMALL, PRO)
    assert floor / 2 < big_tokens and big_tokens + small_tokens <= floor, (big_tokens, floor)
    assert run.send(big, PRO)[0] == 200
    assert run.send(SMALL, PRO)[0] == 200  # within the floor
    run.clock.advance(MINUTE / 2)
    assert run.send(big, PRO) == (429, DSQ_429), "two big prompts in a minute pass the floor"
    assert run.emulator.stats.by_quota == {"tpm": 1}
    assert run.emulator.stats.by_limit == {"quota_tokens": 1}
    assert run.send(big, PRO, target=VertexTarget("test-project", "us-central1"))[0] == 200, "per location"
    run.clock.advance(MINUTE * 0.51)  # just over an emulated minute after the first two: they left
    assert run.send(big, PRO)[0] == 200
    assert run.send(big, PRO) == (429, DSQ_429)


def test_a_projects_limits_are_the_floor_unless_vertex_quotas_set_them() -> None:
    floors = catalogue().vertex.standard_paygo_tpm
    # The Developer API's overrides are that API's figures: they do not reach a Vertex project.
    realistic = load_profile("realistic", {"quotas": {"*": {"rpm": 1, "tpm": 2, "rpd": 3}}})
    for model in [*realistic.models, "my-own-model"]:
        family = lineup.family(model)
        assert family in floors, model
        assert vertex.quota_for(realistic, model) == (None, floors[family], None), model
    assert lineup.family("my-own-model") == lineup.family(MODEL), "a user's model: the default's family"
    assert vertex.quota_for(load_profile("fast"), MODEL) == (None, None, None), "`unlimited`: no quota"
    tight = load_profile("fast", {"vertex_quotas": {MODEL: {"tpm": 10}, "*": {"rpm": 5, "tpm": None}}})
    assert vertex.quota_for(tight, MODEL) == (None, 10, None)
    assert vertex.quota_for(tight, "other-model") == (5, None, None)
    with pytest.raises(ConfigError, match=f"vertex_quotas.{MODEL} must look like"):
        load_profile("realistic", {"vertex_quotas": {MODEL: {"rpx": 1}}})
    with pytest.raises(ConfigError, match=f"vertex_quotas.{MODEL}.tpm must be a whole number"):
        load_profile("realistic", {"vertex_quotas": {MODEL: {"tpm": -1}}})


def test_a_projects_quota_from_the_config_is_refused_in_vertex_words() -> None:
    run = InProcess({"vertex_quotas": {MODEL: {"rpm": 1}}})
    assert run.send(SMALL)[0] == 200
    assert run.send(SMALL) == (429, DSQ_429)
    assert run.send(SMALL, target=None, key="k")[0] == 200, "the Developer API's tier is another window"
    assert run.emulator.stats.by_quota == {"rpm": 1}
