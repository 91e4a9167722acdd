"""Report sections from Locust's own CSVs (any --csv prefix): the percentiles table, requests and
failures over time, response-time percentiles over time (per request name with --csv-full-history),
failures and exceptions. The whole report of a plain, non-LLM locustfile."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.results import LOCUST_EXCEPTIONS, LOCUST_FAILURES, LOCUST_HISTORY, LOCUST_STATS
from reports import analysis, charts
from reports.charts import Stage
from reports.html import Section, Table, fmt_number
from reports.loading import RunData
from reports.verdict import Figure, locust_figures

# Per-request-name charts show the busiest names only: more lines than this are unreadable.
MAX_ENDPOINT_LINES = 8


def active_history(data: RunData) -> pd.DataFrame | None:
    """The Aggregated history rows, one a second, from the first request to the last."""
    if data.history is None:
        return None
    return analysis.trim_idle(analysis.aggregated_history(data.history, data.origin))


def summary_section(data: RunData) -> Section | None:
    if data.stats is None:
        return None
    rows = analysis.locust_summary(data.stats)
    table = Table(
        columns=(
            "Type",
            "Name",
            "Requests",
            "Failures",
            "Req/s",
            "Fail/s",
            "Average (ms)",
            "p50 (ms)",
            "p90 (ms)",
            "p95 (ms)",
            "p99 (ms)",
            "Avg size (bytes)",
        ),
        numeric=(False, False, *([True] * 10)),
        rows=[
            [
                row["type"],
                row["name"],
                fmt_number(row["requests"], 0),
                fmt_number(row["failures"], 0),
                fmt_number(row["rps"], 2),
                fmt_number(row["failures_per_s"], 2),
                fmt_number(row["avg_ms"], 0),
                fmt_number(row["p50"], 0),
                fmt_number(row["p90"], 0),
                fmt_number(row["p95"], 0),
                fmt_number(row["p99"], 0),
                fmt_number(row["avg_size"], 0),
            ]
            for row in rows
        ],
        row_classes=["aggregated" if row["aggregated"] else "" for row in rows],
        caption="Requests and response-time percentiles per request name (for an LLM run: type is the "
        "model, name the scenario)",
    )
    return Section(
        "locust-summary",
        "Locust summary",
        notes=[
            f"From {data.locust_file(LOCUST_STATS)}. Locust stores response times rounded (to 10 ms above "
            "100 ms, 100 ms above 1 s), so its percentiles are approximate."
        ],
        tables=[table],
    )


def history_section(data: RunData, shading: Sequence[Stage]) -> Section | None:
    history = active_history(data)
    if history is None or history.empty:
        return None
    xs = history["elapsed_s"].to_numpy()
    section = Section(
        "locust-timeline",
        "Load over time (Locust)",
        notes=[
            f"From {data.locust_file(LOCUST_HISTORY)}, one row a second, from the first request to the last "
            "(idle seconds before and after are left out). Locust's percentiles there cover about the last "
            "10 seconds; a second with no response has none, and such series are drawn as points. Shaded "
            "bands are the load-shape stages."
        ],
    )
    section.charts.append(
        charts.time_chart(
            "chart-throughput",
            "Requests, failures and users",
            "Requests per second (req/s)",
            [("requests/s", xs, history["Requests/s"]), ("failures/s", xs, history["Failures/s"])],
            shading,
            right=("users", xs, history["User Count"]),
            right_label="Users (count)",
        )
    )
    section.charts.append(
        charts.time_chart(
            "chart-latency-locust",
            "Response time percentiles",
            "Response time (ms)",
            [(f"p{column[:-1]}", xs, history[column]) for column in ("50%", "90%", "95%", "99%")],
            shading,
        )
    )
    endpoints = _endpoint_chart(data, history)
    if endpoints is not None:
        section.charts.append(endpoints)
    return section


def _endpoint_chart(data: RunData, active: pd.DataFrame) -> charts.Chart | None:
    """p95 per request name over time, from --csv-full-history's per-name rows."""
    assert data.history is not None
    rows = analysis.endpoint_history(data.history, data.origin)
    if rows.empty:
        return None
    low, high = float(active["elapsed_s"].min()), float(active["elapsed_s"].max())
    rows = rows[(rows["elapsed_s"] >= low) & (rows["elapsed_s"] <= high)]
    totals = pd.to_numeric(rows.get(analysis.TOTAL_REQUESTS, pd.Series(dtype=float)), errors="coerce")
    busiest = (
        rows.assign(total=totals)
        .groupby(["Type", "Name"], dropna=False)["total"]
        .max()
        .sort_values(ascending=False)
    )
    lines = []
    for type_, name in busiest.index[:MAX_ENDPOINT_LINES]:
        part = rows[(rows["Type"] == type_) & (rows["Name"] == name)].sort_values("Timestamp")
        label = f"{type_} {name}".strip() if isinstance(type_, str) else str(name)
        lines.append((label, part["elapsed_s"].to_numpy(), part["95%"].to_numpy(dtype=float)))
    if not any(np.isfinite(ys).any() for _, _, ys in lines):
        return None
    shown = f" (the {MAX_ENDPOINT_LINES} busiest)" if len(busiest) > MAX_ENDPOINT_LINES else ""
    return charts.time_chart(
        "chart-latency-endpoints",
        f"p95 response time per request name{shown}",
        "Response time p95 (ms)",
        lines,
    )


