"""The load-dependent latency model: when each chunk of an answer goes out, and who waits.

Per model (figures: the catalogue's `emulator` block over lineup.ModelProfile's defaults):
- a base time to first token, lognormal (median, sigma);
- plus prompt processing (prompt tokens, images included, over a tokens/s rate: linear, as the
  2026 measurements above 16K tokens are);
- plus thinking (thought tokens at this request's output rate);
- all of it stretched, for a share `ttft_tail_share` of requests, by a slow-path factor (lognormal
  around `ttft_tail_factor`): the mixture that gives production its heavy p99;
- then the answer at tokens/s, drawn per request around the model's median (`output_rate_sigma`),
  delivered in chunks of `chunk_tokens`, each chunk's delay jittered by +/- output_jitter.
Capacity is a number of concurrent slots; past it, a request waits in a bounded FIFO queue
(`queue_limit`, 0 in the realistic profile: the real API answers 503 at once rather than queue) and
one that waits longer than the queue timeout gets 503 UNAVAILABLE (or 504); a full queue answers
503 at once. Busy slots also slow everyone (`load_slowdown`), so latency grows with load first.

Every delay is multiplied by the emulator's time scale (0.01 -> a 100x faster world), so tests
can play minutes of behaviour in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from emulator.errors import server_error
from emulator.profiles import ModelProfile


@dataclass(slots=True)
class Plan:
    first_delay_s: float  # real seconds before the first answer chunk (time-scaled, thinking included)
    thinking_s: float  # the part of first_delay_s spent thinking
    chunk_delays_s: list[float]  # real seconds before each later chunk

    @property
    def total_s(self) -> float:
        return self.first_delay_s + sum(self.chunk_delays_s)


ZERO_PLAN = Plan(0.0, 0.0, [])  # no wait anywhere: later chunks past the list follow at once


def is_instant(profile: ModelProfile) -> bool:
    """No latency at all: plan_for would draw nothing and plan only zeros for this model."""
    return (
        profile.ttft_median_ms <= 0
        and profile.prompt_tokens_per_s <= 0
        and profile.ttft_tail_share <= 0
        and profile.output_tokens_per_s <= 0
    )


class Clock:
    """Scaled time. A time scale of 0 makes every delay vanish.

    now() is emulated seconds since the clock was made: real seconds over the time scale, so a
    0.01 scale runs a minute of episodes (emulator.faults' overload) in 0.6 real seconds. At a
    time scale of 0 the emulated world has no time of its own; now() then follows real time, so
    time-driven faults still come and go. Tests inject `real` (a manual clock) to step time."""

    def __init__(self, time_scale: float, real: Callable[[], float] = time.monotonic) -> None:
        self.time_scale = max(0.0, time_scale)
        self._real = real
        self._origin = real()
        self._per_real_s = 1.0 / self.time_scale if self.time_scale > 0 else 1.0

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def now(self) -> float:
        return (self._real() - self._origin) * self._per_real_s


async def pause(seconds: float) -> None:
    """Sleep real seconds; nothing at all for zero, so the `fast` profile never yields needlessly."""
    if seconds > 0:
        await asyncio.sleep(seconds)


class Slots:
    """Concurrent capacity of one model, with a bounded FIFO queue in front of it."""

    def __init__(self, capacity: int, queue_limit: int) -> None:
        self.capacity = max(1, capacity)
        self.queue_limit = max(0, queue_limit)
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def busy_fraction(self) -> float:
        return min(1.0, self.busy / self.capacity)

    def try_acquire(self) -> bool:
        """Take a free slot at once, if one is free and nobody queues for it."""
        if self.busy < self.capacity and not self._waiters:
            self.busy += 1
            return True
        return False

    async def acquire(self, timeout_s: float, timeout_status: int) -> None:
        """Take a slot, waiting up to timeout_s (real seconds); raise 503/504 when it cannot."""
        if self.busy < self.capacity and not self._waiters:
            self.busy += 1
            return
        if len(self._waiters) >= self.queue_limit:
            error = server_error(503)
            error.fault = "queue_full"
            raise error
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we gave up: pass it on.
                self.release()
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, asyncio.CancelledError):
                raise
            error = server_error(timeout_status)
            error.fault = "queue_timeout"
            raise error from None

    def release(self) -> None:
        # Hand the slot straight to the oldest live waiter, so the queue is FIFO.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1


def plan_for(
    profile: ModelProfile,
    rng: random.Random,
    clock: Clock,
    prompt_tokens: int,
    output_tokens: int,
    thoughts_tokens: int,
    busy_fraction: float,
    factor: float = 1.0,
) -> Plan:
    """Delays for one answer of `output_tokens`, cut into chunks of profile.chunk_tokens; `factor`
    stretches them all (an overload episode's ramp, emulator.faults)."""
    slowdown = (1.0 + profile.load_slowdown * busy_fraction) * clock.time_scale * factor
    ttft = 0.0
    if profile.ttft_median_ms > 0:
        ttft = rng.lognormvariate(math.log(profile.ttft_median_ms / 1000.0), profile.ttft_sigma)
    if profile.prompt_tokens_per_s > 0:
        ttft += prompt_tokens / profile.prompt_tokens_per_s
    slow = slow_path_factor(profile, rng)
    chunk_tokens = max(1, profile.chunk_tokens)
    chunks = max(1, math.ceil(output_tokens / chunk_tokens))
    rate = profile.output_tokens_per_s
    if rate <= 0:
        return Plan(ttft * slow * slowdown, 0.0, [0.0] * (chunks - 1))
    if profile.output_rate_sigma > 0:
        rate *= rng.lognormvariate(0.0, profile.output_rate_sigma)
    thinking = thoughts_tokens / rate * slow
    # The first chunk's own decoding is part of TTFT.
    ttft = ttft * slow + thinking + min(chunk_tokens, output_tokens) / rate
    remaining = output_tokens - chunk_tokens
    delays: list[float] = []
    jitter = profile.output_jitter
    for _ in range(chunks - 1):
        tokens = min(chunk_tokens, remaining)
        remaining -= tokens
        spread = 1.0 + jitter * (2.0 * rng.random() - 1.0) if jitter else 1.0
        delays.append(tokens / rate * spread * slowdown)
    return Plan(ttft * slowdown, thinking * slowdown, delays)


def slow_path_factor(profile: ModelProfile, rng: random.Random) -> float:
    """1, or for a share of requests (ttft_tail_share) a lognormal factor around ttft_tail_factor
    that stretches everything before the first token, prompt processing and thinking included: a
    request that lands on a busy replica is slow at all of it. This mixture, not a wider lognormal,
    is what gives a p99 several times the median while keeping the body tight."""
    if profile.ttft_tail_share <= 0 or rng.random() >= profile.ttft_tail_share:
        return 1.0
    sigma = profile.ttft_tail_sigma
    factor = profile.ttft_tail_factor
    return max(1.0, rng.lognormvariate(math.log(factor), sigma) if sigma > 0 else factor)
