"""The live charts' time series: one point a second from the run's merged LLM stats, bounded in memory.

Kept by the process that holds the whole run (metrics/roles.py's RunMetrics), sampled while a test
runs and started over when the next test starts. A point holds what the LLM tab draws: TTFT p50/p95
and output tokens/s over Locust's "current" window (about the last 10 s, so the line follows the
load rather than the whole run's average), the spend the budget counts, and each failure kind's
count since the test started.

Bounded without losing the start of a long run: when the series is full, every other point goes
and the sampling interval doubles, so a soak test of hours keeps its whole shape in MAX_POINTS points.
Counts and cost are cumulative, so a dropped point loses no errors or spend, only resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metrics.llm_stats import FAILURE_KIND_NAMES, LlmStats

MAX_POINTS = 600
FIRST_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    t: float  # epoch seconds
    users: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    output_tokens_per_s: float
    requests_per_s: float
    cost_usd: float  # the test's spend so far, as the budget counts it
    errors: dict[str, int] = field(default_factory=dict)  # failure kind -> calls so far (non-zero only)


def point_from_stats(stats: LlmStats, now: float, users: int, spent_usd: float) -> SeriesPoint:
    rps, _, tokens_per_s = stats.total.current_rates(now, stats.started_at)
    counts = stats.total.counts
    return SeriesPoint(
        t=now,
        users=users,
        ttft_p50_ms=stats.current_percentile("ttft", 50),
        ttft_p95_ms=stats.current_percentile("ttft", 95),
        output_tokens_per_s=tokens_per_s,
        requests_per_s=rps,
        cost_usd=spent_usd,
        errors={kind: counts[kind] for kind in FAILURE_KIND_NAMES if counts.get(kind)},
    )


class LlmSeries:
    def __init__(self, max_points: int = MAX_POINTS, first_interval_s: float = FIRST_INTERVAL_S) -> None:
        if max_points < 2:
            raise ValueError("a time series needs room for at least 2 points")
        self.max_points = max_points
        self.first_interval_s = first_interval_s
        self.points: list[SeriesPoint] = []
        self.interval_s = first_interval_s

    def reset(self) -> None:
        """A new test: its charts start empty."""
        self.points = []
        self.interval_s = self.first_interval_s

    def due(self, now: float) -> bool:
        return not self.points or now - self.points[-1].t >= self.interval_s * 0.999

    def add(self, point: SeriesPoint) -> None:
        if self.points and point.t < self.points[-1].t:
            return  # a clock step back: keep the series in time order
        self.points.append(point)
        if len(self.points) > self.max_points:
            # Keep the newest point: the chart's right edge is "now".
            self.points = self.points[::-1][::2][::-1]
            self.interval_s *= 2

    def as_json(self) -> dict[str, Any]:
        """Columns for the browser: {"t": [...], "ttft_p50_ms": [...], ..., "errors": {kind: [...]}}."""
        points = self.points
        kinds = [kind for kind in FAILURE_KIND_NAMES if any(p.errors.get(kind) for p in points)]
        return {
            "t": [round(p.t, 3) for p in points],
            "users": [p.users for p in points],
            "ttft_p50_ms": [_round(p.ttft_p50_ms) for p in points],
            "ttft_p95_ms": [_round(p.ttft_p95_ms) for p in points],
            "output_tokens_per_s": [_round(p.output_tokens_per_s) for p in points],
            "requests_per_s": [_round(p.requests_per_s) for p in points],
            "cost_usd": [round(p.cost_usd, 9) for p in points],
            "errors": {kind: [p.errors.get(kind, 0) for p in points] for kind in kinds},
            "interval_s": self.interval_s,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
