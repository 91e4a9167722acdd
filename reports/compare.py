"""`python -m reports compare BASE CANDIDATE`: deltas per scenario and metric, regressions flagged.

A change is a regression only when it is worse by more than the threshold (default 10%) AND beyond
noise. Noise, where the per-request logs allow it: a 99% confidence interval of each percentile from
order statistics (the two intervals must not overlap), a two-proportion z-test for the failure rate,
a Poisson z-test for throughput. From Locust's CSVs alone (no samples) only the threshold applies.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.quantiles import NUMPY_METHOD
from reports import attribution
from reports import llm_analysis as la
from reports.html import Section, Table, fmt_number, render
from reports.loading import ReportInputError, RunData, load_results

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_REGRESSION = 4
Z_99 = 2.576
MIN_FAILURE_RATE_DELTA = 0.005  # half a percentage point: smaller moves are not worth failing CI over
LOWER_IS_BETTER = {"failure_rate", "cost_per_1k"}
SPLIT = "(app/model split)"  # the model column of the app calls' app-and-model deltas


@dataclass
class Delta:
    scenario: str
    model: str
    metric: str
    base: float
    candidate: float
    regression: bool
    note: str = ""

    @property
    def change(self) -> float:
        return self.candidate - self.base

    @property
    def change_pct(self) -> float:
        return self.change / self.base * 100.0 if self.base else float("nan")


def percentile_interval(sorted_values: np.ndarray, quantile: float) -> tuple[float, float]:
    """A ~99% confidence interval of a percentile from order statistics (normal approximation)."""
    n = sorted_values.size
    spread = Z_99 * math.sqrt(n * quantile * (1 - quantile))
    low = max(0, int(math.floor(n * quantile - spread)))
    high = min(n - 1, int(math.ceil(n * quantile + spread)))
    return float(sorted_values[low]), float(sorted_values[high])


def _samples(data: RunData) -> dict[tuple[str, str], pd.DataFrame]:
    requests = la.add_derived(data.requests)
    groups = {(str(s), str(m)): g for (s, m), g in requests.groupby(["scenario", "model"], observed=True)}
    groups[(la.ALL, la.ALL)] = requests
    return groups


def _duration(frame: pd.DataFrame) -> float:
    # First to last start: the span load was offered over. The drain after it depends on a few slow
    # calls and would make rates noisy.
    return float(frame["start_time"].max() - frame["start_time"].min()) or 1.0


def _rate_drop(base: pd.Series, base_s: float, cand: pd.Series, cand_s: float) -> tuple[float, float, float]:
    """(base rate, candidate rate, z) of a compound-Poisson sum per second: z > 0 when it dropped."""
    rate_b, rate_c = float(base.sum()) / base_s, float(cand.sum()) / cand_s
    variance = float((base**2).sum()) / base_s**2 + float((cand**2).sum()) / cand_s**2
    return rate_b, rate_c, (rate_b - rate_c) / math.sqrt(variance) if variance > 0 else 0.0


def _flag(
    deltas: list[Delta], key: tuple[str, str], metric: str, b: float, c: float, worse: bool, z: float
) -> None:
    noisy = worse and z <= Z_99
    deltas.append(Delta(key[0], key[1], metric, b, c, worse and not noisy, "within noise" if noisy else ""))


def _percentile_delta(
    key: tuple[str, str], label: str, base: np.ndarray, cand: np.ndarray, quantile: float, threshold: float
) -> Delta:
    """One percentile of two sorted samples: a regression when worse by the threshold and the two
    99% confidence intervals do not overlap."""
    b, c = (float(np.quantile(v, quantile, method=NUMPY_METHOD)) for v in (base, cand))
    _, base_high = percentile_interval(base, quantile)
    cand_low, _ = percentile_interval(cand, quantile)
    worse = c > b * (1 + threshold)
    beyond_noise = cand_low > base_high
    note = "" if not worse or beyond_noise else "within noise"
    metric = f"{label}_p{round(quantile * 100)}_ms"
    return Delta(key[0], key[1], metric, b, c, worse and beyond_noise, note)


def _attribution_deltas(base: RunData, cand: RunData, threshold: float) -> list[Delta]:
    """App runs attributed in both: the app's own time and the model's, p50 and p95."""
    samples = [attribution.measured_split(run.requests, run.model_calls) for run in (base, cand)]
    if samples[0] is None or samples[1] is None:
        return []
    key = (attribution.APP_SCENARIO, SPLIT)
    return [
        _percentile_delta(
            key, label, *(np.sort(s[column].dropna().to_numpy()) for s in samples), q, threshold
        )
        for column, label in (("app_ms", "app_own"), ("model_ms", "model"))
        for q in (0.5, 0.95)
    ]


def _compare_groups(
    key: tuple[str, str], base: pd.DataFrame, cand: pd.DataFrame, threshold: float
) -> list[Delta]:
    deltas = []
    for column, label in (("e2e_ms", "e2e"), ("ttft_ms", "ttft"), ("tpot_ms", "tpot")):
        base_values = np.sort(base.loc[base["answered"], column].dropna().to_numpy())
        cand_values = np.sort(cand.loc[cand["answered"], column].dropna().to_numpy())
        if base_values.size == 0 or cand_values.size == 0:
            continue
        for quantile in (0.5, 0.95, 0.99):
            deltas.append(_percentile_delta(key, label, base_values, cand_values, quantile, threshold))
    # Failure rate: two-proportion z-test.
    nb, nc = len(base), len(cand)
    fb, fc = float(base["failed"].mean()), float(cand["failed"].mean())
    pooled = (fb * nb + fc * nc) / (nb + nc)
    se = math.sqrt(pooled * (1 - pooled) * (1 / nb + 1 / nc)) if 0 < pooled < 1 else 0.0
    z = (fc - fb) / se if se else (math.inf if fc > fb else 0.0)
    _flag(
        deltas, key, "failure_rate", fb, fc, fc - fb > MIN_FAILURE_RATE_DELTA and fc > fb * (1 + threshold), z
    )
    # Throughput and tokens/s: rates of (compound) Poisson counts over each run's span.
    tb, tc = _duration(base), _duration(cand)
    ones_b, ones_c = pd.Series(1.0, index=base.index), pd.Series(1.0, index=cand.index)
    rb, rc, z = _rate_drop(ones_b, tb, ones_c, tc)
    _flag(deltas, key, "rps", rb, rc, rc < rb * (1 - threshold), z)
    tokens_b, tokens_c = base["output_tokens"].fillna(0.0), cand["output_tokens"].fillna(0.0)
    if tokens_b.sum() > 0:
        rb, rc, z = _rate_drop(tokens_b, tb, tokens_c, tc)
        _flag(deltas, key, "tokens_per_s", rb, rc, rc < rb * (1 - threshold), z)
    # Cost per 1,000 requests: Welch's z on the mean cost per request.
    cost_b, cost_c = base["cost_usd"], cand["cost_usd"]
    if cost_b.sum() > 0:
        se = math.sqrt(cost_b.var(ddof=1) / nb + cost_c.var(ddof=1) / nc) if min(nb, nc) > 1 else 0.0
        mb, mc = float(cost_b.mean()), float(cost_c.mean())
        z = (mc - mb) / se if se else (math.inf if mc > mb else 0.0)
        _flag(deltas, key, "cost_per_1k", mb * 1000, mc * 1000, mc > mb * (1 + threshold), z)
    return deltas


def _compare_locust(base: pd.DataFrame, cand: pd.DataFrame, threshold: float) -> list[Delta]:
    """Without per-request logs: Locust's rounded percentiles and rates, threshold only."""
    deltas = []
    base_rows = {(str(r["Name"]), str(r["Type"])): r for r in base.to_dict("records")}
    for row in cand.to_dict("records"):
        key = (str(row["Name"]), str(row["Type"]))
        if key not in base_rows:
            continue
        old = base_rows[key]
        for column, metric in (("50%", "p50_ms"), ("95%", "p95_ms"), ("99%", "p99_ms")):
            b, c = float(old[column]), float(row[column])
            deltas.append(
                Delta(key[0], key[1], metric, b, c, c > b * (1 + threshold), "no samples: threshold only")
            )
        fb = float(old["Failure Count"]) / max(1.0, float(old["Request Count"]))
        fc = float(row["Failure Count"]) / max(1.0, float(row["Request Count"]))
        deltas.append(
            Delta(
                key[0],
                key[1],
                "failure_rate",
                fb,
                fc,
                fc - fb > MIN_FAILURE_RATE_DELTA and fc > fb * (1 + threshold),
            )
        )
        b, c = float(old["Requests/s"]), float(row["Requests/s"])
        deltas.append(Delta(key[0], key[1], "rps", b, c, c < b * (1 - threshold)))
    return deltas


