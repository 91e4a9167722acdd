"""Open-model decisions as pure code: how many users an arrival rate needs, and the capacity search.

Nothing here reads a clock or a runner: the shapes in load_shapes.py pass in elapsed seconds, the
pacer's feedback and a function that returns a step's window of calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.slo import SloGate, WindowStats, evaluate, percentile

# Spare users on top of the ones measured busy: Poisson arrivals bunch, and latency wanders.
HEADROOM = 1.25
# When arrivals are already waiting for a user, the busy count says nothing about the true need
# (every user is busy): grow by half at each tick until the backlog clears or --max-users is hit.
SATURATED_GROWTH = 1.5
# Spawn rate while the pool grows: Locust warns above 100 users/s.
OPEN_MODEL_SPAWN_RATE = 100.0


def initial_users(rate: float, max_users: int) -> int:
    """Users to start with: enough for calls of about one second, before any feedback."""
    return max(1, min(max_users, math.ceil(rate) + 1))


@dataclass
class UserSizer:
    """Grows the user pool so every arrival finds a free user; never shrinks it.

    Stopping a Locust user kills it mid-call, which would turn a rate change into spurious errors,
    so the pool only grows, up to max_users.
    """

    max_users: int
    target: int = 0

    def update(self, rate: float, user_count: int, signal: Mapping[str, Any] | None) -> int:
        """The user count to ask for. `signal` is the pacer's take_signal() (summed over workers)."""
        want = initial_users(rate, self.max_users)
        if signal:
            busy = max(0.0, user_count - float(signal.get("waiting_avg", 0.0)))
            measured_rate = float(signal.get("rate") or 0.0)
            # Little's law: busy users scale with the arrival rate at the same latency.
            scale = rate / measured_rate if measured_rate > 0 else 1.0
            want = max(want, math.ceil(busy * scale * HEADROOM) + 1)
            if int(signal.get("backlog", 0)) > 0:
                want = max(want, math.ceil(max(user_count, self.target) * SATURATED_GROWTH) + 1)
        self.target = min(self.max_users, max(self.target, want))
        return self.target


@dataclass
class CapacityStep:
    index: int
    rate: float
    start_s: float
    end_s: float
    requests: int = 0
    achieved_rps: float = 0.0
    lag_p50_ms: float | None = None
    lag_p95_ms: float | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    passed: bool = False
    generator_limited: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rate": self.rate,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "requests": self.requests,
            "achieved_rps": round(self.achieved_rps, 3),
            "lag_p50_ms": self.lag_p50_ms,
            "lag_p95_ms": self.lag_p95_ms,
            "gates": self.gates,
            "passed": self.passed,
            "generator_limited": self.generator_limited,
        }


WindowFn = Callable[[float, float], WindowStats]  # (start offset s, end offset s) -> the calls started then


class CapacitySearch:
    """Steps the arrival rate up by rate_step every step_duration until a step breaks the SLO.

    Step k runs at start_rate + k * rate_step over [k*D, (k+1)*D). It is judged on the calls that
    started in it, once the calls still in flight at its end had time to finish and reach this
    process: settle_s plus the step's p99 latency so far (at most one step); the next step runs
    meanwhile. The capacity is
    the rate of the last step that passed. The search also ends when the generator itself falls
    behind (median schedule lag over lag_limit_ms: the step did not get the load it asked for),
    at run_time_s, or after max_steps.
    """

    def __init__(
        self,
        start_rate: float,
        rate_step: float,
        step_duration_s: float,
        gates: list[SloGate],
        run_time_s: float | None = None,
        settle_s: float = 1.0,
        lag_limit_ms: float = 500.0,
        max_steps: int = 1000,
    ) -> None:
        self.start_rate = start_rate
        self.rate_step = rate_step
        self.step_duration_s = step_duration_s
        self.gates = gates
        self.run_time_s = run_time_s
        self.settle_s = settle_s
        self.lag_limit_ms = lag_limit_ms
        self.max_steps = max_steps
        self.steps: list[CapacityStep] = []
        self.done = False
        self.stop_reason = ""
        self.capacity_rps: float | None = None
        self._judge_at: dict[int, float] = {}

    def rate_of_step(self, index: int) -> float:
        return self.start_rate + index * self.rate_step

    def step_index(self, t: float) -> int:
        return int(max(0.0, t) // self.step_duration_s)

    def rate_at(self, t: float) -> float | None:
        """The target rate at t, or None once the search is over (call update(t) first)."""
        return None if self.done else self.rate_of_step(self.step_index(t))

    def update(self, t: float, window: WindowFn) -> None:
        """Judge every step whose time has come; sets done, stop_reason and capacity_rps when over."""
        if self.done:
            return
        # At the end (run time used up, or max_steps run), steps that finished are judged at once.
        if self.run_time_s is not None and t >= self.run_time_s:
            ending = "run_time"
        elif self.step_index(t) >= self.max_steps:
            ending = "max_steps"
        else:
            ending = ""
        while not self.done:
            index = len(self.steps)
            start, end = index * self.step_duration_s, (index + 1) * self.step_duration_s
            if t < end or index >= self.max_steps:
                break
            if index not in self._judge_at:
                self._judge_at[index] = end + self._settle_time(window(start, end))
            if t < self._judge_at[index] and not ending:
                break
            self._judge(index, start, end, window(start, end))
        if ending and not self.done:
            self._finish(ending)

    def _settle_time(self, stats: WindowStats) -> float:
        # settle_s covers delivery (a worker's samples reach the master with its next report); the
        # calls' own latency is capped at one step so a hung server cannot stall the judgement.
        slowest = (percentile(stats.e2e_ms, 99) or 0.0) / 1000.0
        return self.settle_s + min(slowest, self.step_duration_s)

    def _judge(self, index: int, start: float, end: float, stats: WindowStats) -> None:
        results = evaluate(self.gates, stats)
        step = CapacityStep(
            index=index,
            rate=self.rate_of_step(index),
            start_s=start,
            end_s=end,
            requests=stats.requests,
            achieved_rps=stats.requests / stats.duration_s if stats.duration_s > 0 else 0.0,
            lag_p50_ms=percentile(stats.lag_ms, 50),
            lag_p95_ms=percentile(stats.lag_ms, 95),
            gates=[result.as_dict() for result in results],
        )
        step.generator_limited = step.lag_p50_ms is not None and step.lag_p50_ms > self.lag_limit_ms
        step.passed = stats.requests > 0 and all(r.passed for r in results) and not step.generator_limited
        self.steps.append(step)
        if step.generator_limited:
            self._finish("generator_limited")
        elif not step.passed:
            self._finish("slo_breached" if stats.requests else "no_requests")
        else:
            self.capacity_rps = step.rate

    def _finish(self, reason: str) -> None:
        self.done = True
        self.stop_reason = reason

    def result(self) -> dict[str, Any]:
        return {
            "capacity_rps": self.capacity_rps,
            "stop_reason": self.stop_reason or "running",
            "slo": [gate.expr for gate in self.gates],
            "steps": [step.as_dict() for step in self.steps],
        }
