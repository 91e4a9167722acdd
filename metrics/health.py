"""Generator health: each process samples its CPU and event-loop lag once a second.

Where samples go (one health.csv per run, written by the master or the only process; its columns are
core/results.py's HEALTH): workers keep their samples and send them with every Locust report (every
3 s); the master appends them to health.csv as they arrive, so rows are in arrival order, not time
order (sort by timestamp). A worker that dies loses its last unreported seconds of samples, like its
stats. CPU is psutil's, % of one core; the loop lag is how late a 50 ms sleep woke up, the worst in
the second.

A busy generator delays every timer and socket read in its process, so its latencies grow although
the API did not slow down. A reading at or above 90 % CPU or 100 ms lag for 3 samples in a row is
flagged: one warning in the log and one entry in run.json["health_warnings"]. The thresholds are
those reports/analysis.py draws on the report.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import psutil

from core.results import HEALTH
from metrics.results import AppendedCsv

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
LAG_TICK_S = 0.05
CPU_BUSY_PERCENT = 90.0
LOOP_LAG_SLOW_MS = 100.0
SUSTAINED_SAMPLES = 3

Sample = tuple[float, str, float, float]  # timestamp, node, cpu_percent, loop_lag_ms


def node_name(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


class HealthSampler:
    """A greenlet that wakes every 50 ms: how late it wakes is the hub's lag; every second it
    records (timestamp, node, cpu %, worst lag) and hands the sample to `sink`.

    `clock` (seconds, for the lag), `sleep`, `wall_clock` (the sample's timestamp) and `cpu` (this
    process's CPU % since the last call) default to the real ones; tests pass their own and call
    tick() by hand instead of start().
    """

    def __init__(
        self,
        node: str,
        sink: Callable[[Sample], object],
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], object] = gevent.sleep,
        wall_clock: Callable[[], float] = time.time,
        cpu: Callable[[], float] | None = None,
    ) -> None:
        self.node = node
        self.sink = sink
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._cpu = cpu if cpu is not None else functools.partial(psutil.Process().cpu_percent, None)
        self._greenlet: gevent.Greenlet | None = None
        self._worst_lag_ms = 0.0
        self._window_start: float | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self.begin()
            self._greenlet = gevent.spawn(self._run)

    def begin(self) -> None:
        """Open the first one-second window (and set psutil's CPU reference point)."""
        self._cpu()  # the first call only sets the reference point
        self._worst_lag_ms = 0.0
        self._window_start = self._clock()

    def _run(self) -> None:
        while True:
            self.tick()

    def tick(self) -> Sample | None:
        """Sleep one LAG_TICK_S and measure how late we woke; at the end of a window, hand the
        sample to the sink and return it."""
        if self._window_start is None:
            self.begin()
        asked = self._clock()
        self._sleep(LAG_TICK_S)
        woke = self._clock()
        self._worst_lag_ms = max(self._worst_lag_ms, (woke - asked - LAG_TICK_S) * 1000.0)
        assert self._window_start is not None
        if woke - self._window_start < SAMPLE_INTERVAL_S:
            return None
        sample = (
            round(self._wall_clock(), 3),
            self.node,
            round(self._cpu(), 1),
            round(max(self._worst_lag_ms, 0.0), 1),
        )
        self.sink(sample)
        self._worst_lag_ms = 0.0
        self._window_start = woke
        return sample

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None


@dataclass
class _Streak:
    start: float = 0.0
    end: float = 0.0
    samples: int = 0
    peak: float = 0.0
    flagged: dict[str, Any] | None = None


@dataclass
class HealthDetector:
    """Finds stretches of SUSTAINED_SAMPLES consecutive high readings per node and metric."""

    warnings: list[dict[str, Any]] = field(default_factory=list)
    _streaks: dict[tuple[str, str], _Streak] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        timestamp, node, cpu, lag = sample
        for metric, value, limit in (
            ("cpu_percent", cpu, CPU_BUSY_PERCENT),
            ("loop_lag_ms", lag, LOOP_LAG_SLOW_MS),
        ):
            key = (node, metric)
            if value < limit:
                self._streaks.pop(key, None)
                continue
            streak = self._streaks.setdefault(key, _Streak(start=timestamp))
            streak.samples += 1
            streak.end = timestamp
            streak.peak = max(streak.peak, value)
            if streak.flagged is not None:
                streak.flagged.update(end=streak.end, peak=streak.peak, samples=streak.samples)
            elif streak.samples >= SUSTAINED_SAMPLES:
                streak.flagged = {
                    "node": node,
                    "metric": metric,
                    "threshold": limit,
                    "start": streak.start,
                    "end": streak.end,
                    "peak": streak.peak,
                    "samples": streak.samples,
                }
                self.warnings.append(streak.flagged)
                unit = "%" if metric == "cpu_percent" else " ms"
                logger.warning(
                    "load generator %s: %s at or above %g%s for %d s (peak %g%s); latencies measured now "
                    "may be inflated by the generator, not the API",
                    node,
                    "CPU" if metric == "cpu_percent" else "event-loop lag",
                    limit,
                    unit,
                    streak.samples,
                    streak.peak,
                    unit,
                )


class HealthLog(AppendedCsv):
    """health.csv in the results folder, flushed at every write so a killed run keeps its samples."""

    def __init__(self) -> None:
        super().__init__(HEALTH)
