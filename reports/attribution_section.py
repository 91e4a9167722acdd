"""The report's section "Where the time goes: app or model": the split of reports/attribution.py
as notes, a percentile table, a table and a chart by load level, and the overview's headline."""

from __future__ import annotations

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from core.results import MODEL_CALLS, Attribution
from reports import charts
from reports.attribution import (
    MIN_BIN_CALLS,
    PARTS,
    QUANTILES,
    SKEW_MS,
    TOKENS,
    Split,
    app_calls,
    crossing,
    load_levels,
    median,
    split_times,
)
from reports.html import Section, Table, fmt_ms, fmt_number


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
    tokens = {n: float(attributed[n].mean()) for n in TOKENS}
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
        f"{median(measured['app_ms'] / measured['e2e_ms']) * 100:.0f}%, the model's p50 "
        f"{median(measured['model_ms'] / measured['e2e_ms']) * 100:.0f}%."
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
