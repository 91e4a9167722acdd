"""Overload episodes: bursts of "The model is overloaded" 503s with latency rising before them.

The schedule is checked on a manual clock (emulated seconds stepped by hand, no waiting); the wire
and the real google-genai SDK against an emulator at a 0.01 time scale (a minute in 0.6 s)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from emu_http import MODEL, text_request
from google import genai
from google.genai import errors, types

from emulator.errors import ApiError
from emulator.faults import OVERLOAD_503, Draw, Faults
from emulator.generation import DropConnection, Generator
from emulator.latency import Clock
from emulator.profiles import ConfigError, check_faults, load_profile
from emulator.stats import Stats

OVERLOADED = (
    "This model is currently experiencing high demand. Spikes in demand are usually temporary. "
    "Please try again later."
)
PROFILE_FAULTS = load_profile("overload").faults


class ManualClock:
    """Real seconds, stepped by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def faults_at(settings: dict[str, float], seed: int | None = 5) -> tuple[Faults, ManualClock]:
    manual = ManualClock()
    return Faults(settings, seed, Clock(1.0, real=manual).now), manual


def episodes_until(faults: Faults, horizon: float, step: float = 0.25) -> list[tuple[float, float]]:
    """Every episode that starts before `horizon`, found by walking the emulated clock."""
    assert faults.episodes is not None
    seen: list[tuple[float, float]] = []
    t = 0.0
    while t < horizon:
        episode = faults.episodes.at(t)
        if episode[0] < horizon and episode not in seen:
            seen.append(episode)
        t += step
    return seen


# ---- the schedule, on a manual clock -------------------------------------------------------------


def test_episodes_start_and_last_as_configured() -> None:
    # Few merges at this rate: starts are a Poisson process of 0.5 a minute, lengths have mean 10 s.
    faults, _ = faults_at({**PROFILE_FAULTS, "overload_per_minute": 0.5, "overload_seconds": 10.0})
    hours = 20
    episodes = episodes_until(faults, hours * 3600.0, step=1.0)
    expected = 0.5 * 60 * hours  # 600; Poisson sd ~24, a few merge
    assert 0.85 * expected < len(episodes) < 1.1 * expected
    lengths = [end - start for start, end in episodes]
    assert 9.0 < statistics.mean(lengths) < 11.5
    assert min(lengths) > 1.0  # lognormal: no blips of a few milliseconds
    gaps = [b[0] - a[1] for a, b in zip(episodes, episodes[1:], strict=False)]
    assert min(gaps) > 0  # merged, never overlapping


def test_inside_an_episode_most_draws_are_503_and_outside_none() -> None:
    faults, manual = faults_at(dict(PROFILE_FAULTS))
    inside = outside = inside_503 = 0
    while manual.t < 4 * 3600.0:
        draw = faults.draw(stream=False)
        if faults.in_episode(manual.t):
            inside += 1
            inside_503 += draw.replace_with == OVERLOAD_503
        else:
            outside += 1
            assert draw.replace_with == "", manual.t
        manual.t += 0.5
    assert inside > 1000 and outside > 1000
    assert 0.87 < inside_503 / inside < 0.93  # overload_503_share 0.9


def test_same_seed_same_episodes_whatever_the_traffic() -> None:
    settings = dict(PROFILE_FAULTS)
    dense = episodes_until(faults_at(settings, seed=9)[0], 3600.0, step=0.1)
    sparse = episodes_until(faults_at(settings, seed=9)[0], 3600.0, step=7.0)
    # The sparse walk misses episodes shorter than its step; every one it sees is the dense one's.
    assert dense and set(sparse) <= set(dense) and len(sparse) >= len(dense) // 2
    assert episodes_until(faults_at(settings, seed=10)[0], 3600.0, step=0.1) != dense


