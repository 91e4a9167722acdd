"""Where an app call's time goes: the user's own service or the model it called (the `app` scenario).

The app user sends each call with an `x-request-id`; a service that forwards it on its model calls
lets the emulator file them under it, and the run writes them to model_calls.csv (core/results.py,
MODEL_CALLS). Joined by that id, an answered app call splits into
- before the model: from the app call's start to its first model call's arrival (the service's own
  queue and work before it asks the model);
- the model: the model calls' own time (model_ms), its queue for a slot and its generation;
- after the model: from the model's last byte to the app's answer;
- the app's own time: end-to-end minus the model (before + after + any time between model calls).
Before and after compare the load generator's clock with the model host's; the model's time and the
app's own time are durations, each on one clock. Load level: the app calls in flight when a call
started (itself included), over every process's log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.outcome import CANCELLED, FAILURE_KINDS
from core.quantiles import nearest_rank_quantiles
from core.results import MODEL_CALLS

APP_SCENARIO = "app"
SKEW_MS = 50.0  # before or after the model below -SKEW_MS: the two hosts' clocks disagree
MIN_BIN_CALLS = 5
MAX_BINS = 12
QUANTILES = (0.5, 0.9, 0.95, 0.99)
PARTS = {  # column: label, in the order of the percentile table
    "before_ms": "Before the model",
    "model_ms": "Model",
    "queue_ms": "Model: queue",
    "generation_ms": "Model: generation",
    "after_ms": "After the model",
    "app_ms": "App's own time",
    "e2e_ms": "End-to-end",
}


@dataclass
class Split:
    """App calls joined with their model calls: one row per app call (calls), and what the join
    found odd. Times in ms, NaN for an unattributed call (and before/after of a skewed one)."""

    calls: pd.DataFrame  # start_time, e2e_ms, answered, in_flight, attributed, the PARTS, ...
    ignored: int = 0  # model-call records whose id matches no app call (other runs, same emulator)
    skewed: int = 0  # answered calls with before or after below -SKEW_MS
    overrun: int = 0  # answered calls whose model time exceeds their end-to-end by over SKEW_MS
    parallel: int = 0  # calls whose model calls overlapped: model time = their span

    @property
    def measured(self) -> pd.DataFrame:
        """The answered, attributed calls: the ones every figure of the split is over."""
        return self.calls[self.calls["attributed"] & self.calls["answered"]]


def app_calls(requests: pd.DataFrame | None) -> pd.DataFrame | None:
    """The app user's calls (scenario `app`) with a plain-text request_id and an `answered` flag
    (neither failed nor cut off); None when the log has none."""
    if requests is None or requests.empty:
        return None
    app = requests[requests["scenario"].astype(str) == APP_SCENARIO]
    if app.empty:
        return None
    kinds = app["error_kind"].astype(str)
    ids = app["request_id"].astype(str) if "request_id" in app else pd.Series("", index=app.index)
    return pd.DataFrame(
        {
            "start_time": app["start_time"].to_numpy(float),
            "e2e_ms": app["e2e_ms"].to_numpy(float),
            "request_id": ids.to_numpy(),
            "answered": ~(kinds.isin(FAILURE_KINDS) | (kinds == CANCELLED)).to_numpy(),
            "cancelled": (kinds == CANCELLED).to_numpy(),
        }
    )


def in_flight(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each call, the calls in flight when it started, itself included: started at or before
    its start and not yet ended. Two sorts and two binary searches: O(n log n)."""
    by_start, by_end = np.sort(starts), np.sort(ends)
    level = np.searchsorted(by_start, starts, side="right") - np.searchsorted(by_end, starts, side="right")
    return np.maximum(level, 1)


TOKENS = ("prompt_tokens", "output_tokens", "thoughts_tokens")
_RECORD = ("model_used", "model_calls", "first_received", "last_sent", "queue_ms", "model_ms", *TOKENS)


def _per_id(model_calls: pd.DataFrame) -> pd.DataFrame:
    """One record per request id, the _RECORD columns (a repeated id summed, as one app call's)."""
    frame = model_calls.rename(columns={"model": "model_used", "calls": "model_calls"})
    frame = frame.assign(
        request_id=frame["request_id"].astype(str),
        **{n: float("nan") for n in _RECORD if n not in frame},
    ).astype({n: float for n in _RECORD[1:]})
    if frame["request_id"].duplicated().any():
        sums = {n: "sum" for n in ("model_calls", "queue_ms", "model_ms", *TOKENS)}
        return frame.groupby("request_id", sort=False).agg(
            {**sums, "first_received": "min", "last_sent": "max", "model_used": "last"}
        )
    return frame.set_index("request_id")[list(_RECORD)]


