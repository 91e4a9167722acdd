"""Analyses of the per-request logs (the exact source): summary, time series, distributions.
Scenario figures (variants compared, moderation answers) are in reports/scenario_analysis.py.

Percentiles use numpy's default linear interpolation between order statistics. A request counts as
a failure when its error kind is one of core.outcome.FAILURE_KINDS; `blocked` is an answer and is
counted apart; `cancelled` (cut off by the run's stop) is neither a failure nor an answer: counted
apart and left out of latency, like failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.outcome import ATTEMPT_KINDS_SEPARATOR, BLOCKED, CANCELLED, ERROR_KINDS, FAILURE_KINDS
from core.quantiles import NUMPY_METHOD, nearest_rank_quantiles

QUANTILES = (0.5, 0.9, 0.95, 0.99)
ALL = "(all)"
LATENCY_METRICS = {"e2e_ms": "End-to-end", "ttft_ms": "TTFT", "tpot_ms": "Time per output token"}


def percentiles(values: pd.Series | np.ndarray, quantiles: tuple[float, ...] = QUANTILES) -> list[float]:
    """Nearest-rank percentiles (core.quantiles, as the SLO table) of the non-missing values; NaN
    for each when there are none."""
    return nearest_rank_quantiles(values, quantiles)


def add_derived(requests: pd.DataFrame) -> pd.DataFrame:
    """Columns every analysis uses: end time, failed/blocked/cancelled flags, and `answered` (the
    calls latency is measured on: neither failed nor cancelled). Changes the frame in place."""
    kinds = requests["error_kind"].astype(str)
    requests["failed"] = kinds.isin(FAILURE_KINDS).to_numpy()
    requests["blocked"] = (kinds == BLOCKED).to_numpy()
    requests["cancelled"] = (kinds == CANCELLED).to_numpy()
    requests["answered"] = ~(requests["failed"].to_numpy() | requests["cancelled"].to_numpy())
    requests["end_time"] = requests["start_time"] + requests["e2e_ms"] / 1000.0
    return requests


def run_span(requests: pd.DataFrame) -> tuple[float, float]:
    """(first start, last end) in epoch seconds; the duration rates are computed over."""
    return float(requests["start_time"].min()), float(requests["end_time"].max())


def _group_row(group: pd.DataFrame, duration_s: float) -> dict[str, Any]:
    count = len(group)
    kinds = group["error_kind"].astype(str).value_counts()
    failures = int(group["failed"].sum())
    output_tokens = (
        float(group["output_tokens"].sum(min_count=1)) if "output_tokens" in group else float("nan")
    )
    cost = float(group["cost_usd"].sum())
    row: dict[str, Any] = {
        "requests": count,
        "failures": failures,
        "blocked": int(group["blocked"].sum()),
        "cancelled": int(group["cancelled"].sum()),
        "attempts": attempts_sent(group),
        "failure_rate": failures / count if count else float("nan"),
        "rps": count / duration_s if duration_s > 0 else float("nan"),
        "output_tokens": output_tokens,
        "tokens_per_s": output_tokens / duration_s if duration_s > 0 else float("nan"),
        "cost_usd": cost,
        "cost_per_1k": cost / count * 1000 if count else float("nan"),
    }
    for kind in ERROR_KINDS:
        row[f"kind_{kind}"] = int(kinds.get(kind, 0))
    attempt_kinds = attempt_kind_counts(group)
    for kind in ERROR_KINDS:
        row[f"attempt_{kind}"] = attempt_kinds.get(kind, 0)
    # Latency of answers only: a timeout or a fast 429 would distort what a served user waits.
    answered = group[group["answered"]]
    for column in LATENCY_METRICS:
        for quantile, value in zip(QUANTILES, percentiles(answered[column]), strict=True):
            row[f"{column}_p{round(quantile * 100)}"] = value
    return row


def per_scenario_model(frame: pd.DataFrame, row: Callable[[pd.DataFrame], dict[str, Any]]) -> pd.DataFrame:
    """`row(group)` for each scenario+model group of `frame`, then for all of it (scenario and model
    ALL): the shape of the report's per-model tables."""
    rows = [
        {"scenario": str(scenario), "model": str(model), **row(group)}
        for (scenario, model), group in frame.groupby(["scenario", "model"], observed=True, sort=True)
    ]
    rows.append({"scenario": ALL, "model": ALL, **row(frame)})
    return pd.DataFrame(rows)


def attempts_sent(group: pd.DataFrame) -> int:
    """Requests sent for these calls, retries and a cancelled call's attempts included (a log
    without the column: one per call)."""
    if "attempts" not in group:
        return len(group)
    return int(group["attempts"].fillna(1).sum())


def attempt_kind_counts(group: pd.DataFrame) -> dict[str, int]:
    """Attempts that got no answer, by error kind (Outcome.attempt_kinds): every 429 a retry hid,
    and `cancelled` for an attempt the stop cut off in flight."""
    if "attempt_kinds" not in group:
        return {}
    counts: dict[str, int] = {}
    for joined, calls in group["attempt_kinds"].astype(str).value_counts().items():
        if not joined or joined == "nan":
            continue
        for kind in str(joined).split(ATTEMPT_KINDS_SEPARATOR):
            if kind:
                counts[kind] = counts.get(kind, 0) + int(calls)
    return counts


