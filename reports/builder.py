"""build_report: results folder -> sections (tables, charts) -> one self-contained report.html."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core.results import REPORT_HTML
from reports import analysis, caching, charts, llm_sections, load_sections, scenario_sections, thinking
from reports import capacity as cap
from reports import llm_analysis as la
from reports import scenario_analysis as scenarios
from reports.html import Section, Table, fmt_number, render
from reports.loading import RunData, load_results
from reports.metadata import metadata_rows, run_events, stages


def locust_sections(data: RunData, shading: list) -> list[Section]:
    """Summary table from locust_stats.csv and time charts from the Aggregated history rows."""
    sections = []
    if data.stats is not None:
        rows = analysis.locust_summary(data.stats)
        table = Table(
            columns=(
                "Type (model)",
                "Name (scenario)",
                "Requests",
                "Failures",
                "Req/s",
                "Fail/s",
                "p50 (ms)",
                "p90 (ms)",
                "p95 (ms)",
                "p99 (ms)",
                "Avg size (bytes)",
            ),
            numeric=(False, False, *([True] * 9)),
            rows=[
                [
                    row["type"],
                    row["name"],
                    fmt_number(row["requests"], 0),
                    fmt_number(row["failures"], 0),
                    fmt_number(row["rps"], 2),
                    fmt_number(row["failures_per_s"], 2),
                    fmt_number(row["p50"], 0),
                    fmt_number(row["p90"], 0),
                    fmt_number(row["p95"], 0),
                    fmt_number(row["p99"], 0),
                    fmt_number(row["avg_size"], 0),
                ]
                for row in rows
            ],
            row_classes=["aggregated" if row["aggregated"] else "" for row in rows],
        )
        sections.append(
            Section(
                "locust-summary",
                "Locust summary",
                notes=[
                    "From locust_stats.csv. Locust stores response times rounded (to 10 ms above 100 ms, "
                    "100 ms above 1 s), so its percentiles are approximate."
                ],
                tables=[table],
            )
        )
    if data.history is not None:
        sections.append(history_section(data, shading))
    if data.failures is not None and len(data.failures):
        failures = data.failures.sort_values("Occurrences", ascending=False)
        table = Table(
            columns=("Method (model)", "Name (scenario)", "Error", "Occurrences"),
            numeric=(False, False, False, True),
            rows=[
                [str(row["Method"]), str(row["Name"]), str(row["Error"]), fmt_number(row["Occurrences"], 0)]
                for row in failures.to_dict("records")
            ],
        )
        sections.append(Section("locust-failures", "Failures (Locust)", tables=[table]))
    return sections


def history_section(data: RunData, shading: list) -> Section:
    assert data.history is not None
    history = analysis.aggregated_history(data.history, data.origin)
    xs = history["elapsed_s"].to_numpy()
    section = Section(
        "locust-timeline",
        "Load over time (Locust)",
        notes=[
            "From locust_stats_history.csv, Aggregated rows, one per second. Locust's percentiles there "
            "cover about the last 10 seconds. Shaded bands are the load-shape stages."
        ],
    )
    section.charts.append(
        charts.time_chart(
            "chart-throughput",
            "Throughput and users",
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
    return section


def _locust_headline(data: RunData) -> str:
    assert data.stats is not None
    total = [row for row in analysis.locust_summary(data.stats) if row["aggregated"]]
    if not total:
        return "Locust recorded no aggregate row."
    row = total[0]
    return (
        f"{row['requests']:,} requests at {fmt_number(row['rps'], 2)} req/s, {row['failures']:,} failures; "
        f"p50 {fmt_number(row['p50'], 0)} ms, p95 {fmt_number(row['p95'], 0)} ms (Locust's rounded figures)."
    )


def metadata_section() -> Section:
    return Section("metadata", "Run metadata", notes=["Options are shown without secrets."])


def _headline(summary: pd.DataFrame) -> str:
    row = summary[summary["scenario"] == la.ALL].iloc[0]
    text = (
        f"{row['requests']:,} requests at {row['rps']:,.2f} req/s: {row['failures']:,} failed "
        f"({row['failure_rate'] * 100:.2f}%), {row['blocked']:,} blocked answers{_cut_off(row)}. "
        f"End-to-end p50 {fmt_number(row['e2e_ms_p50'], 0)} ms, p95 {fmt_number(row['e2e_ms_p95'], 0)} ms"
    )
    if row["ttft_ms_p95"] == row["ttft_ms_p95"]:
        text += f"; TTFT p95 {fmt_number(row['ttft_ms_p95'], 0)} ms"
    if row["tokens_per_s"] == row["tokens_per_s"]:
        text += f"; {row['tokens_per_s']:,.1f} output tokens/s"
    return text + f". Cost {row['cost_usd']:,.4f} USD ({row['cost_per_1k']:,.4f} per 1,000 requests)."


def _cut_off(row: pd.Series) -> str:
    """What the headline adds when retries or the stop hid requests: the calls cancelled at the stop
    and the attempts (requests sent) that retries and cancelled calls made, rate-limited ones named."""
    cancelled, attempts = int(row.get("cancelled", 0)), int(row.get("attempts", row["requests"]))
    if not cancelled and attempts <= row["requests"]:
        return ""
    text = f", {cancelled:,} cancelled at the stop" if cancelled else ""
    limited = int(row.get("attempt_rate_limited", 0))
    return text + f"; {attempts:,} attempts sent" + (f" ({limited:,} rate-limited)" if limited else "")


def request_log_sections(data: RunData, shading: list, headlines: list[str]) -> list[Section]:
    """The LLM analyses: only when per-request logs exist (a plain Locust run has none).

    Appends the key statements (totals, knee, capacity) to `headlines` for the overview.
    """
    if data.requests is None or data.requests.empty:
        return []
    requests = la.add_derived(data.requests)
    origin = data.origin
    start, end = la.run_span(requests)
    series = la.time_series(requests, origin, la.bin_width(end - start))
    # Throughput per 1-s bin is too noisy for a latency-throughput curve; 5 s or more smooths it.
    # Binned by start time, so each point pairs an offered load with the latency it caused.
    knee_series = la.time_series(requests, origin, max(5.0, la.bin_width(end - start, 120)), by="start_time")
    # Leave out the last, partial bin, whose request rate is too low.
    knee_series = knee_series.iloc[:-1]
    users = None
    if data.history is not None:
        history = analysis.aggregated_history(data.history, origin)
        users = (history["elapsed_s"].to_numpy(), history["User Count"].to_numpy())
    spans = cap.windows(shading, (start - origin, end - origin))
    capacity = cap.capacity(requests, origin, spans, data.run)
    summary = la.summary(requests)
    variants = scenarios.variant_comparison(requests)
    knee = load_sections.knee_section(knee_series)
    capacity_section = load_sections.capacity_section(capacity)
    headlines.append(_headline(summary))
    thinking_table = thinking.thinking_figures(requests)
    cut_off = thinking.max_tokens_note(thinking_table)
    if cut_off is not None:
        headlines.append(cut_off)
    caching_table = caching.caching_figures(requests)
    cache_line = caching.caching_headline(caching_table)
    if cache_line is not None:
        headlines.append(cache_line)
    headlines += [section.notes[0] for section in (capacity_section, knee) if section is not None]
    found = [
        llm_sections.summary_section(summary),
        thinking.thinking_section(thinking_table),
        caching.caching_section(caching_table),
        llm_sections.errors_section(la.top_errors(requests)),
        llm_sections.timeline_section(series, shading, users),
        knee,
        capacity_section,
        llm_sections.distribution_section(requests),
        scenario_sections.variant_section(variants, scenarios.image_rule_notes(requests, variants)),
        scenario_sections.moderation_section(scenarios.moderation(requests)),
    ]
    return [section for section in found if section is not None]


def build_report(results_dir: str | os.PathLike[str]) -> Path:
    """Build results_dir/report.html and return its path; ReportInputError on unusable input.

    Problems with single files (missing, empty, partial, wrong columns) do not raise: they become
    warnings at the top of the report, which is built from whatever is usable.
    """
    return write_report(load_results(results_dir))


def write_report(data: RunData) -> Path:
    """Analyse loaded data and write its report.html into the results folder."""
    shading = stages(data)
    warnings = run_events(data.run) + list(data.warnings)  # what broke the run comes first
    overview = Section("overview", "At a glance")
    sections = [overview, metadata_section()]
    if data.requests is not None and not data.requests.empty:
        la.add_derived(data.requests)  # in place: the SLO table reads the same flags as the analyses
    slo = load_sections.slo_section(data.run, data.requests)
    if slo is not None:
        sections.append(slo)
        overview.notes.append(slo.notes[0])
    sections += request_log_sections(data, shading, overview.notes)
    locust = locust_sections(data, shading)
    sections += locust
    if data.requests is None and data.stats is not None:
        overview.notes.append(_locust_headline(data))
    if data.health is not None and not data.health.empty:
        health, health_warnings = load_sections.health_section(data.health, data.origin, shading)
        sections.append(health)
        warnings += health_warnings
        overview.notes.append(
            f"Load generator: {len(health_warnings)} health warning(s); see Load generator health."
            if health_warnings
            else "Load generator: no sustained CPU or event-loop-lag overload."
        )
    if not overview.notes:
        sections.remove(overview)
    run_id = data.run.run_id or data.results_dir.name
    html = render(
        "report.html.j2",
        title=f"Load test report: {run_id}",
        subtitle=f"Host {data.run.host or 'unknown'}",
        warnings=warnings,
        sections=sections,
        metadata=metadata_rows(data),
        results_dir=str(data.results_dir),
    )
    path = data.results_dir / REPORT_HTML
    path.write_text(html, encoding="utf-8")
    return path