def failures_section(data: RunData) -> Section | None:
    tables = []
    if data.failures is not None and len(data.failures):
        failures = data.failures.sort_values("Occurrences", ascending=False)
        tables.append(
            Table(
                columns=("Method", "Name", "Error", "Occurrences"),
                numeric=(False, False, False, True),
                rows=[
                    [
                        str(row["Method"]),
                        str(row["Name"]),
                        str(row["Error"]),
                        fmt_number(row["Occurrences"], 0),
                    ]
                    for row in failures.to_dict("records")
                ],
                caption=f"Failures ({data.locust_file(LOCUST_FAILURES)})",
            )
        )
    if data.exceptions is not None and len(data.exceptions):
        exceptions = data.exceptions.sort_values("Count", ascending=False)
        tables.append(
            Table(
                columns=("Count", "Message"),
                numeric=(True, False),
                rows=[
                    [fmt_number(row["Count"], 0), str(row["Message"])]
                    for row in exceptions.to_dict("records")
                ],
                caption=f"Exceptions in user code ({data.locust_file(LOCUST_EXCEPTIONS)})",
            )
        )
    return Section("locust-failures", "Failures (Locust)", tables=tables) if tables else None


def locust_sections(data: RunData, shading: Sequence[Stage]) -> list[Section]:
    found = [summary_section(data), history_section(data, shading), failures_section(data)]
    return [section for section in found if section is not None]


def aggregate_row(data: RunData) -> dict | None:
    if data.stats is None:
        return None
    total = [row for row in analysis.locust_summary(data.stats) if row["aggregated"]]
    return total[0] if total else None


def headline(data: RunData) -> str:
    row = aggregate_row(data)
    if row is None:
        return "Locust recorded no aggregate row."
    return (
        f"{row['requests']:,} requests at {fmt_number(row['rps'], 2)} req/s, {row['failures']:,} failures; "
        f"p50 {fmt_number(row['p50'], 0)} ms, p95 {fmt_number(row['p95'], 0)} ms (Locust's rounded figures)."
    )


def key_figures(data: RunData) -> list[Figure]:
    """The first screen's figures of a run without request logs."""
    row = aggregate_row(data)
    if row is None:
        return []
    history = active_history(data)
    span = peak = None
    if history is not None and len(history):
        span = float(history["elapsed_s"].max() - history["elapsed_s"].min())
        users = history["User Count"].dropna()
        peak = float(users.max()) if len(users) else None
    return locust_figures(row, span, peak)