def summary(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario+model and an `(all)` row: counts, failures by kind, rates, percentiles, cost."""
    start, end = run_span(requests)
    duration = end - start
    rows = []
    for (scenario, model), group in requests.groupby(["scenario", "model"], observed=True, sort=True):
        rows.append({"scenario": str(scenario), "model": str(model), **_group_row(group, duration)})
    rows.append({"scenario": ALL, "model": ALL, **_group_row(requests, duration)})
    return pd.DataFrame(rows)


def top_errors(requests: pd.DataFrame, limit: int = 15) -> pd.DataFrame:
    """The most frequent (kind, scenario, message) triples among failed and blocked requests."""
    errors = requests[requests["failed"] | requests["blocked"]]
    if errors.empty:
        return pd.DataFrame(columns=["error_kind", "scenario", "error_message", "count"])
    counted = (
        errors.groupby(["error_kind", "scenario", "error_message"], observed=True)
        .size()
        .reset_index(name="count")
        .sort_values("count", ascending=False, kind="stable")
    )
    return counted.head(limit).reset_index(drop=True)


def bin_width(duration_s: float, target_points: int = 300) -> float:
    """Whole seconds per time bin, so a long run still gives a readable ~300-point chart."""
    return float(max(1, int(np.ceil(duration_s / target_points))))


def time_series(requests: pd.DataFrame, origin: float, width_s: float, by: str = "end_time") -> pd.DataFrame:
    """Per time bin: rps by outcome, error rate by kind (%), latency percentiles.

    Binned by completion time (`end_time`, what Locust does) or by start time (`start_time`: the
    offered load, which does not smear when latency jumps at a stage change).
    """
    bins = np.floor((requests[by].to_numpy() - origin) / width_s).astype(np.int64)
    frame = pd.DataFrame(
        {
            "bin": bins,
            "failed": requests["failed"].to_numpy(),
            "blocked": requests["blocked"].to_numpy(),
            "answered": requests["answered"].to_numpy(),
            "kind": requests["error_kind"].astype(str).to_numpy(),
            "e2e_ms": requests["e2e_ms"].to_numpy(),
            "ttft_ms": requests["ttft_ms"].to_numpy(),
        }
    )
    grouped = frame.groupby("bin", sort=True)
    # Every bin from the first request to the last, so an empty bin shows as 0 req/s (and no
    # percentile) instead of a line drawn across it.
    everything = pd.RangeIndex(int(bins.min()), int(bins.max()) + 1, name="bin") if len(bins) else None
    out = pd.DataFrame({"requests": grouped.size().reindex(everything, fill_value=0)})
    out["failed"] = grouped["failed"].sum().reindex(out.index, fill_value=0)
    out["blocked"] = grouped["blocked"].sum().reindex(out.index, fill_value=0)
    out["rps"] = out["requests"] / width_s
    out["ok_rps"] = (grouped["answered"].sum().reindex(out.index, fill_value=0) - out["blocked"]) / width_s
    out["failed_rps"] = out["failed"] / width_s
    out["blocked_rps"] = out["blocked"] / width_s
    kinds = frame[frame["kind"] != ""].groupby(["bin", "kind"]).size().unstack(fill_value=0)
    for kind in kinds.columns:
        # An empty bin has no share (NaN), not 0 %.
        out[f"rate_{kind}"] = (
            kinds[kind].reindex(out.index, fill_value=0) / out["requests"].replace(0, np.nan) * 100.0
        ).to_numpy()
    answered = frame[frame["answered"]]
    for column in ("e2e_ms", "ttft_ms"):
        values = answered.dropna(subset=[column]).groupby("bin")[column]
        for quantile in (0.5, 0.95, 0.99):
            by_bin = values.apply(lambda v, q=quantile: nearest_rank_quantiles(v, (q,))[0])
            out[f"{column}_p{round(quantile * 100)}"] = by_bin.reindex(out.index)
    out["elapsed_s"] = out.index.to_numpy() * width_s + width_s / 2
    return out.reset_index(drop=True)


def ecdf_points(values: pd.Series | np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """An ECDF drawn through `points` quantiles: exact in shape, small for a million samples."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return np.array([]), np.array([])
    if array.size <= points:
        ordered = np.sort(array)
        return ordered, np.arange(1, ordered.size + 1) / ordered.size
    fractions = np.linspace(0.0, 1.0, points)
    return np.quantile(array, fractions, method=NUMPY_METHOD), fractions


def distributions(requests: pd.DataFrame, column: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ECDF per scenario of one latency column, answered requests only; scenarios without data left out."""
    answered = requests[~requests["failed"]]
    curves = {}
    for scenario, group in answered.groupby("scenario", observed=True, sort=True):
        values, fractions = ecdf_points(group[column])
        if values.size:
            curves[str(scenario)] = (values, fractions)
    return curves