def test_latency_rises_during_the_ramp_and_falls_after() -> None:
    faults, _ = faults_at(dict(PROFILE_FAULTS))
    assert faults.episodes is not None
    start, end = faults.episodes.at(0.0)
    assert start > 10.0, "seed 5's first episode leaves room for a whole ramp"
    assert faults.slowdown(start - 10.0 - 1.0) == 1.0
    assert faults.slowdown(start - 5.0) == pytest.approx(2.0)  # half way up to x3
    assert faults.slowdown(start - 1.0) == pytest.approx(1.0 + 2.0 * 9.0 / 10.0)
    assert faults.slowdown(start) == faults.slowdown((start + end) / 2) == 3.0
    next_start, _ = faults.episodes.at(end)
    if next_start - end > 10.0:
        assert faults.slowdown(end) == 1.0
    # The factor the draw carries stretches every delay of the answer's plan.
    gen = Generator(load_profile("realistic"), Stats(), Clock(1.0), seed=1)
    model = gen.profile.models[MODEL]
    prepared = gen.prepare(json.dumps(text_request("a long story")).encode(), MODEL, model)
    plans = []
    for factor in (1.0, 3.0):
        gen.rng = random.Random(1)
        plans.append(gen._plan(prepared, model, gen.slots[MODEL], Draw(slowdown=factor)))
    plain, slow = plans
    assert plain.total_s > 0
    assert slow.first_delay_s == pytest.approx(3 * plain.first_delay_s)
    assert slow.total_s == pytest.approx(3 * plain.total_s)


def test_episodes_are_counted_once_and_changing_the_shape_restarts_the_schedule() -> None:
    faults, manual = faults_at(dict(PROFILE_FAULTS))
    counted = 0
    while manual.t < 3600.0:
        counted += faults.draw(stream=False).episodes
        manual.t += 3.0
    last_draw = manual.t - 3.0
    # The schedule only moves forward: list the episodes on a fresh one of the same seed.
    assert counted == len(episodes_until(faults_at(dict(PROFILE_FAULTS))[0], last_draw + 1e-9, step=0.1))
    schedule = faults.episodes
    faults.update(faults.describe()["params"], reset=True)  # a worker re-reading the same control
    assert faults.episodes is schedule
    faults.update({"overload_seconds": 5.0})
    assert faults.episodes is not schedule
    faults.update({"overload_per_minute": 0})
    assert faults.episodes is None and faults.draw(stream=False).replace_with == ""


def test_independent_faults_still_fire_outside_episodes() -> None:
    faults, manual = faults_at({**PROFILE_FAULTS, "server_500": 1.0})
    assert faults.episodes is not None
    start, _ = faults.episodes.at(0.0)
    assert faults.draw(stream=False).replace_with == "server_500"
    manual.t = start
    assert faults.draw(stream=False).replace_with in (OVERLOAD_503, "server_500")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"overload_503_share": 1.5},
            "fault parameter 'overload_503_share' must be between 0 and 1, got 1.5",
        ),
        ({"overload_slowdown": 0.5}, "fault parameter 'overload_slowdown' must be a factor >= 1, got 0.5"),
        ({"overload_per_minute": -1}, "'overload_per_minute' must be >= 0 episodes a minute, got -1"),
        ({"overload_seconds": -2}, "fault parameter 'overload_seconds' must be >= 0 seconds, got -2"),
        ({"overload_ramp_seconds": True}, "fault 'overload_ramp_seconds' must be a number, got True"),
    ],
)
def test_bad_overload_parameters_are_one_line_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_faults(settings, "cfg.json")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError):
        load_profile("realistic", {"faults": settings})


# ---- burstiness ----------------------------------------------------------------------------------


def longest_run(hits: list[bool]) -> int:
    best = run = 0
    for hit in hits:
        run = run + 1 if hit else 0
        best = max(best, run)
    return best


def test_503s_come_in_bursts_not_independently() -> None:
    """One request every 0.5 emulated seconds for 4 hours under the `overload` profile.

    Statistic 1, the longest run of consecutive 503s L: were the same share p of requests failing
    independently, P(some run >= L) <= n * p**L (a union bound over the n places a run can start);
    we require that bound to be below 1e-6. Statistic 2, the index of dispersion of 503s per
    one-minute bin (120 requests): variance over the binomial variance m*p*(1-p) with the same
    mean; it is 1 for independent faults (about +-0.2 over 240 bins) and we require > 10."""
    faults, manual = faults_at(dict(PROFILE_FAULTS), seed=21)
    hits: list[bool] = []
    while manual.t < 4 * 3600.0:
        hits.append(faults.draw(stream=False).replace_with == OVERLOAD_503)
        manual.t += 0.5
    n, p = len(hits), sum(hits) / len(hits)
    assert 0.05 < p < 0.5, p
    run = longest_run(hits)
    assert n * p**run < 1e-6, (run, p)
    per_bin = 120
    bins = [sum(hits[i : i + per_bin]) for i in range(0, n, per_bin)]
    dispersion = statistics.pvariance(bins) / (per_bin * p * (1 - p))
    assert dispersion > 10, dispersion
    # The same statistics for independent faults at the same rate: near 1 and a short run.
    rng = random.Random(3)
    flat = [rng.random() < p for _ in range(n)]
    flat_bins = [sum(flat[i : i + per_bin]) for i in range(0, n, per_bin)]
    assert statistics.pvariance(flat_bins) / (per_bin * p * (1 - p)) < 2
    assert longest_run(flat) < run / 3


