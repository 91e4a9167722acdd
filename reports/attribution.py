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
from core.results import MODEL_CALLS, Attribution
from reports import charts
from reports.html import Section, Table, fmt_ms, fmt_number

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


_TOKENS = ("prompt_tokens", "output_tokens", "thoughts_tokens")
_RECORD = ("model_used", "model_calls", "first_received", "last_sent", "queue_ms", "model_ms", *_TOKENS)


def _per_id(model_calls: pd.DataFrame) -> pd.DataFrame:
    """One record per request id, the _RECORD columns (a repeated id summed, as one app call's)."""
    frame = model_calls.rename(columns={"model": "model_used", "calls": "model_calls"})
    frame = frame.assign(
        request_id=frame["request_id"].astype(str),
        **{n: float("nan") for n in _RECORD if n not in frame},
    ).astype({n: float for n in _RECORD[1:]})
    if frame["request_id"].duplicated().any():
        sums = {n: "sum" for n in ("model_calls", "queue_ms", "model_ms", *_TOKENS)}
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


def _median(values: pd.Series) -> float:
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
            row[column] = _median(part[column])
        row["app_share"] = _median(part["app_ms"] / part["e2e_ms"])
        row["model_share"] = _median(part["model_ms"] / part["e2e_ms"])
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


def crossing_statement(levels: pd.DataFrame, index: int | None) -> tuple[str, str | None]:
    """(the section's sentence, the overview's headline or None) about where app time passes model time."""
    if index is None:
        top = levels["label"].iloc[-1]
        above = levels[levels["app_ms"] > levels["model_ms"]]
        if above.empty:
            return (
                f"The model's time stays above the app's at every load level reached (up to {top} calls "
                "in flight).",
                None,
            )
        # Above at some levels, not at the top: no load from which it stays so, and no headline.
        shown = ", ".join(str(label) for label in above["label"])
        return (
            f"The app's own time is above the model's at {shown} calls in flight, but not at the highest "
            f"level reached ({top}): no load from which the app's own time stays the larger.",
            None,
        )
    row = levels.iloc[index]
    figures = (
        f"before-the-model time p50 {fmt_ms(row['before_ms'])} ms; app's own p50 "
        f"{fmt_ms(row['app_ms'])} ms against the model's {fmt_ms(row['model_ms'])} ms"
    )
    if index == 0:
        return (
            f"The app's own time is above the model's at every load level reached, from {row['label']} "
            f"calls in flight ({figures}).",
            f"App calls: the app's own time is above the model's at every load level (from {row['level']} in flight).",
        )
    return (
        f"The app's own time passes the model's from about {row['level']} calls in flight (its queue: "
        f"{figures}).",
        f"App time passes model time at ~{row['level']} calls in flight "
        f"(before-the-model p50 {fmt_ms(row['before_ms'])} ms).",
    )


def _percentile_table(measured: pd.DataFrame) -> Table:
    rows = []
    for column, label in PARTS.items():
        values = measured[column]
        figures = nearest_rank_quantiles(values, QUANTILES)
        rows.append([label, *(fmt_ms(v) for v in figures), fmt_ms(float(values.mean()))])
    return Table(
        columns=("Part (ms)", "p50", "p90", "p95", "p99", "mean"),
        numeric=(False, True, True, True, True, True),
        rows=rows,
        row_classes=["aggregated" if c in ("app_ms", "e2e_ms") else "" for c in PARTS],
        caption=f"Per answered, attributed app call ({len(measured):,} calls), nearest-rank percentiles",
    )


def _levels_table(levels: pd.DataFrame) -> Table:
    rows = [
        [
            r.label, fmt_number(r.calls, 0), fmt_ms(r.before_ms), fmt_ms(r.model_ms), fmt_ms(r.after_ms),
            fmt_ms(r.app_ms), f"{r.app_share * 100:.0f}%", f"{r.model_share * 100:.0f}%",
        ]
        for r in levels.itertuples()
    ]  # fmt: skip
    return Table(
        columns=(
            "Calls in flight",
            "Calls",
            "Before p50",
            "Model p50",
            "After p50",
            "App's own p50",
            "App share p50",
            "Model share p50",
        ),  # fmt: skip
        numeric=(False, *[True] * 7),
        rows=rows,
        caption="As load rises: medians per load level (ms; shares of end-to-end)",
    )


def _levels_chart(levels: pd.DataFrame, index: int | None) -> charts.Chart:
    xs = levels["level"].to_numpy(float)
    marker = None
    if index is not None:
        marker = (float(xs[index]), f"app passes model at ~{levels['level'].iloc[index]} in flight")
    return charts.level_chart(
        "chart-app-attribution",
        "App's own time against the model's as load rises",
        "App calls in flight when the call started",
        "Median per call (ms)",
        [
            ("app's own time", xs, levels["app_ms"].to_numpy(float)),
            ("model", xs, levels["model_ms"].to_numpy(float)),
            ("before the model (the app's queue)", xs, levels["before_ms"].to_numpy(float)),
            ("model queue", xs, levels["queue_ms"].to_numpy(float)),
        ],
        thin=("before the model (the app's queue)", "model queue"),
        marker=marker,
    )


def _usage_note(attributed: pd.DataFrame) -> str:
    models = attributed["model_used"].fillna("").astype(str).replace("", "(not named)").value_counts()
    named = ", ".join(f"{m} ({n:,} app calls)" for m, n in models.head(3).items())
    if len(models) > 3:
        named += f" and {len(models) - 3} more"
    tokens = {n: float(attributed[n].mean()) for n in _TOKENS}
    text = (
        f"Per attributed app call the service made {attributed['model_calls'].mean():.2f} model call(s) on "
        f"average, with {fmt_number(tokens['prompt_tokens'], 0)} prompt and "
        f"{fmt_number(tokens['output_tokens'], 0)} output tokens"
    )
    if tokens["thoughts_tokens"] > 0:
        text += f" and {fmt_number(tokens['thoughts_tokens'], 0)} thinking tokens"
    return text + f"; model(s): {named}."


