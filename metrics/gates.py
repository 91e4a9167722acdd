"""SLO gates on the whole run: --slo, judged on the merged LLM stats, printed and saved to run.json.

The expression syntax, metric definitions and pass rule are core/slo.py's (one parser for the
suite; the capacity shape reads the same --slo value). What differs is the input: core/slo.py
judges raw samples of a window, while a whole distributed run only has the merged histograms on the
master. Latency values are therefore computed here from the histograms (nearest rank, as slo.py
does on samples) and handed to slo.evaluate as a one-sample window, so the comparison and the
"no data does not pass" rule stay slo.py's.

At the end, judge_run() prints the table, puts the results into run.json's extra and returns what
metrics/verdict.py needs to decide the exit code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.options import OptionError
from core.slo import OPTION, TIME_METRIC, GateResult, SloGate, WindowStats, evaluate, parse_slo
from metrics.llm_stats import FAILURE_KIND_NAMES, TPOT_SCALE, LlmStats, bucket_percentile, entry_average

logger = logging.getLogger(__name__)

__all__ = [
    "Judgement",
    "add_arguments",
    "evaluate_run",
    "format_table",
    "gates_from_options",
    "judge_run",
    "live_results",
]


def add_arguments(parser: Any) -> None:
    parser.add_argument(
        OPTION,
        default="",
        include_in_web_ui=True,
        env_var="LOCUST_SLO",
        help=(
            "SLO gates, comma-separated, e.g. 'ttft_p95<=800ms,e2e_p99<=5s,error_rate<=1%,rps>=50,"
            "cost_per_1k<=2usd'. A headless run prints a pass/fail table and exits with code 3 when one fails"
        ),
    )


def gates_from_options(options: Any) -> list[SloGate]:
    """The --slo gates; raises OptionError (a one-line message) on a bad expression."""
    return parse_slo(getattr(options, "slo", None) or None)


def window_from_stats(stats: LlmStats) -> WindowStats:
    """Counts, cost and duration of the whole run; latency lists stay empty (see module docstring)."""
    counts = stats.total.counts
    return WindowStats(
        requests=counts["requests"],
        failures={kind: counts[kind] for kind in FAILURE_KIND_NAMES if counts.get(kind)},
        blocked=counts["blocked"],
        cancelled=counts.get("cancelled", 0),
        duration_s=stats.duration_s(),
        cost_usd=stats.total.cost_usd,
    )


def time_value(stats: LlmStats, metric: str) -> float | None:
    """ttft_p95, e2e_avg, lag_max ... in ms from the run's merged histograms; None without samples."""
    match = TIME_METRIC.match(metric)
    if match is None:
        return None
    source, pct, stat = match.groups()
    entry = stats.timing_entry(source, None)
    if entry.num_requests == 0:
        return None
    if pct is not None:
        value = bucket_percentile(entry, float(pct))
    elif stat == "avg":
        value = entry_average(entry)
    else:
        value = float(entry.max_response_time)
    # The tpot histogram holds µs so that sub-millisecond times per token keep their resolution.
    return value / TPOT_SCALE if value is not None and source == "tpot" else value


def evaluate_run(gates: list[SloGate], stats: LlmStats) -> list[GateResult]:
    window = window_from_stats(stats)
    results: list[GateResult] = []
    for gate in gates:
        match = TIME_METRIC.match(gate.metric)
        if match is None:
            results.extend(evaluate([gate], window))
            continue
        value = time_value(stats, gate.metric)
        one_sample = WindowStats(requests=window.requests, duration_s=window.duration_s)
        if value is not None:
            setattr(one_sample, f"{match.group(1)}_ms", [value])
        results.extend(evaluate([gate], one_sample))
    return results


def live_results(options: Any, stats: LlmStats) -> tuple[list[GateResult], str]:
    """The --slo gates judged on the run so far, as the final verdict will judge them (evaluate_run),
    for the web UI; and the option's one-line error ("" when it parses). Nothing is printed or saved."""
    try:
        slo_gates = gates_from_options(options)
    except OptionError as exc:
        return [], str(exc)
    return evaluate_run(slo_gates, stats), ""


def _format_value(result: GateResult) -> str:
    if result.value is None:
        return "no data"
    unit = result.gate.unit
    if unit == "ms":
        return f"{result.value:.1f} ms"
    if unit == "%":
        return f"{result.value:.3f} %"
    if unit == "usd":
        return f"{result.value:.4f} USD"
    if unit == "rps":
        return f"{result.value:.2f} /s"
    return f"{result.value:g}"


def format_table(results: list[GateResult]) -> str:
    """The pass/fail table a headless run prints."""
    rows = [("SLO", "value", "result")]
    rows += [(r.gate.expr, _format_value(r), "PASS" if r.passed else "FAIL") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = sum(not r.passed for r in results)
    verdict = (
        f"{failed} of {len(results)} SLO gates failed" if failed else f"all {len(results)} SLO gates passed"
    )
    return "\n".join([*lines, verdict])


def results_for_run_json(results: list[GateResult]) -> list[dict[str, Any]]:
    """run.json["slo"]: [{"expr", "value", "passed", "metric", "threshold", "unit"}]."""
    return [result.as_dict() for result in results]


@dataclass(frozen=True)
class Judgement:
    """What the end of the run tells the verdict (metrics/verdict.py exit_code's inputs)."""

    slo_passed: bool | None = None  # None: no gates judged
    capacity_found: bool | None = None  # None: not a capacity search


def judge_run(
    options: Any, stats: LlmStats, capacity: dict[str, Any] | None, extra: dict[str, Any]
) -> Judgement:
    """Judge the whole run's --slo gates on its merged stats: print the table (and a capacity
    search's result), put run.json's "slo" (or "slo_error") into `extra`, return the judgement."""
    try:
        slo_gates = gates_from_options(options)
    except OptionError as exc:
        logger.error("SLO gates not judged: %s", exc)
        extra["slo_error"] = str(exc)
        return Judgement()
    if not slo_gates:
        return Judgement()
    results = evaluate_run(slo_gates, stats)
    extra["slo"] = results_for_run_json(results)
    print(format_table(results), flush=True)
    passed = all(result.passed for result in results)
    if capacity is None:
        return Judgement(slo_passed=passed)
    print(f"capacity search: {capacity.get('capacity_rps')} requests/s ({capacity.get('stop_reason')})")
    return Judgement(slo_passed=passed, capacity_found=capacity.get("capacity_rps") is not None)
