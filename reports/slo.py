"""SLO expressions in the suite's --slo syntax, judged on one window of the per-request log.

Syntax (as shapes/slo.py parses it for the run's own gates; re-implemented here so reports/ reads
only the results folder and imports no Locust code):
  ttft_pNN, e2e_pNN, lag_pNN (ms, nearest rank), ttft_avg, e2e_max ... (ms); times take ms, s or m
  error_rate and each error kind (blocked too): % of calls; rps; cost_per_1k (usd or $); requests
Latency samples are answered calls (ok or blocked), as the run's gates count them. A gate with no
data does not pass: nothing proved it holds.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from users.outcome import BLOCKED, ERROR_KINDS

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPR = re.compile(r"^\s*([a-z][a-z0-9_.]*)\s*(<=|>=|<|>)\s*(.+?)\s*$")
_TIME_METRIC = re.compile(r"^(ttft|e2e|lag)_(?:p(\d+(?:\.\d+)?)|(avg|max))$")
_TIME_UNITS_MS = {"": 1.0, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SOURCES = {"ttft": "ttft_ms", "e2e": "e2e_ms", "lag": "schedule_lag_ms"}


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str
    op: str
    threshold: float  # in `unit`

    @property
    def unit(self) -> str:
        """ms | % | rps | usd | count, as run.json's SLO entries name them."""
        if _TIME_METRIC.match(self.metric):
            return "ms"
        return {"rps": "rps", "cost_per_1k": "usd", "requests": "count"}.get(self.metric, "%")

    def met(self, value: float | None) -> bool:
        return value is not None and value == value and _OPS[self.op](value, self.threshold)


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_slo(expr: str) -> Slo | None:
    """One expression (`ttft_p95<=800ms`, `error_rate<=1%`, `rps>=50`...); None when not understood."""
    match = _EXPR.match(expr.lower())
    if not match:
        return None
    metric, op, raw = match.groups()
    raw = raw.replace(" ", "")
    metric = {"p50": "e2e_p50", "p90": "e2e_p90", "p95": "e2e_p95", "p99": "e2e_p99"}.get(metric, metric)
    threshold: float | None
    if _TIME_METRIC.match(metric):
        unit = re.fullmatch(r"([0-9.]+)(ms|s|m)?", raw)
        threshold = _number(unit.group(1)) if unit else None
        if threshold is not None and unit is not None:
            threshold *= _TIME_UNITS_MS[unit.group(2) or ""]
    elif metric == "error_rate" or metric in ERROR_KINDS:
        threshold = _number(raw[:-1]) if raw.endswith("%") else None
    elif metric == "rps":
        threshold = _number(raw.removesuffix("rps").removesuffix("/s"))
    elif metric == "cost_per_1k":
        threshold = _number(raw.removesuffix("usd").removeprefix("$"))
    elif metric == "requests":
        threshold = _number(raw)
    else:
        return None
    return None if threshold is None else Slo(expr.strip(), metric, op, threshold)


def nearest_rank(values: np.ndarray, pct: float) -> float | None:
    """The smallest sample with at least pct% of samples at or below it (the run's own method)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    return float(np.quantile(values, pct / 100.0, method="inverted_cdf"))


def window_value(metric: str, part: pd.DataFrame, duration_s: float) -> float | None:
    """The metric on the calls of one window, in the unit of its threshold; None without data."""
    time_match = _TIME_METRIC.match(metric)
    if time_match:
        source, pct, stat = time_match.groups()
        column = _SOURCES[source]
        if column not in part:
            return None
        values = part.loc[~part["failed"], column].to_numpy(dtype=float)
        if pct is not None:
            return nearest_rank(values, float(pct))
        values = values[~np.isnan(values)]
        if values.size == 0:
            return None
        return float(values.max() if stat == "max" else values.mean())
    if metric == "rps":
        return len(part) / duration_s if duration_s > 0 else None
    if metric == "requests":
        return float(len(part))
    if len(part) == 0:
        return None
    if metric == "error_rate":
        return 100.0 * float(part["failed"].mean())
    if metric == BLOCKED:
        return 100.0 * float(part["blocked"].mean())
    if metric in ERROR_KINDS:
        return 100.0 * float((part["error_kind"].astype(str) == metric).mean())
    if metric == "cost_per_1k":
        return 1000.0 * float(part["cost_usd"].sum()) / len(part)
    return None


def slo_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json["slo"] entries as rows: the run's own verdict on the whole run."""
    rows = []
    for entry in run.get("slo") or []:
        if isinstance(entry, dict):
            rows.append(
                {
                    "expr": str(entry.get("expr", "")),
                    "value": entry.get("value"),
                    "unit": str(entry.get("unit") or ""),
                    "passed": entry.get("passed"),
                }
            )
    return rows