# ---- streams under way when an episode starts -----------------------------------------------------


def stream_generator(share: float) -> tuple[Generator, ManualClock, Stats]:
    """A generator on a manual clock at time scale 0: no real pauses, time moves when told."""
    manual = ManualClock()
    profile = load_profile("overload", {"faults": {"overload_503_share": share}})
    stats = Stats()
    return Generator(profile, stats, Clock(0.0, real=manual), seed=5), manual, stats


def collect(chunks: AsyncIterator[bytes], manual: ManualClock, jump_to: float) -> list[bytes]:
    """Every chunk of a stream; the clock jumps to `jump_to` once the first one is out."""

    async def run() -> list[bytes]:
        received: list[bytes] = []
        async for chunk in chunks:
            received.append(chunk)
            manual.t = jump_to
        return received

    return asyncio.run(run())


@pytest.mark.parametrize("share", [1.0, 0.0])
def test_a_stream_under_way_is_cut_when_an_episode_starts(share: float) -> None:
    gen, manual, stats = stream_generator(share)
    assert gen.faults.episodes is not None
    start, _ = gen.faults.episodes.at(0.0)
    raw = json.dumps(text_request("a long story", generationConfig={"maxOutputTokens": 4000})).encode()
    profile = gen.profile.models[MODEL]
    chunks = gen.stream(raw, "k", MODEL, profile, sse=True)
    if share:
        with pytest.raises(DropConnection):
            collect(chunks, manual, start + 0.1)
        assert stats.by_fault["overload_stream_cut"] == 1
    else:
        assert len(collect(chunks, manual, start + 0.1)) > 2
        assert stats.by_fault["overload_stream_cut"] == 0
    # Inside the episode a new stream is refused before its first byte (share 1) or served.
    chunks = gen.stream(raw, "k", MODEL, profile, sse=True)
    if share:
        with pytest.raises(ApiError) as caught:
            collect(chunks, manual, start + 0.1)
        assert caught.value.code == 503 and caught.value.message == OVERLOADED
    else:
        assert collect(chunks, manual, start + 0.1)
    assert stats.by_fault["overload_episodes"] == 1


# ---- on the wire, through the real SDK ------------------------------------------------------------


def test_sdk_sees_bursts_of_overloaded_503s(start_emulator) -> None:
    # 0.01 time scale: an episode of ~20 emulated seconds lasts ~0.2 real seconds, one a minute ~0.6 s.
    emu = start_emulator(profile="overload", time_scale=0.01, seed=3)
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=emu.url))
    config = types.GenerateContentConfig(max_output_tokens=20)
    outcomes: list[int] = []
    run = longest = 0
    deadline = time.monotonic() + 60
    # Until a burst of >= 5 503s in a row has come and gone (a success after it).
    while not (longest >= 5 and outcomes[-1] == 200):
        assert time.monotonic() < deadline, outcomes
        try:
            client.models.generate_content(model=MODEL, contents="hi", config=config)
            outcomes.append(200)
            run = 0
        except errors.ServerError as exc:
            assert exc.code == 503 and exc.status == "UNAVAILABLE" and exc.message == OVERLOADED
            outcomes.append(503)
            run += 1
            longest = max(longest, run)
    failed = outcomes.count(503)
    stats = emu.stats()
    assert stats["faults_injected"]["overload_503"] == failed
    assert stats["responses_by_status"]["503"] == failed
    assert stats["faults_injected"]["overload_episodes"] >= 1
    reply = emu.set_faults({"overload_per_minute": 0})
    assert reply["params"]["overload_per_minute"] == 0.0
    # Episodes off: answered (the 20 tokens may all go to thinking, so no text is asked for).
    assert client.models.generate_content(model=MODEL, contents="hi", config=config).candidates
