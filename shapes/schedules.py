"""Closed-model schedules (ramp, step, spike, soak) as pure functions of elapsed seconds.

A schedule is a list of stages; each stage moves the user count linearly from one level to another
(a constant stage has equal ends). `Schedule.at(t)` answers what tick() should return at t seconds,
or None once the schedule is over, so every shape can be tested without a clock or a runner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.options import OptionError

# Stage names per shape, in order: --stage-classes keys must be one of these.
STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "ramp": ("ramp-up", "hold", "ramp-down"),
    "spike": ("baseline", "spike", "recovery"),
    "soak": ("warm-up", "soak"),
    "arrival": ("arrival",),
}
StageClasses = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    duration_s: float
    users_from: int
    users_to: int
    classes: tuple[str, ...] | None = None  # user class names for users added in this stage; None = all


@dataclass(frozen=True, slots=True)
class Plan:
    """What the shape asks for at one moment."""

    stage: str
    stage_start_s: float  # offset of the stage start from the run start
    stage_end_s: float | None  # None when the stage lasts until the run is stopped
    users: int
    spawn_rate: float
    rate: float | None = None  # arrivals per second (open model); None for closed-model shapes
    classes: tuple[str, ...] | None = None


class Schedule:
    def __init__(self, stages: list[Stage]) -> None:
        # Zero-length stages are skipped (a ramp with no hold); the next stage's jump is measured
        # from whatever level the schedule really was at.
        self.stages = [stage for stage in stages if stage.duration_s > 0]
        if not self.stages:
            raise OptionError("the shape's schedule is empty: give at least one stage a duration above 0")
        self._offsets: list[float] = []
        self._spawn_rates: list[float] = []
        offset, previous_users = 0.0, 0
        for stage in self.stages:
            self._offsets.append(offset)
            self._spawn_rates.append(_spawn_rate(stage, previous_users))
            offset += stage.duration_s
            previous_users = stage.users_to
        self.total_s = offset
        self.uses_classes = any(stage.classes for stage in self.stages)

    def at(self, t: float) -> Plan | None:
        """The plan at t seconds since the start; None at or after the end of the last stage."""
        if t >= self.total_s:
            return None
        t = max(0.0, t)
        index = 0
        while index + 1 < len(self.stages) and t >= self._offsets[index + 1]:
            index += 1
        stage, start = self.stages[index], self._offsets[index]
        fraction = (t - start) / stage.duration_s
        users = _round_half_up(stage.users_from + (stage.users_to - stage.users_from) * fraction)
        return Plan(
            stage=stage.name,
            stage_start_s=start,
            stage_end_s=start + stage.duration_s,
            users=users,
            spawn_rate=self._spawn_rates[index],
            classes=stage.classes,
        )

    def boundaries(self) -> list[tuple[str, float, float]]:
        """(stage name, start offset, end offset) of every stage, for reports and tests."""
        return [(s.name, o, o + s.duration_s) for s, o in zip(self.stages, self._offsets, strict=True)]


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _spawn_rate(stage: Stage, previous_users: int) -> float:
    """Users per second Locust should spawn or stop in this stage.

    A linear stage needs at least its slope, so each one-second tick's change lands within the tick.
    A constant stage is entered by a sudden jump (a spike, a new step): the whole jump at once.
    """
    if stage.users_from != stage.users_to:
        return float(max(1, math.ceil(abs(stage.users_to - stage.users_from) / stage.duration_s)))
    return float(max(1, abs(stage.users_to - previous_users)))


def ramp(
    peak_users: int, ramp_up_s: float, hold_s: float, ramp_down_s: float, classes: StageClasses | None = None
) -> Schedule:
    """Linear 0 -> peak over ramp-up, hold at peak, linear peak -> 0 over ramp-down, then stop."""
    classes = classes or {}
    return Schedule(
        [
            Stage("ramp-up", ramp_up_s, 0, peak_users, classes.get("ramp-up")),
            Stage("hold", hold_s, peak_users, peak_users, classes.get("hold")),
            Stage("ramp-down", ramp_down_s, peak_users, 0, classes.get("ramp-down")),
        ]
    )


def step_stage_names(steps: int) -> tuple[str, ...]:
    return tuple(f"step-{index}" for index in range(1, steps + 1))


def step(
    step_users: int, step_duration_s: float, steps: int, classes: StageClasses | None = None
) -> Schedule:
    """`steps` plateaus of `step_duration_s`, the k-th at k * step_users, then stop."""
    classes = classes or {}
    names = step_stage_names(steps)
    return Schedule(
        [
            Stage(name, step_duration_s, k * step_users, k * step_users, classes.get(name))
            for k, name in enumerate(names, start=1)
        ]
    )


def spike(
    base_users: int,
    spike_users: int,
    spike_at_s: float,
    spike_duration_s: float,
    recovery_s: float,
    classes: StageClasses | None = None,
) -> Schedule:
    """Baseline until spike-at, base + spike users for spike-duration, baseline again for recovery.

    `spike_users` are added on top of the baseline, so a streaming-only spike (--stage-classes
    spike=StreamingUser) keeps the mixed baseline running and stacks streaming users on it; Locust
    stops the most recently started users first, so the recovery removes exactly the spike's users.
    """
    classes = classes or {}
    peak = base_users + spike_users
    return Schedule(
        [
            Stage("baseline", spike_at_s, base_users, base_users, classes.get("baseline")),
            Stage("spike", spike_duration_s, peak, peak, classes.get("spike")),
            Stage("recovery", recovery_s, base_users, base_users, classes.get("recovery")),
        ]
    )


def soak(
    soak_users: int, warm_up_s: float, run_time_s: float, classes: StageClasses | None = None
) -> Schedule:
    """Linear 0 -> soak users over warm-up, then hold until the run time is used up."""
    classes = classes or {}
    if warm_up_s >= run_time_s:
        raise OptionError(
            f"--warm-up ({warm_up_s:g}s) must be shorter than --run-time ({run_time_s:g}s) for --shape soak"
        )
    return Schedule(
        [
            Stage("warm-up", warm_up_s, 0, soak_users, classes.get("warm-up")),
            Stage("soak", run_time_s - warm_up_s, soak_users, soak_users, classes.get("soak")),
        ]
    )
