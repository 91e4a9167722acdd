"""SLOs in a report: the run's own verdicts from run.json, and the same gates judged per load window.

The language (metrics, units, nearest-rank percentiles, the pass rule) is core/slo.py's, the one
the run itself judged with: this module only turns a window of the per-request log (a DataFrame
slice with llm_analysis.add_derived's columns) into core.slo.WindowStats. An expression the
run's parser rejects is not guessed at here either: the report lists it as not judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from core.options import OptionError
from core.outcome import BLOCKED, CANCELLED
from core.results import RunInfo
from core.slo import TIME_METRIC, SloGate, WindowStats, metric_value
from core.slo import parse_slo as parse_gates


def parse_slo(expr: str) -> SloGate | None:
    """One expression (`ttft_p95<=800ms`, `error_rate<=1%`, `rps>=50`...); None when not understood."""
    try:
        gates = parse_gates(expr)
    except OptionError:
        return None
    # run.json holds one gate per entry; text with several gates in it is not one criterion.
    return gates[0] if len(gates) == 1 else None


# Latency sources of core.slo's time metrics -> (request-log column, whether failed calls count).
_LATENCY_COLUMNS = {
    "e2e": ("e2e_ms", False),
    "ttft": ("ttft_ms", False),
    "tpot": ("tpot_ms", False),
    "lag": ("schedule_lag_ms", True),  # how late a call started: failed calls started late too
}


def latency_sources(gates: Iterable[SloGate]) -> set[str]:
    """The latency lists (e2e, ttft, tpot, lag) some gate reads; window_stats fills only those."""
    return {match.group(1) for gate in gates if (match := TIME_METRIC.match(gate.metric))}


def window_stats(part: pd.DataFrame, duration_s: float, latency: Iterable[str] | None = None) -> WindowStats:
    """The calls of one window as core.slo counts them, built column-wise: a window of a long run
    may hold a million calls. Failed means llm_analysis's `failed` flag (the failure kinds), so the
    report's error rate and its SLO values agree; e2e, ttft and tpot hold answered calls only.
    `latency` names the lists to fill (None: all); they come sorted, which makes the percentile's
    own sort a single pass."""
    failed = part["failed"].to_numpy(dtype=bool)
    # Latency of answered calls only: neither failed nor cancelled (cut off by the stop).
    unanswered = ~part["answered"].to_numpy(dtype=bool) if "answered" in part else failed
    kinds = part["error_kind"].astype(str)
    lists: dict[str, list[float]] = {}
    for source in _LATENCY_COLUMNS if latency is None else latency:
        column, with_failed = _LATENCY_COLUMNS[source]
        if column in part:
            values = part[column].to_numpy(dtype=float)
            values = values if with_failed else values[~unanswered]
            lists[f"{source}_ms"] = np.sort(values[~np.isnan(values)]).tolist()
    return WindowStats(
        requests=len(part),
        failures={str(kind): int(count) for kind, count in kinds[failed].value_counts().items() if count},
        blocked=int((kinds == BLOCKED).sum()),
        cancelled=int((kinds == CANCELLED).sum()),
        duration_s=duration_s,
        cost_usd=float(part["cost_usd"].sum()) if "cost_usd" in part else 0.0,
        **lists,
    )


def slo_rows(run: RunInfo) -> list[dict[str, Any]]:
    """run.json["slo"] entries as rows: the run's own verdict on the whole run."""
    return [{"expr": e.expr, "value": e.value, "unit": e.unit, "passed": e.passed} for e in run.slo]


def log_values(rows: list[dict[str, Any]], requests: pd.DataFrame | None) -> list[float | None]:
    """Each row's metric recomputed over the whole request log with core.slo, the same evaluator and
    nearest-rank percentiles as the report's latency tables: for the same metric, the same number.
    (run.json's value is the run's own, over Locust-style rounded histograms merged from workers.)
    None where the log is missing or the expression is not understood."""
    if requests is None or requests.empty or "failed" not in requests:
        return [None] * len(rows)
    start, end = float(requests["start_time"].min()), float(requests["end_time"].max())
    gates = [parse_slo(row["expr"]) for row in rows]
    window = window_stats(requests, max(0.0, end - start), latency_sources(g for g in gates if g))
    return [None if gate is None else metric_value(gate.metric, window) for gate in gates]
