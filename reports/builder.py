"""build_report: results folder -> sections (tables, charts) -> one self-contained report.html."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from core.results import MODEL_CALLS, REPORT_HTML
from reports import (
    attribution_section,
    auth,
    caching,
    llm_sections,
    load_sections,
    locust_sections,
    policy,
    read_delay,
    scenario_sections,
    thinking,
)
from reports import batching as batches
from reports import capacity as cap
from reports import llm_analysis as la
from reports import scenario_analysis as scenarios
from reports import tiering as tiers
from reports.html import Section, fmt_number, render
from reports.loading import RunData, load_results
from reports.metadata import metadata_groups, run_events, stages
from reports.verdict import Verdict, judge, llm_figures


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


def request_log_sections(
    data: RunData, shading: list, headlines: list[str], summary: pd.DataFrame | None = None
) -> list[Section]:
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
    history = locust_sections.active_history(data)
    if history is not None:
        # The users line only over the span the calls cover: no flat line over idle time.
        xs = history["elapsed_s"].to_numpy()
        inside = (xs >= series["elapsed_s"].min() - 1) & (xs <= series["elapsed_s"].max() + 1)
        users = (xs[inside], history["User Count"].to_numpy()[inside])
    spans = cap.windows(shading, (start - origin, end - origin))
    capacity = cap.capacity(requests, origin, spans, data.run)
    summary = la.summary(requests) if summary is None else summary
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
    tiering = tiers.tiering_figures(requests)
    tier_line = tiers.tiering_headline(tiering)
    if tier_line is not None:
        headlines.append(tier_line)
    headlines += [section.notes[0] for section in (capacity_section, knee) if section is not None]
    app_split, app_line = attribution_section.attribution_section(
        requests, data.model_calls, data.run.attribution, (data.results_dir / MODEL_CALLS.name).exists()
    )
    if app_line is not None:
        headlines.append(app_line)
    found = [
        llm_sections.summary_section(summary),
        thinking.thinking_section(thinking_table),
        caching.caching_section(caching_table),
        llm_sections.errors_section(la.top_errors(requests)),
        llm_sections.timeline_section(series, shading, users),
        app_split,
        knee,
        capacity_section,
        llm_sections.distribution_section(requests),
        scenario_sections.variant_section(variants, scenarios.image_rule_notes(requests, variants)),
        scenario_sections.moderation_section(scenarios.moderation(requests)),
        tiers.tiering_section(tiering),
        batches.batching_section(batches.batching_figures(requests)),
    ]
    return [section for section in found if section is not None]


def build_report(results_dir: str | os.PathLike[str], prefix: str | None = None) -> Path:
    """Build results_dir/report.html and return its path; ReportInputError on unusable input.

    Problems with single files (missing, empty, partial, wrong columns) do not raise: they become
    warnings at the top of the report, which is built from whatever is usable. `prefix` picks the
    Locust CSVs (PREFIX_stats.csv...) of a folder holding several runs.
    """
    return write_report(load_results(results_dir, prefix=prefix))


def first_screen(data: RunData, summary: pd.DataFrame | None) -> Verdict:
    """The verdict and the key figures: from the request logs' summary when there are any, else
    from Locust's CSVs."""
    requests = data.requests
    if requests is not None and summary is not None:
        row = summary[summary["scenario"] == la.ALL].iloc[0]
        start, end = la.run_span(requests)
        verdict = judge(data.run, int(row["requests"]), int(row["failures"]))
        verdict.figures = llm_figures(row, end - start)
        return verdict
    aggregate = locust_sections.aggregate_row(data)
    if aggregate is None:
        return judge(data.run, None, None, unit="requests")
    verdict = judge(data.run, aggregate["requests"], aggregate["failures"], unit="requests")
    verdict.figures = locust_sections.key_figures(data)
    return verdict


def write_report(data: RunData) -> Path:
    """Analyse loaded data and write its report.html into the results folder.

    Reads top-down: the verdict and key figures, what broke the run, then the results, and the
    run's metadata last (folded but for what the user chose)."""
    shading = stages(data)
    warnings = run_events(data.run) + list(data.warnings)  # what broke the run comes first
    overview = Section("overview", "At a glance")
    sections = [overview]
    summary = None
    if data.requests is not None and not data.requests.empty:
        la.add_derived(data.requests)  # in place: the SLO table reads the same flags as the analyses
        summary = la.summary(data.requests)
    verdict = first_screen(data, summary)
    slo = load_sections.slo_section(data.run, data.requests)
    if slo is not None:
        sections.append(slo)
        overview.notes.append(slo.notes[0])
    sections += request_log_sections(data, shading, overview.notes, summary)
    client_policy = policy.policy_section(data.requests, data.policies, data.run, data.origin)
    if client_policy is not None:
        sections.append(client_policy)
    sections += locust_sections.locust_sections(data, shading)
    if data.requests is None and data.stats is not None:
        overview.notes.append(locust_sections.headline(data))
    # Generator-side facts beside CPU and loop lag: how late replies were read, and sign-in.
    delay_notes, delay_table, delay_warnings = read_delay.read_delay_part(data.requests)
    auth_notes, auth_table, auth_warnings = auth.auth_part(data.auth)
    generator_notes = delay_notes + auth_notes
    generator_tables = [table for table in (delay_table, auth_table) if table is not None]
    generator_warnings = delay_warnings + auth_warnings
    has_health = data.health is not None and not data.health.empty
    if has_health or generator_tables:
        health, health_warnings = (
            load_sections.health_section(data.health, data.origin, shading)
            if has_health
            else (Section("health", "Load generator health"), [])
        )
        health.notes += generator_notes
        health.tables += generator_tables
        health_warnings = [*health_warnings, *generator_warnings]
        health.warnings = list(health_warnings)
        sections.append(health)
        warnings += health_warnings
        if health_warnings:
            overview.notes.append(
                f"Load generator: {len(health_warnings)} health warning(s); see Load generator health."
            )
        elif has_health:  # CPU and loop lag were sampled: their silence means something
            overview.notes.append("Load generator: no sustained CPU or event-loop-lag overload.")
    if not overview.notes:
        sections.remove(overview)
    sections.append(Section("metadata", "Run metadata", notes=["Options are shown without secrets."]))
    run_id = data.run.run_id or data.results_dir.name
    html = render(
        "report.html.j2",
        title=f"Load test report: {run_id}",
        subtitle=f"Host {data.run.host or 'unknown'}",
        verdict=verdict,
        warnings=warnings,
        sections=sections,
        metadata=metadata_groups(data),
        results_dir=str(data.results_dir),
    )
    path = data.results_dir / REPORT_HTML
    path.write_text(html, encoding="utf-8")
    return path
