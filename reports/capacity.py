"""Latency against throughput: knee detection, SLO checks per load window, the capacity statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.results import RunInfo
from core.slo import SloGate, all_passed, evaluate, metric_value
from reports.charts import Stage
from reports.slo import latency_sources, parse_slo, slo_rows, window_stats

# A knee must be a real bend: the normalised curve must fall at least this far below the diagonal,
# and latency past it must grow by at least KNEE_MIN_RISE times its lowest value.
KNEE_MIN_DISTANCE = 0.15
KNEE_MIN_RISE = 1.5
KNEE_BINS = 12
MIN_WINDOW_S = 5.0
MIN_WINDOW_REQUESTS = 10


@dataclass(frozen=True)
class Knee:
    throughput: float
    latency: float


def knee_curve(x: np.ndarray, y: np.ndarray, bins: int = KNEE_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Noisy (throughput, latency) points -> medians per equal-width throughput bin, sorted by x."""
    mask = ~(np.isnan(x) | np.isnan(y))
    x, y = np.asarray(x, float)[mask], np.asarray(y, float)[mask]
    if x.size == 0:
        return x, y
    edges = np.linspace(x.min(), x.max(), bins + 1)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"bin": index, "x": x, "y": y}).groupby("bin").median()
    return frame["x"].to_numpy(), frame["y"].to_numpy()


def find_knee(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Knee | None:
    """The load beyond which latency grows much faster than throughput (Kneedle, convex increasing).

    Both axes are scaled to [0, 1]; the knee is the point furthest below the diagonal, i.e. where the
    curve turns from flat to steep. None when there are too few points, latency hardly rises, or the
    curve has no bend (close to a straight line).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if xs.size < 4 or xs[-1] <= xs[0]:
        return None
    low, high = float(np.nanmin(ys)), float(np.nanmax(ys))
    if low <= 0 or high / low < KNEE_MIN_RISE:
        return None
    x_norm = (xs - xs[0]) / (xs[-1] - xs[0])
    y_norm = (ys - low) / (high - low)
    distance = x_norm - y_norm
    best = int(np.argmax(distance))
    if distance[best] < KNEE_MIN_DISTANCE or best == xs.size - 1:
        return None
    return Knee(float(xs[best]), float(ys[best]))


# ---- load windows and capacity ------------------------------------------------------------------


def windows(stages: Sequence[Stage], span: tuple[float, float]) -> list[Stage]:
    """Stages when run.json has them (each is one sustained load level); else fixed windows."""
    usable = [stage for stage in stages if stage.end_s - stage.start_s >= MIN_WINDOW_S]
    if usable:
        return usable
    start, end = span
    width = float(np.clip((end - start) / 10.0, 10.0, 60.0))
    count = max(1, int((end - start) // width))
    return [
        Stage(
            f"{start + i * width:.0f}-{start + (i + 1) * width:.0f} s",
            start + i * width,
            start + (i + 1) * width,
        )
        for i in range(count)
    ]


@dataclass
class Capacity:
    # per window: rps, tokens/min, what was measured (failure %, e2e p95), one column per criterion
    # (its value), and `met` (None when no criterion was set)
    table: pd.DataFrame
    criteria: list[SloGate]  # the user's --slo gates that apply to a window; none set: nothing judged
    ignored: list[str]  # SLO expressions that cannot be judged per window
    best_rps: float | None
    best_tokens_per_min: float | None
    best_window: str | None

    @property
    def judged(self) -> bool:
        """Whether the windows were judged at all: only against gates the user set."""
        return bool(self.criteria)

    def busiest(self) -> dict[str, Any] | None:
        """The window with the highest request rate, judged or not: what was measured."""
        if self.table.empty:
            return None
        return self.table.loc[self.table["rps"].idxmax()].to_dict()


def criteria(run: RunInfo) -> tuple[list[SloGate], list[str]]:
    """The run's SLOs that can be judged per window, and those that cannot. No default is added:
    a statement about meeting SLOs is only ever about gates the user set."""
    parsed, ignored = [], []
    for row in slo_rows(run):
        slo = parse_slo(row["expr"])
        # `requests>=N` is about the whole run: a window's count says nothing about capacity.
        if slo is None or slo.metric == "requests":
            ignored.append(row["expr"])
        else:
            parsed.append(slo)
    return parsed, ignored


def capacity(requests: pd.DataFrame, origin: float, spans: Sequence[Stage], run: RunInfo) -> Capacity:
    """The highest sustained rps and output tokens/min among windows that met every SLO the user
    set; without gates, each window's measured figures and no capacity.

    Requests belong to the window they started in, so each window pairs the load offered in it with
    the latency that load caused (completions lag behind when latency jumps at a stage change).
    """
    applied, ignored = criteria(run)
    latency = latency_sources(applied) | {"e2e"}
    starts = requests["start_time"].to_numpy() - origin
    rows = []
    for span in spans:
        part = requests[(starts >= span.start_s) & (starts < span.end_s)]
        duration = span.end_s - span.start_s
        if len(part) < MIN_WINDOW_REQUESTS:
            continue
        stats = window_stats(part, duration, latency)
        row: dict[str, Any] = {
            "window": span.name,
            "start_s": span.start_s,
            "end_s": span.end_s,
            "requests": len(part),
            "rps": len(part) / duration,
            "tokens_per_min": float(part["output_tokens"].sum()) / duration * 60.0,
            "failure_pct": metric_value("error_rate", stats),
            "e2e_p95_ms": metric_value("e2e_p95", stats),
        }
        results = evaluate(applied, stats)
        row.update({result.gate.expr: result.value for result in results})
        row["met"] = all_passed(results) if applied else None
        rows.append(row)
    table = pd.DataFrame(rows)
    passing = table[table["met"].astype(bool)] if applied and len(table) else table.iloc[0:0]
    if passing.empty:
        return Capacity(table, applied, ignored, None, None, None)
    best = passing.loc[passing["rps"].idxmax()]
    return Capacity(
        table,
        applied,
        ignored,
        float(best["rps"]),
        float(passing["tokens_per_min"].max()),
        str(best["window"]),
    )


def throughput_latency_points(
    series: pd.DataFrame, column: str = "e2e_ms_p95"
) -> tuple[np.ndarray, np.ndarray]:
    """(rps, latency) per time bin of llm_analysis.time_series, bins with no answers left out."""
    if column not in series:
        return np.array([]), np.array([])
    frame = series[["rps", column]].dropna()
    return frame["rps"].to_numpy(), frame[column].to_numpy()