def compare_runs(
    base_dir: str | Path, candidate_dir: str | Path, threshold: float = 0.10
) -> tuple[list[Delta], list[str]]:
    """Deltas per scenario and metric, and notes (scenarios in one run only, data sources used)."""
    base, cand = load_results(base_dir), load_results(candidate_dir)
    notes = [f"base: {w}" for w in base.warnings] + [f"candidate: {w}" for w in cand.warnings]
    if base.requests is not None and cand.requests is not None:
        base_groups, cand_groups = _samples(base), _samples(cand)
        deltas = []
        for key in sorted(base_groups.keys() & cand_groups.keys(), key=lambda k: (k[0] == la.ALL, k)):
            deltas += _compare_groups(key, base_groups[key], cand_groups[key], threshold)
        deltas += _attribution_deltas(base, cand, threshold)
        for key in sorted(base_groups.keys() ^ cand_groups.keys()):
            notes.append(
                f"scenario {key[0]} ({key[1]}) is only in the {'base' if key in base_groups else 'candidate'} run"
            )
        notes.append("source: per-request logs (exact samples)")
        return deltas, notes
    if base.stats is not None and cand.stats is not None:
        notes.append("source: Locust's locust_stats.csv (rounded percentiles; no noise estimate)")
        return _compare_locust(base.stats, cand.stats, threshold), notes
    raise ReportInputError(
        "the two runs have no common data to compare: need request logs or locust_stats.csv in both"
    )


