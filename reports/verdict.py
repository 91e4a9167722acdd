"""The report's first screen: the run's verdict (what its exit code means) and its key figures.

The verdict is read back from run.json, the run's own judgement: the gates the user set, a capacity
search's result, a broken or refused start. A run without gates gets no pass/fail claim: it says
what was measured and which rule (Locust's own) decided its exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.results import RunInfo
from reports.html import fmt_number, fmt_share

PASS, FAIL, BROKEN, NONE = "pass", "fail", "broken", "none"


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class GateLine:
    expr: str
    measured: str
    result: str  # passed | MISSED | not evaluated


@dataclass
class Verdict:
    status: str  # PASS, FAIL, BROKEN or NONE (nothing judged)
    title: str
    detail: str
    gates: list[GateLine] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def gate_value(value: Any, unit: str) -> str:
    """A gate's measured value with its unit, as the SLO tables print it."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–" if value in (None, "") else str(value)
    suffix = {"ms": " ms", "%": "%", "rps": " /s", "usd": " USD"}.get(unit, "")
    digits = {"usd": 4, "ms": 0, "count": 0}.get(unit, 2)
    return fmt_number(value, digits) + suffix


def _gates(run: RunInfo) -> list[GateLine]:
    return [
        GateLine(
            slo.expr,
            gate_value(slo.value, slo.unit),
            "passed" if slo.passed is True else "MISSED" if slo.passed is False else "not evaluated",
        )
        for slo in run.slo
    ]


def judge(run: RunInfo, calls: int | None, failures: int | None, unit: str = "calls") -> Verdict:
    """The verdict from run.json and the totals measured (`unit`: "calls", or "requests" for plain
    Locust CSVs). Mirrors the precedence of the run's exit code (README, Exit codes)."""
    gates = _gates(run)
    if run.refused_workers:
        verdict = Verdict(
            BROKEN,
            "Start-up failed",
            "A worker refused to start and the run was stopped (a headless run exits 2).",
            gates,
        )
    elif run.lost_workers or run.emulator_died is not None:
        what = "a worker was lost" if run.lost_workers else "the bundled emulator died"
        verdict = Verdict(
            BROKEN,
            "The run broke",
            f"Mid-run, {what}: the results cover only part of the load asked for (a headless run exits 6).",
            gates,
        )
    elif isinstance(run.capacity, dict):
        found = run.capacity.get("capacity_rps")
        verdict = (
            Verdict(
                PASS,
                f"Capacity found: {found:,.2f} req/s",
                "The capacity search found the highest rate that met its SLOs (exit 0).",
                gates,
            )
            if isinstance(found, int | float)
            else Verdict(
                FAIL,
                "No capacity found",
                "Not even the capacity search's first step met its SLOs "
                f"(stop: {run.capacity.get('stop_reason', 'unknown')}; exit 3).",
                gates,
            )
        )
    elif run.slo_error:
        verdict = Verdict(FAIL, "SLOs not judged", f"--slo could not be judged: {run.slo_error}", gates)
    elif gates:
        missed = sum(1 for gate in gates if gate.result == "MISSED")
        unjudged = sum(1 for gate in gates if gate.result == "not evaluated")
        if missed:
            verdict = Verdict(
                FAIL,
                f"{missed} of {len(gates)} SLO gates missed",
                "An --slo gate failed (a headless run exits 3).",
                gates,
            )
        elif unjudged:
            verdict = Verdict(
                NONE,
                f"{unjudged} of {len(gates)} SLO gates not evaluated",
                "Nothing was there to judge them on.",
                gates,
            )
        else:
            verdict = Verdict(
                PASS,
                "The SLO gate passed" if len(gates) == 1 else f"All {len(gates)} SLO gates passed",
                "Every --slo gate you set held (a headless run exits 0).",
                gates,
            )
    elif calls == 0:
        verdict = Verdict(
            BROKEN,
            "Nothing measured",
            f"Not one of the {unit} completed (a headless run exits {'128+N' if run.interrupted else '5'}).",
        )
    else:
        failed = "–" if failures is None else f"{failures:,}"
        total = "–" if calls is None else f"{calls:,}"
        verdict = Verdict(
            NONE,
            "No SLO gates set: nothing judged",
            f"{failed} of {total} {unit} failed. Without "
            "--slo, Locust's own rule sets the exit code: 1 when any request failed, else 0.",
        )
    if run.budget is not None and run.budget.reached:
        spent = (
            run.budget.spent_at_stop_usd if run.budget.spent_at_stop_usd is not None else run.budget.spent_usd
        )
        verdict.detail += (
            f" The cost budget ({fmt_number(run.budget.max_cost_usd, 2)} USD) stopped the run; "
            f"{fmt_number(spent, 4)} USD spent."
        )
    if run.interrupted and verdict.status != BROKEN:
        verdict.detail += f" The run was interrupted ({run.interrupted})."
    return verdict


def _pair(low: float, high: float) -> str:
    if low != low and high != high:
        return "–"
    return f"{fmt_number(low, 0)} / {fmt_number(high, 0)} ms"


def llm_figures(row: pd.Series, span_s: float) -> list[Figure]:
    """Key figures from the per-request logs' `(all)` summary row (llm_analysis.summary)."""
    figures = [
        Figure(
            "Calls", f"{int(row['requests']):,}", f"{fmt_number(row['rps'], 2)} req/s over {span_s:,.0f} s"
        ),
        Figure("Failed", f"{int(row['failures']):,}", fmt_share(row["failure_rate"])),
    ]
    if row["blocked"]:
        figures.append(Figure("Blocked answers", f"{int(row['blocked']):,}", "answers, not failures"))
    figures.append(Figure("End-to-end p50 / p95", _pair(row["e2e_ms_p50"], row["e2e_ms_p95"])))
    if row["ttft_ms_p50"] == row["ttft_ms_p50"]:
        figures.append(Figure("TTFT p50 / p95", _pair(row["ttft_ms_p50"], row["ttft_ms_p95"])))
    if row["tokens_per_s"] == row["tokens_per_s"]:
        figures.append(Figure("Output tokens/s", fmt_number(row["tokens_per_s"], 1)))
    figures.append(
        Figure(
            "Cost", f"{fmt_number(row['cost_usd'], 4)} USD", f"{fmt_number(row['cost_per_1k'], 4)} per 1,000"
        )
    )
    return figures


def locust_figures(row: dict[str, Any], span_s: float | None, peak_users: float | None) -> list[Figure]:
    """Key figures from Locust's Aggregated row (analysis.locust_summary) and its trimmed history."""
    rate = row["failures"] / row["requests"] if row["requests"] else float("nan")
    figures = [
        Figure("Requests", f"{row['requests']:,}", f"{fmt_number(row['rps'], 2)} req/s"),
        Figure("Failed", f"{row['failures']:,}", fmt_share(rate)),
        Figure(
            "Response time p50 / p95",
            _pair(
                row["p50"] if row["p50"] is not None else float("nan"),
                row["p95"] if row["p95"] is not None else float("nan"),
            ),
            "Locust's rounded figures",
        ),
    ]
    if span_s is not None:
        figures.append(Figure("Duration", f"{span_s:,.0f} s", "first to last request"))
    if peak_users is not None:
        figures.append(Figure("Peak users", fmt_number(peak_users, 0)))
    return figures