def _unattributed_note(split: Split) -> str:
    """How many app calls found no model call. Calls the run's stop cut off are counted apart: their
    model call may still have been under way (or not begun: waiting in the service)."""
    calls = split.calls
    cut = calls[calls["cancelled"] & ~calls["attributed"]]
    calls = calls[~calls.index.isin(cut.index)]
    total = len(calls)
    missing = calls[~calls["attributed"]]
    cut_note = (
        f" {len(cut):,} more were cut off by the end of the run before a model call of theirs finished: not counted."
        if len(cut)
        else ""
    )
    if missing.empty:
        return f"All {total:,} app calls were matched with their model calls by request id.{cut_note}"
    ok = int(missing["answered"].sum())
    return (
        f"{len(missing):,} of {total:,} app calls ({len(missing) / total * 100:.1f}%) have no model call "
        f"under their request id: the service did not forward the request id header, or made no model "
        f"call ({ok:,} of them answered OK, {len(missing) - ok:,} failed; a failed call may never have "
        f"reached the model).{cut_note}"
    )


def attribution_section(
    requests: pd.DataFrame | None,
    model_calls: pd.DataFrame | None,
    info: Attribution | None,
    file_present: bool = False,
) -> tuple[Section | None, str | None]:
    """The section "Where the time goes: app or model" and the overview's headline (None when app
    time never passes model time). No section without app calls, or for a run that recorded no
    model calls at all (no model_calls.csv, no attribution in run.json: an older run)."""
    app = app_calls(requests)
    if app is None or (model_calls is None and info is None and not file_present):
        return None, None
    section = Section("app-attribution", "Where the time goes: app or model")
    if info is not None and info.error:
        section.notes.append(
            f"The model calls could not be fetched from {info.source}: {info.error}. No split of the "
            f"{len(app):,} app calls' time between the app and the model is possible."
        )
        return section, None
    if model_calls is None and file_present:
        section.notes.append(
            f"{MODEL_CALLS.name} could not be read (see the warnings at the top): no split of the "
            f"{len(app):,} app calls' time between the app and the model is possible."
        )
        return section, None
    split = split_times(app, model_calls)
    section.notes.append(_unattributed_note(split))
    if info is not None and info.dropped > 0:
        section.notes.append(
            f"The emulator's log let go of {info.dropped:,} request id(s) (its limit): some of the "
            "unattributed app calls may be those."
        )
    if model_calls is None and info is not None and info.records > 0:
        section.notes.append(
            f"run.json says {info.records:,} model-call records were written, but {MODEL_CALLS.name} is missing."
        )
    section.notes.append(
        "Joined by x-request-id with the model calls the emulator recorded. Before the model: from the app "
        "call's start to its first model call's arrival; model: the model calls' own time (its queue for a "
        "slot, then generation); after: from the model's last byte to the app's answer; the app's own time "
        "is end-to-end minus the model (before + after + any time between model calls)."
    )
    if split.ignored:
        section.notes.append(
            f"{split.ignored:,} model-call record(s) match no app call of this run and are left out."
        )
    if split.parallel:
        section.notes.append(
            f"{split.parallel:,} app call(s) made model calls side by side: their model time is the span from "
            "the first call's arrival to the last byte, not the sum."
        )
    measured = split.measured
    if split.skewed:
        section.warnings.append(
            f"{split.skewed:,} of {len(measured):,} answered app calls have a before- or after-the-model time "
            f"below -{SKEW_MS:.0f} ms: the model host's clock disagrees with the load generator's (different "
            "hosts?). Their before/after times are left out; the app's own and the model's times (durations, "
            "each on one clock) are kept."
        )
    if split.overrun:
        section.warnings.append(
            f"{split.overrun:,} answered app call(s) took less time end to end than their model calls by over "
            f"{SKEW_MS:.0f} ms: counted as all model time."
        )
    if measured.empty:
        section.notes.append("No answered app call could be attributed: no split to show.")
        return section, None
    section.notes.append(
        f"Of an answered app call's end-to-end time the app's own part is p50 "
        f"{_median(measured['app_ms'] / measured['e2e_ms']) * 100:.0f}%, the model's p50 "
        f"{_median(measured['model_ms'] / measured['e2e_ms']) * 100:.0f}%."
    )
    section.notes.append(_usage_note(split.calls[split.calls["attributed"]]))
    section.tables.append(_percentile_table(measured))
    levels = load_levels(split)
    if levels.empty:
        return section, None
    index = crossing(levels)
    statement, headline = crossing_statement(levels, index)
    section.notes.append(
        "As load rises: load level = the app calls in flight when a call started (itself included, all "
        f"processes); bins of fewer than {MIN_BIN_CALLS} answered calls are left out. {statement}"
    )
    section.tables.append(_levels_table(levels))
    section.charts.append(_levels_chart(levels, index))
    return section, headline


def measured_split(requests: pd.DataFrame | None, model_calls: pd.DataFrame | None) -> pd.DataFrame | None:
    """app_ms and model_ms of the answered, attributed app calls (run comparison); None without."""
    app = app_calls(requests)
    if app is None or model_calls is None:
        return None
    measured = split_times(app, model_calls).measured
    return None if measured.empty else measured[["app_ms", "model_ms"]]