def _format(value: float, metric: str) -> str:
    if metric == "failure_rate":
        return f"{value * 100:.2f}%"
    return fmt_number(value, 4 if metric == "cost_per_1k" else 1)


def text_table(deltas: list[Delta]) -> str:
    lines = [
        f"{'scenario':<24} {'model':<22} {'metric':<16} {'base':>12} {'candidate':>12} {'change':>9}  flag"
    ]
    for d in deltas:
        pct = "–" if math.isnan(d.change_pct) else f"{d.change_pct:+.1f}%"
        flag = "REGRESSION" if d.regression else d.note
        lines.append(
            f"{d.scenario[:24]:<24} {d.model[:22]:<22} {d.metric:<16} {_format(d.base, d.metric):>12} "
            f"{_format(d.candidate, d.metric):>12} {pct:>9}  {flag}"
        )
    return "\n".join(lines)


def write_html(path: Path, base: str, candidate: str, deltas: list[Delta], notes: list[str]) -> None:
    table = Table(
        columns=("Scenario", "Model", "Metric", "Base", "Candidate", "Change", "Flag"),
        numeric=(False, False, False, True, True, True, False),
        rows=[
            [
                d.scenario,
                d.model,
                d.metric,
                _format(d.base, d.metric),
                _format(d.candidate, d.metric),
                "–" if math.isnan(d.change_pct) else f"{d.change_pct:+.1f}%",
                "REGRESSION" if d.regression else d.note,
            ]
            for d in deltas
        ],
        row_classes=["regression" if d.regression else "" for d in deltas],
    )
    section = Section("deltas", "Deltas per scenario and metric", notes=notes, tables=[table])
    html = render(
        "report.html.j2",
        title="Run comparison",
        subtitle=f"Base {base} against candidate {candidate}",
        warnings=[],
        sections=[section],
        metadata=[],
        results_dir=f"{base} and {candidate}",
    )
    path.write_text(html, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports compare",
        description="Compare a candidate run against a baseline: deltas per scenario and metric.",
        epilog=f"Exit codes: {EXIT_OK} no regression (or not asked to fail), {EXIT_BAD_INPUT} bad input, "
        f"{EXIT_REGRESSION} regression found with --fail-on-regression.",
    )
    parser.add_argument("base", metavar="BASE", help="baseline results folder")
    parser.add_argument("candidate", metavar="CANDIDATE", help="candidate results folder")
    parser.add_argument(
        "--threshold", type=float, default=10.0, help="percent worse before a change counts (default 10)"
    )
    parser.add_argument(
        "--fail-on-regression", action="store_true", help=f"exit {EXIT_REGRESSION} when a regression is found"
    )
    parser.add_argument(
        "--html", metavar="FILE", help="also write the comparison as a self-contained HTML file"
    )
    args = parser.parse_args(argv)
    if args.threshold < 0:
        parser.error("--threshold must be >= 0 (percent)")
    deltas, notes = compare_runs(args.base, args.candidate, args.threshold / 100.0)
    print(text_table(deltas))
    for note in notes:
        print(f"note: {note}")
    regressions = [d for d in deltas if d.regression]
    print(f"{len(regressions)} regression(s) beyond noise and the {args.threshold:g}% threshold")
    if args.html:
        write_html(Path(args.html), args.base, args.candidate, deltas, notes)
    if regressions and args.fail_on_regression:
        return EXIT_REGRESSION
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - use `python -m reports compare`
    sys.exit(main(sys.argv[1:]))
