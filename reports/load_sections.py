"""Report sections about load levels: SLO table, knee, capacity statement, generator health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.results import RunInfo
from reports import analysis, charts
from reports import capacity as cap
from reports.charts import Stage
from reports.html import Section, Table, fmt_number
from reports.slo import log_values, slo_rows
from reports.verdict import gate_value


def slo_section(run: RunInfo, requests: pd.DataFrame | None = None) -> Section | None:
    rows = slo_rows(run)
    if not rows:
        return None

    def verdict(passed: Any) -> str:
        return "passed" if passed is True else "MISSED" if passed is False else "not evaluated"

    from_log = log_values(rows, requests)
    table = Table(
        columns=("SLO", "Measured by the run", "From the request log", "Result"),
        numeric=(False, True, True, False),
        rows=[
            [
                row["expr"],
                gate_value(row["value"], row["unit"]),
                gate_value(value, row["unit"]),
                verdict(row["passed"]),
            ]
            for row, value in zip(rows, from_log, strict=True)
        ],
        row_classes=[
            "pass" if row["passed"] is True else "fail" if row["passed"] is False else "" for row in rows
        ],
    )
    missed = sum(1 for row in rows if row["passed"] is False)
    note = f"{missed} of {len(rows)} SLOs missed." if missed else f"All {len(rows)} SLOs passed."
    return Section(
        "slo",
        "Service-level objectives",
        notes=[
            note,
            "Result and 'measured by the run' are the run's own verdict (run.json), over Locust-style "
            "histograms that round latencies (merged exactly across workers). 'From the request log' "
            "recomputes each value from every call with the same nearest-rank percentiles as the "
            "latency tables below, so the two agree to the millisecond.",
        ],
        tables=[table],
    )


def knee_section(series: pd.DataFrame) -> Section | None:
    """Latency against throughput per time bin, with the knee when the curve has one."""
    x, y = cap.throughput_latency_points(series)
    if x.size < 4:
        return None
    curve_x, curve_y = cap.knee_curve(x, y)
    knee = cap.find_knee(curve_x, curve_y)
    if knee is None:
        statement = "No knee found: over the load levels reached, p95 latency did not turn sharply upward."
    else:
        statement = (
            f"Knee at about {knee.throughput:,.1f} req/s (p95 {knee.latency:,.0f} ms): beyond this load, latency "
            "grows much faster than throughput."
        )
    chart = charts.scatter_knee(
        "chart-knee",
        "Latency against throughput",
        x,
        y,
        curve_x,
        curve_y,
        knee.throughput if knee else None,
        "p95 end-to-end time (ms)",
    )
    return Section(
        "knee",
        "Latency against throughput",
        notes=[
            statement,
            "Each dot is one time bin; the line is the median per throughput band. The knee is found with "
            "the Kneedle method: the point of the normalised curve furthest below the diagonal.",
        ],
        charts=[chart],
    )


def capacity_statement(result: cap.Capacity) -> str:
    """One sentence on capacity, about the gates the user set only; without gates, what was measured."""
    gates = "; ".join(slo.expr for slo in result.criteria)
    if not result.judged:
        busiest = result.busiest()
        assert busiest is not None
        e2e = busiest["e2e_p95_ms"]
        return (
            f"No --slo gate was set, so no capacity is claimed. Highest load measured: "
            f"{busiest['rps']:,.2f} req/s (window {busiest['window']}), with "
            f"{gate_value(busiest['failure_pct'], '%')} of calls failed and p95 end-to-end "
            + ("– (no call answered)" if e2e is None or e2e != e2e else gate_value(e2e, "ms"))
            + "."
        )
    if result.best_rps is None:
        return f"No load window met your SLOs ({gates}): capacity is below the lowest load tested."
    statement = (
        f"Capacity: {result.best_rps:,.2f} req/s sustained (window {result.best_window}) and "
        f"{result.best_tokens_per_min:,.0f} output tokens/min met your SLOs ({gates})."
    )
    if not any(slo.metric == "error_rate" for slo in result.criteria):
        best = result.table[result.table["window"] == result.best_window].iloc[0]
        statement += f" No gate bounds failures: {gate_value(best['failure_pct'], '%')} of calls failed in that window."
    return statement


def capacity_section(result: cap.Capacity) -> Section | None:
    if result.table.empty:
        return None
    notes = [capacity_statement(result)]
    if result.judged:
        notes.append(
            "Each window (a load-shape stage, or a fixed slice of the run without stages) holds the calls "
            "that started in it; it meets the SLOs when every gate you set holds on its calls (latency "
            "percentiles by nearest rank, as the run's own gates)."
        )
    else:
        notes.append(
            "Each window (a load-shape stage, or a fixed slice of the run without stages) holds the calls "
            "that started in it. Give --slo (e.g. e2e_p95<=5s,error_rate<=1%) to judge the windows."
        )
    if result.ignored:
        notes.append("Not judged per window: " + "; ".join(result.ignored) + ".")
    rows = []
    for row in result.table.to_dict("records"):
        values = [gate_value(row[slo.expr], slo.unit) for slo in result.criteria]
        verdict = [] if not result.judged else ["yes" if row["met"] else "no"]
        rows.append(
            [
                str(row["window"]),
                fmt_number(row["end_s"] - row["start_s"], 0),
                fmt_number(row["requests"], 0),
                fmt_number(row["rps"], 2),
                fmt_number(row["tokens_per_min"], 0),
                gate_value(row["failure_pct"], "%"),
                gate_value(row["e2e_p95_ms"], "ms"),
                *values,
                *verdict,
            ]
        )
    table = Table(
        columns=(
            "Window",
            "Length (s)",
            "Requests",
            "Req/s",
            "Output tokens/min",
            "Failed",
            "e2e p95",
            *(s.expr for s in result.criteria),
            *(["Met your SLOs"] if result.judged else []),
        ),
        numeric=(False, *([True] * (6 + len(result.criteria))), False),
        rows=rows,
        row_classes=(["pass" if met else "fail" for met in result.table["met"]] if result.judged else []),
    )
    return Section("capacity", "Capacity" if result.judged else "Load windows", notes=notes, tables=[table])


def health_section(health: pd.DataFrame, origin: float, stages: Sequence[Stage]) -> tuple[Section, list[str]]:
    """Generator CPU and event-loop lag per node, and warnings for sustained overload."""
    found = analysis.health_warnings(health, origin)
    messages = [warning.message() for warning in found]
    section = Section(
        "health",
        "Load generator health",
        warnings=messages,
        notes=[
            f"Warnings mark {analysis.SUSTAINED_SAMPLES} or more consecutive samples with CPU at or above "
            f"{analysis.CPU_BUSY_PERCENT:.0f}% or event-loop lag at or above {analysis.LOOP_LAG_SLOW_MS:.0f} ms."
            + ("" if messages else " None were found: the generator kept up.")
        ],
    )
    nodes = list(health.groupby("node", sort=True))
    for column, title, label, key in (
        ("cpu_percent", "Generator CPU", "CPU (% of one core)", "chart-health-cpu"),
        ("loop_lag_ms", "Generator event-loop lag", "Lag (ms)", "chart-health-lag"),
    ):
        lines = [
            (str(node), (part["timestamp"] - origin).to_numpy(), part[column].to_numpy(dtype=float))
            for node, part in nodes
        ]
        if any(np.isfinite(values).any() for _, _, values in lines):
            section.charts.append(charts.time_chart(key, title, label, lines, stages))
    return section, messages
