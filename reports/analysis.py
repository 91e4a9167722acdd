"""Analyses of Locust's own CSVs and of generator health: plain pandas in, plain rows out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

AGGREGATED = "Aggregated"
# Generator health thresholds: above these the load generator, not the API, may set the numbers.
CPU_BUSY_PERCENT = 90.0
LOOP_LAG_SLOW_MS = 100.0
SUSTAINED_SAMPLES = 3  # consecutive samples, so one hiccup is not a warning


def locust_summary(stats: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per Type/Name of locust_stats.csv, the Aggregated row last."""
    rows = []
    for record in stats.to_dict("records"):
        rows.append(
            {
                "type": str(record["Type"]),
                "name": str(record["Name"]),
                "aggregated": record["Name"] == AGGREGATED,
                "requests": _int(record["Request Count"]),
                "failures": _int(record["Failure Count"]),
                "rps": _float(record["Requests/s"]),
                "failures_per_s": _float(record["Failures/s"]),
                "avg_ms": _float(record["Average Response Time"]),
                "p50": _float(record["50%"]),
                "p90": _float(record["90%"]),
                "p95": _float(record["95%"]),
                "p99": _float(record["99%"]),
                "avg_size": _float(record["Average Content Size"]),
            }
        )
    rows.sort(key=lambda row: (row["aggregated"], row["name"], row["type"]))
    return rows


def aggregated_history(history: pd.DataFrame, origin: float) -> pd.DataFrame:
    """The Aggregated rows of the stats history, one per second, with elapsed seconds from origin.

    Without --csv-full-history every row is the aggregate, so rows with another name are dropped only
    when an Aggregated row exists.
    """
    rows = history[history["Name"] == AGGREGATED]
    if rows.empty:
        rows = history
    rows = rows.sort_values("Timestamp").drop_duplicates("Timestamp", keep="last").copy()
    rows["elapsed_s"] = rows["Timestamp"] - origin
    return rows.reset_index(drop=True)


TOTAL_REQUESTS = "Total Request Count"  # cumulative; Locust writes a history row every second


def trim_idle(history: pd.DataFrame) -> pd.DataFrame:
    """History rows from the second before the first request to the last second the request count
    grew: Locust writes a row every second while its process lives, so a web UI opened long before
    the start or left open after the stop would draw a flat line over the idle minutes.

    Rows must be one per timestamp (aggregated_history). Without the cumulative column (an older
    or trimmed CSV), rows with a request rate count as active.
    """
    if history.empty:
        return history
    if TOTAL_REQUESTS in history:
        total = pd.to_numeric(history[TOTAL_REQUESTS], errors="coerce").ffill().fillna(0).to_numpy()
        # A change either way: growth, or the drop of a reset at a new web-UI test.
        active = np.flatnonzero(np.diff(total, prepend=0.0) != 0)
    else:
        active = np.flatnonzero(history["Requests/s"].fillna(0).to_numpy() > 0)
    if active.size == 0:
        return history
    first, last = max(0, int(active[0]) - 1), int(active[-1])
    return history.iloc[first : last + 1].reset_index(drop=True)


def endpoint_history(history: pd.DataFrame, origin: float) -> pd.DataFrame:
    """The per-request-name rows of a --csv-full-history file (empty without that option), with
    elapsed seconds from origin."""
    rows = history[history["Name"] != AGGREGATED].copy()
    rows["elapsed_s"] = rows["Timestamp"] - origin
    return rows


@dataclass(frozen=True)
class HealthWarning:
    node: str
    what: str
    start_s: float
    end_s: float
    peak: float

    def message(self) -> str:
        unit = "%" if self.what == "cpu" else " ms"
        label = "CPU" if self.what == "cpu" else "event-loop lag"
        limit = f"{CPU_BUSY_PERCENT:.0f}%" if self.what == "cpu" else f"{LOOP_LAG_SLOW_MS:.0f} ms"
        return (
            f"load generator {self.node}: {label} at or above {limit} from {self.start_s:.0f} s to "
            f"{self.end_s:.0f} s (peak {self.peak:.0f}{unit}); latencies measured then may be inflated"
        )


def health_warnings(health: pd.DataFrame, origin: float) -> list[HealthWarning]:
    """Stretches of at least SUSTAINED_SAMPLES consecutive samples with cpu >= 90 % or lag >= 100 ms."""
    found: list[HealthWarning] = []
    for node, samples in health.sort_values("timestamp").groupby("node", sort=True, observed=True):
        elapsed = (samples["timestamp"] - origin).to_numpy()
        for what, column, limit in (
            ("cpu", "cpu_percent", CPU_BUSY_PERCENT),
            ("lag", "loop_lag_ms", LOOP_LAG_SLOW_MS),
        ):
            values = samples[column].to_numpy(dtype=float)
            for start, end in _runs(values >= limit):
                if end - start >= SUSTAINED_SAMPLES:
                    found.append(
                        HealthWarning(
                            str(node),
                            what,
                            float(elapsed[start]),
                            float(elapsed[end - 1]),
                            float(np.nanmax(values[start:end])),
                        )
                    )
    return found


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of consecutive True values."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _int(value: Any) -> int:
    return 0 if pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)
