"""Report sections from the per-request logs: summary, errors, time series, distributions. Each
function takes analysed data and returns a Section of formatted tables and charts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.outcome import ERROR_KINDS, FAILURE_KINDS
from reports import charts
from reports import llm_analysis as la
from reports.charts import Stage
from reports.html import Section, Table, fmt_ms, fmt_number, fmt_share


def summary_section(table: pd.DataFrame) -> Section:
    main = Table(
        columns=(
            "Scenario",
            "Model",
            "Requests",
            "Failures",
            "Failure rate",
            "Blocked answers",
            "Cancelled at stop",
            "Req/s",
            "Output tokens/s",
            "Cost (USD)",
            "Cost / 1,000 req (USD)",
        ),
        numeric=(False, False, *([True] * 9)),
        rows=[
            [
                row.scenario,
                row.model,
                fmt_number(row.requests, 0),
                fmt_number(row.failures, 0),
                fmt_share(row.failure_rate),
                fmt_number(row.blocked, 0),
                fmt_number(row.cancelled, 0),
                fmt_number(row.rps, 2),
                fmt_number(row.tokens_per_s, 1),
                fmt_number(row.cost_usd, 4),
                fmt_number(row.cost_per_1k, 4),
            ]
            for row in table.itertuples()
        ],
        row_classes=["aggregated" if row.scenario == la.ALL else "" for row in table.itertuples()],
        caption="Requests, failures, throughput and cost",
    )
    latency_rows, latency_classes = [], []
    for row in table.to_dict("records"):
        for column, label in la.LATENCY_METRICS.items():
            values = [row[f"{column}_p{q}"] for q in (50, 90, 95, 99)]
            if all(v != v for v in values):
                continue
            latency_rows.append([row["scenario"], row["model"], label, *(fmt_ms(v) for v in values)])
            latency_classes.append("aggregated" if row["scenario"] == la.ALL else "")
    latency = Table(
        columns=("Scenario", "Model", "Metric", "p50 (ms)", "p90 (ms)", "p95 (ms)", "p99 (ms)"),
        numeric=(False, False, False, True, True, True, True),
        rows=latency_rows,
        row_classes=latency_classes,
        caption="Latency percentiles of answered requests (failures left out)",
    )
    kinds_present = [k for k in ERROR_KINDS if table[f"kind_{k}"].sum() > 0]
    sections_tables = [main, latency]
    if kinds_present:
        sections_tables.append(
            Table(
                columns=("Scenario", "Model", *kinds_present),
                numeric=(False, False, *([True] * len(kinds_present))),
                rows=[
                    [row["scenario"], row["model"], *(fmt_number(row[f"kind_{k}"], 0) for k in kinds_present)]
                    for row in table.to_dict("records")
                ],
                row_classes=["aggregated" if s == la.ALL else "" for s in table["scenario"]],
                caption=(
                    "Errors by kind (blocked answers are answers, and cancelled calls were cut off by "
                    "the run's stop: neither is a failure)"
                ),
            )
        )
    attempts_table = _attempts_table(table)
    if attempts_table is not None:
        sections_tables.append(attempts_table)
    return Section(
        "llm-summary",
        "LLM summary (per-request logs)",
        notes=[
            "Exact figures from the per-request logs (requests-*.csv). Rates are over the span from the "
            "first request's start to the last request's end. TTFT is time to the first chunk with answer "
            "text; time per output token is (last chunk - first chunk) / (output tokens - 1)."
        ],
        tables=sections_tables,
    )


def _attempts_table(table: pd.DataFrame) -> Table | None:
    """Requests sent, by what came of each: shown when retries or the stop hid some of them
    (every 429 a retry absorbed, every attempt of a cancelled call)."""
    if "attempts" not in table or not (
        table["attempts"].sum() > table["requests"].sum() or table["cancelled"].sum() > 0
    ):
        return None
    kinds = [k for k in ERROR_KINDS if table[f"attempt_{k}"].sum() > 0]
    return Table(
        columns=("Scenario", "Model", "Calls", "Attempts", "Answered", *kinds),
        numeric=(False, False, *([True] * (3 + len(kinds)))),
        rows=[
            [
                row["scenario"],
                row["model"],
                fmt_number(row["requests"], 0),
                fmt_number(row["attempts"], 0),
                fmt_number(row["requests"] - row["failures"] - row["cancelled"], 0),
                *(fmt_number(row[f"attempt_{k}"], 0) for k in kinds),
            ]
            for row in table.to_dict("records")
        ],
        row_classes=["aggregated" if s == la.ALL else "" for s in table["scenario"]],
        caption=(
            "Attempts (requests sent) by what came of each: retries and calls cancelled at the stop "
            "included, so they add up to what the server was sent"
        ),
    )


def errors_section(errors: pd.DataFrame) -> Section | None:
    if errors.empty:
        return None
    table = Table(
        columns=("Kind", "Scenario", "Message (redacted)", "Count"),
        numeric=(False, False, False, True),
        rows=[
            [str(r.error_kind), str(r.scenario), str(r.error_message), fmt_number(r.count, 0)]
            for r in errors.itertuples()
        ],
    )
    return Section("llm-errors", "Most frequent errors", tables=[table])


def timeline_section(
    series: pd.DataFrame, stages: Sequence[Stage], users: tuple[np.ndarray, np.ndarray] | None
) -> Section:
    xs = series["elapsed_s"].to_numpy()
    right = ("users", users[0], users[1]) if users is not None else None
    section = Section(
        "llm-timeline",
        "Time series (per-request logs)",
        notes=["Binned by completion time. Shaded bands are the load-shape stages."],
    )
    section.charts.append(
        charts.time_chart(
            "chart-llm-rps",
            "Users and throughput by outcome",
            "Requests per second (req/s)",
            [
                ("answered", xs, series["ok_rps"]),
                ("failed", xs, series["failed_rps"]),
                ("blocked", xs, series["blocked_rps"]),
            ],
            stages,
            right=right,
            right_label="Users (count)",
        )
    )
    # Failures only: a blocked answer is an answer (its own chart below), a cancelled call was cut
    # off by the stop.
    rate_columns = [
        f"rate_{kind}" for kind in ERROR_KINDS if kind in FAILURE_KINDS and f"rate_{kind}" in series
    ]
    if rate_columns:
        section.charts.append(
            charts.stacked_time_chart(
                "chart-llm-errors",
                "Failure rate by kind",
                "Share of requests (%)",
                xs,
                {c.removeprefix("rate_"): series[c].fillna(0).to_numpy() for c in rate_columns},
                stages,
            )
        )
    blocked = blocked_share(series)
    if blocked is not None:
        section.charts.append(
            charts.time_chart(
                "chart-llm-blocked",
                "Blocked answers (safety filters; answers, not failures)",
                "Share of requests (%)",
                [("blocked", xs, blocked)],
                stages,
            )
        )
    section.charts.append(
        charts.time_chart(
            "chart-llm-latency",
            "End-to-end latency percentiles",
            "End-to-end time (ms)",
            [(f"p{q}", xs, series[f"e2e_ms_p{q}"]) for q in (50, 95, 99)],
            stages,
        )
    )
    if series["ttft_ms_p50"].notna().any():
        section.charts.append(
            charts.time_chart(
                "chart-llm-ttft",
                "Time to first token percentiles",
                "TTFT (ms)",
                [(f"p{q}", xs, series[f"ttft_ms_p{q}"]) for q in (50, 95, 99)],
                stages,
            )
        )
    return section


def blocked_share(series: pd.DataFrame) -> np.ndarray | None:
    """Per bin, the share of requests answered with a block (%), NaN for a bin with no requests;
    None when nothing was blocked."""
    if "rate_blocked" not in series or not (series["rate_blocked"] > 0).any():
        return None
    return series["rate_blocked"].to_numpy(dtype=float)


def distribution_section(requests: pd.DataFrame) -> Section | None:
    section = Section(
        "llm-distributions",
        "Latency distributions per scenario",
        notes=[
            "Empirical cumulative distributions of answered requests; read the p-th percentile at height p/100."
        ],
    )
    for column, label in (("e2e_ms", "End-to-end time (ms)"), ("ttft_ms", "TTFT (ms)")):
        curves = la.distributions(requests, column)
        if curves:
            section.charts.append(
                charts.ecdf_chart(
                    f"chart-ecdf-{column}", f"{label.split(' (')[0]} by scenario", label, curves
                )
            )
    return section if section.charts else None
