"""Fault injection: each fault fires on a request with its configured rate (0..1), and overload
episodes make 503s come in bursts.

Rates come from the profile / config file ("faults": {...}) and can be changed while running:
    GET  /emulator/faults                       -> {"rates": {...}, "params": {...}}
    POST /emulator/faults {"server_503": 0.1}   -> merges; {"reset": true, ...} clears first
Faults (see profiles.FAULT_NAMES): server_500, server_503, server_504, connection_reset,
stream_cut, stream_stall, malformed_json, stream_error_frame, slow_first_byte.
Parameters: stall_seconds, slow_first_byte_seconds (emulated seconds: the time scale applies).

At most one of the "instead of an answer" faults fires per request (connection_reset, then 500,
503, 504, in that order of precedence); slow_first_byte adds to any of them; the stream faults
apply to streamed answers only and malformed_json to any successful answer.

Overload episodes (parameters overload_*, the `overload` profile): the real "The model is
overloaded" 503s come in bursts of seconds to minutes, with latency rising before them; that is
what defeats a naive retry, and independent per-request faults cannot show it.
- Episodes start as a Poisson process, `overload_per_minute` per emulated minute; one that starts
  while another is under way extends it (merged: one episode).
- Lengths are lognormal with mean `overload_seconds` (sigma 0.5), not exponential: an exponential
  length makes most episodes short blips (its mode is 0) that look like independent faults again;
  real overloads have a typical length and now and then a much longer one.
- During an episode a request is answered 503 with probability `overload_503_share` (before any
  other fault; the rest are served, slowly); for `overload_ramp_seconds` before it, latency (TTFT
  and decode) rises linearly to `overload_slowdown`, and stays there during it.
- A stream admitted before an episode is cut (the connection closes, like stream_cut) when the
  episode starts while it is still sending, with probability `overload_503_share`: overloaded
  backends drop work in flight rather than stall it.
Episode times are drawn lazily from the emulator's Clock (emulated seconds, so a 0.01 time scale
plays a minute in 0.6 s) with their own RNG, seeded from --seed: for a given seed the episodes are
the same whatever the traffic. Stats: faults_injected counts overload_503, overload_stream_cut and
overload_episodes (episodes begun, seen at the next request). With --workers N each worker has its
own seed, so its own episodes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.config_values import FAULT_NAMES, FAULT_PARAMS, check_faults

REPLACING = ("connection_reset", "server_500", "server_503", "server_504")
OVERLOAD_503 = "overload_503"
OVERLOAD_PARAMS = tuple(name for name in FAULT_PARAMS if name.startswith("overload_"))
EPISODE_SIGMA = 0.5
STREAM_ONLY = ("stream_cut", "stream_stall", "stream_error_frame")


@dataclass(slots=True)
class Draw:
    """The faults chosen for one request."""

    replace_with: str = ""  # one of REPLACING or OVERLOAD_503, or "" to answer normally
    slow_first_byte: bool = False
    malformed_json: bool = False
    stream_cut: bool = False
    stream_stall: bool = False
    stream_error_frame: bool = False
    slowdown: float = 1.0  # latency factor: an overload episode's ramp
    cut_at: float | None = None  # emulated time at which a stream under way is cut (overload)
    episodes: int = 0  # overload episodes begun since the previous draw, for the stats

    def names(self) -> list[str]:
        names = [self.replace_with] if self.replace_with else []
        for name in ("slow_first_byte", "malformed_json", *STREAM_ONLY):
            if getattr(self, name):
                names.append(name)
        return names


NO_FAULT = Draw()


class Episodes:
    """The overload episodes of one schedule, drawn lazily in time order from their own RNG, so
    they depend on the seed and the parameters only, never on when or how often they are asked."""

    def __init__(self, rng: random.Random, params: dict[str, float], origin: float) -> None:
        self.rng = rng
        self.mean_gap = 60.0 / params["overload_per_minute"]
        # The lognormal's mean is exp(mu + sigma^2 / 2): mu puts it at overload_seconds.
        self.mu = math.log(params["overload_seconds"]) - EPISODE_SIGMA**2 / 2
        self.start = self.end = origin  # the current or next episode: [start, end)
        self._next = origin + rng.expovariate(1.0 / self.mean_gap)
        self.drawn = 0

    def _length(self) -> float:
        return math.exp(self.rng.gauss(self.mu, EPISODE_SIGMA))

    def at(self, now: float) -> tuple[float, float]:
        """(start, end) of the episode under way at `now`, or else of the next one."""
        while now >= self.end:
            start = self._next
            end = start + self._length()
            self._next = start + self.rng.expovariate(1.0 / self.mean_gap)
            while self._next < end:  # a start inside the episode prolongs it
                end = max(end, self._next + self._length())
                self._next += self.rng.expovariate(1.0 / self.mean_gap)
            self.start, self.end = start, end
            self.drawn += 1
        return self.start, self.end

    def begun(self, now: float) -> int:
        """How many episodes have started by `now` (not before the last time asked)."""
        start, _ = self.at(now)
        return self.drawn - (start > now)


class Faults:
    def __init__(
        self, settings: dict[str, float], seed: int | None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rng = random.Random(None if seed is None else seed + 1)
        self.seed = seed
        self.now = now  # emulated seconds: the emulator's Clock.now
        self.rates: dict[str, float] = {}
        self.params: dict[str, float] = dict(FAULT_PARAMS)
        self.episodes: Episodes | None = None
        self._reported = 0  # episodes already handed to the stats
        self.update(settings)

    def update(self, settings: dict[str, Any], reset: bool = False) -> None:
        checked = check_faults(settings, "faults")
        before = [self.params[name] for name in OVERLOAD_PARAMS]
        if reset:
            self.rates = {}
            self.params = dict(FAULT_PARAMS)
        for key, value in checked.items():
            if key in FAULT_PARAMS:
                self.params[key] = value
            elif value > 0:
                self.rates[key] = value
            else:
                self.rates.pop(key, None)
        # A new shape starts a new schedule from now; the same values (workers re-read the whole
        # control file on every change) keep the one under way.
        if self.episodes is None or before != [self.params[name] for name in OVERLOAD_PARAMS]:
            self._new_schedule()

    def _new_schedule(self) -> None:
        self.episodes = None
        self._reported = 0
        if self.params["overload_per_minute"] > 0 and self.params["overload_seconds"] > 0:
            rng = random.Random(None if self.seed is None else f"overload-{self.seed}")
            self.episodes = Episodes(rng, self.params, self.now())

    def describe(self) -> dict[str, Any]:
        return {
            "rates": {name: self.rates.get(name, 0.0) for name in FAULT_NAMES},
            "params": dict(self.params),
        }

    def slowdown(self, now: float) -> float:
        """The latency factor at emulated time `now`: 1 outside the ramp and the episodes."""
        if self.episodes is None:
            return 1.0
        start, end = self.episodes.at(now)
        peak = self.params["overload_slowdown"]
        if now >= start:
            return peak
        ramp = self.params["overload_ramp_seconds"]
        if ramp <= 0 or now < start - ramp:
            return 1.0
        return 1.0 + (peak - 1.0) * (now - (start - ramp)) / ramp

    def in_episode(self, now: float) -> bool:
        if self.episodes is None:
            return False
        start, end = self.episodes.at(now)
        return start <= now < end

    def draw(self, stream: bool) -> Draw:
        if self.episodes is not None:
            return self._draw_overload(stream)
        if not self.rates:  # the common case: no faults configured, no random draws
            return NO_FAULT
        return self._draw(stream, Draw())

    def _draw_overload(self, stream: bool) -> Draw:
        assert self.episodes is not None
        now = self.now()
        start, end = self.episodes.at(now)
        draw = Draw(slowdown=self.slowdown(now))
        begun = self.episodes.begun(now)
        draw.episodes, self._reported = begun - self._reported, begun
        share = self.params["overload_503_share"]
        if start <= now:
            if self.rng.random() < share:
                draw.replace_with = OVERLOAD_503
                return draw
        elif stream and self.rng.random() < share:
            draw.cut_at = start
        return self._draw(stream, draw) if self.rates else draw

    def _draw(self, stream: bool, draw: Draw) -> Draw:
        hit = self._hit
        for name in REPLACING:
            if hit(name):
                draw.replace_with = name
                break
        draw.slow_first_byte = hit("slow_first_byte")
        if not draw.replace_with:
            draw.malformed_json = hit("malformed_json")
            if stream:
                draw.stream_cut = hit("stream_cut")
                draw.stream_stall = hit("stream_stall")
                draw.stream_error_frame = hit("stream_error_frame")
        return draw

    def _hit(self, name: str) -> bool:
        rate = self.rates.get(name, 0.0)
        return rate > 0 and self.rng.random() < rate
