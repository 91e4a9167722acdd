"""Driving shapes by hand for the shapes tests: `from tests.shapes.waiting import ScriptedTicks`.

No test here sleeps a fixed time and then looks: unit tests move a ManualClock (shapes/clock.py) by
hand; tests with a real Locust runner wait for a condition (wait_until) or drive the shape on a
ManualClock with ScriptedTicks, so what they see does not depend on how busy the machine is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapes
from shapes.clock import ManualClock
from tests.waiting import DEFAULT_TIMEOUT_S, wait_until


@dataclass
class Tick:
    """One tick of a shape driven by ScriptedTicks."""

    offset: float  # run time the shape saw, seconds on the manual clock
    users: int  # users running just before the tick (the previous tick's spawning complete)
    classes: dict[str, int]  # the same, by user class
    stage: str  # the stage after the tick ("" once the run ended)
    result: Any  # what tick() returned to Locust


@dataclass
class ScriptedTicks:
    """Drives a shape under Locust's real runner on a ManualClock: the shape ticks at scripted run times.

    Locust calls shape.tick() about once a second. Before tick k this wrapper waits until the users
    asked for by tick k-1 are running (`ready`), moves the clock to the run time offsets[k] (which
    plays every simulated arrival and call in between), calls `settled` (e.g. wait for worker
    reports; not before the first tick: nothing happened yet), then ticks. So the shape sees exactly
    the scripted times however slow the machine is, and the test reads what happened in `ticks`.
    An error inside the wrapper is kept in `error` and re-raised by wait_for_end().
    """

    environment: Any
    clock: ManualClock
    offsets: Sequence[float]
    ready: Callable[[Any], bool] | None = None  # (previous tick's result) -> its users are running
    settled: Callable[[], None] | None = None
    ticks: list[Tick] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        shape = self.environment.shape_class
        assert shape is not None
        self.shape = shape
        self._original = type(shape).tick.__get__(shape)  # a fresh wrapper for every run
        shape.tick = self._tick

    def _users_running(self, result: Any) -> bool:
        return result is None or self.environment.runner.user_count == result[0]

    def _tick(self) -> Any:
        try:
            index = len(self.ticks)
            assert index < len(self.offsets), f"the shape did not end the run by run time {self.offsets[-1]}"
            if self.ticks:
                previous = self.ticks[-1].result
                ready = self.ready or self._users_running
                wait_until(lambda: ready(previous), what=f"the users of tick {index - 1}: {previous}")
            runner = self.environment.runner
            users, classes = runner.user_count, dict(runner.user_classes_count)
            self.clock.advance(self.shape.start_time + self.offsets[index] - self.clock.monotonic())
            if self.settled is not None and self.ticks:
                self.settled()
            result = self._original()
            self.ticks.append(
                Tick(self.offsets[index], users, classes, shapes.current_stage(self.environment), result)
            )
            return result
        except BaseException as error:
            self.error = error
            raise

    def wait_for_end(self, ended: Callable[[], bool], timeout: float = 3 * DEFAULT_TIMEOUT_S) -> None:
        """Wait until `ended()` (the runner stopped), re-raising an error from inside a tick.

        The timeout covers the whole run: every tick and every wait inside one.
        """
        wait_until(lambda: self.error is not None or ended(), timeout, what="the shape to end the run")
        if self.error is not None:
            raise self.error
