"""Generator health: each process samples its CPU and event-loop lag once a second.

Where samples go (one health.csv per run, written by the master or the only process): workers keep
their samples and send them with every Locust report (every 3 s); the master appends them to
health.csv as they arrive, so rows are in arrival order, not time order (sort by timestamp). A worker
that dies loses its last unreported seconds of samples, like its stats.

    health.csv: timestamp,node,cpu_percent,loop_lag_ms
      timestamp    epoch seconds of the end of the sample's second
      node         <role>-<hostname>-<pid>: local-, master- or worker-; the same hostname-pid as
                   that process's requests-<hostname>-<pid>.csv
      cpu_percent  this process's CPU over the second, % of one core (psutil)
      loop_lag_ms  the largest delay of the gevent hub in the second: how late a 50 ms sleep woke up

A busy generator delays every timer and socket read in its process, so its latencies grow although
the API did not slow down. A reading at or above 90 % CPU or 100 ms lag for 3 samples in a row is
flagged: one warning in the log and one entry in run.json["health_warnings"]. The thresholds are
those reports/analysis.py draws on the report.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import psutil

from metrics.llm_files import AppendedCsv

logger = logging.getLogger(__name__)

HEALTH_FILE = "health.csv"
HEALTH_COLUMNS = ("timestamp", "node", "cpu_percent", "loop_lag_ms")
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
    records (timestamp, node, cpu %, worst lag) and hands the sample to `sink`."""

    def __init__(self, node: str, sink: Any) -> None:
        self.node = node
        self.sink = sink
        self._process = psutil.Process()
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._process.cpu_percent(None)  # the first call only sets the reference point
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        worst_lag = 0.0
        window_start = time.perf_counter()
        while True:
            asked = time.perf_counter()
            gevent.sleep(LAG_TICK_S)
            woke = time.perf_counter()
            worst_lag = max(worst_lag, (woke - asked - LAG_TICK_S) * 1000.0)
            if woke - window_start >= SAMPLE_INTERVAL_S:
                cpu = self._process.cpu_percent(None)
                self.sink((round(time.time(), 3), self.node, round(cpu, 1), round(max(worst_lag, 0.0), 1)))
                worst_lag = 0.0
                window_start = woke

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
        super().__init__(HEALTH_FILE, HEALTH_COLUMNS)