def split_times(app: pd.DataFrame, model_calls: pd.DataFrame | None) -> Split:
    """Join app calls (app_calls) with model_calls.csv by request id and split each call's time."""
    calls = app.copy()
    ends = calls["start_time"].to_numpy() + calls["e2e_ms"].to_numpy() / 1000.0
    calls["in_flight"] = in_flight(calls["start_time"].to_numpy(), ends)
    if model_calls is None:
        model_calls = pd.DataFrame(columns=list(MODEL_CALLS.columns))
    records = _per_id(model_calls)
    ignored = int((~records.index.isin(calls["request_id"])).sum())
    calls = calls.join(records, on="request_id")
    calls["attributed"] = calls["first_received"].notna() & (calls["request_id"] != "")
    start, e2e = calls["start_time"], calls["e2e_ms"]
    before = (calls["first_received"] - start) * 1000.0
    after = (start + e2e / 1000.0 - calls["last_sent"]) * 1000.0
    # Model calls made side by side: their summed time counts the overlap twice; their span does not.
    span = ((calls["last_sent"] - calls["first_received"]) * 1000.0).clip(lower=0.0)
    overlapped = (calls["model_calls"] > 1) & (calls["model_ms"] > span)
    model = calls["model_ms"].where(~overlapped, span).clip(lower=0.0)
    scale = (model / calls["model_ms"]).where(overlapped, 1.0).fillna(0.0)
    queue = (calls["queue_ms"].fillna(0.0) * scale).clip(lower=0.0, upper=model)
    answered = calls["attributed"] & calls["answered"]
    # A failed call may end long before its service's model call does: only answers say the clocks
    # disagree. Tiny negatives are the clocks' rounding.
    skewed = answered & ((before < -SKEW_MS) | (after < -SKEW_MS))
    app_ms = e2e - model
    calls["before_ms"] = before.clip(lower=0.0).where(~skewed)
    calls["after_ms"] = after.clip(lower=0.0).where(~skewed)
    calls["model_ms"], calls["queue_ms"], calls["generation_ms"] = model, queue, model - queue
    calls["app_ms"] = app_ms.clip(lower=0.0).where(calls["attributed"])
    return Split(
        calls,
        ignored=ignored,
        skewed=int(skewed.sum()),
        overrun=int((answered & (app_ms < -SKEW_MS)).sum()),
        parallel=int((answered & overlapped).sum()),
    )


def median(values: pd.Series) -> float:
    return nearest_rank_quantiles(values, (0.5,))[0]


def _bin_width(low: int, high: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... giving at most MAX_BINS bins over [low, high]."""
    width, steps = 1, (2, 2.5, 2)
    index = 0
    while (high // width - low // width + 1) > MAX_BINS:
        width = int(width * steps[index % 3])
        index += 1
    return width


def load_levels(split: Split) -> pd.DataFrame:
    """Medians per load level: bins of calls in flight, their width chosen over the middle 98% of
    the calls (p1 to p99; the few outside join the first or last bin, a ramp's first seconds among
    them), bins of fewer than MIN_BIN_CALLS left out. Columns: level (the bin's lowest level seen),
    label (its levels seen), calls, and the medians of the parts and of the shares."""
    measured = split.measured
    if measured.empty:
        return pd.DataFrame()
    levels = measured["in_flight"].to_numpy()
    low, high = (int(v) for v in nearest_rank_quantiles(levels, (0.01, 0.99)))
    width = _bin_width(low, high)
    rows = []
    for _, part in measured.groupby(np.clip(levels, low, high) // width, sort=True):
        if len(part) < MIN_BIN_CALLS:
            continue
        first, last = int(part["in_flight"].min()), int(part["in_flight"].max())
        row = {
            "level": first,
            "label": f"{first}" if first == last else f"{first}–{last}",
            "calls": len(part),
        }
        for column in ("before_ms", "model_ms", "queue_ms", "after_ms", "app_ms", "e2e_ms"):
            row[column] = median(part[column])
        row["app_share"] = median(part["app_ms"] / part["e2e_ms"])
        row["model_share"] = median(part["model_ms"] / part["e2e_ms"])
        rows.append(row)
    return pd.DataFrame(rows)


def crossing(levels: pd.DataFrame) -> int | None:
    """The row from which the app's median own time stays above the model's median to the highest
    level reached (the start of that last run of rows); None when the model's is above at the top."""
    if levels.empty:
        return None
    above = (levels["app_ms"] > levels["model_ms"]).to_numpy()
    index = len(above)
    while index > 0 and above[index - 1]:
        index -= 1
    return index if index < len(above) else None


def measured_split(requests: pd.DataFrame | None, model_calls: pd.DataFrame | None) -> pd.DataFrame | None:
    """app_ms and model_ms of the answered, attributed app calls (run comparison); None without."""
    app = app_calls(requests)
    if app is None or model_calls is None:
        return None
    measured = split_times(app, model_calls).measured
    return None if measured.empty else measured[["app_ms", "model_ms"]]
