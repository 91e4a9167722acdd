"""`python -m reports compare`: deltas, regressions beyond noise, the CI exit code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.report import synthesize_results
from reports import ReportInputError
from reports.compare import compare_runs, percentile_interval

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    base = synthesize_results(root / "base", total=6000, files=2, seed=1)
    same = synthesize_results(root / "same", total=6000, files=2, seed=2)
    slower = root / "slower"
    shutil.copytree(base, slower)
    for log in slower.glob("requests-*.csv"):
        frame = pd.read_csv(log, keep_default_na=False)
        frame["e2e_ms"] = frame["e2e_ms"] * 1.5
        frame.to_csv(log, index=False)
    return {"base": base, "same": same, "slower": slower}


def test_percentile_interval_brackets_the_percentile():
    values = pd.Series(range(1000), dtype=float).to_numpy()
    low, high = percentile_interval(values, 0.5)
    assert low < 499.5 < high and high - low < 100


def test_a_slower_candidate_is_flagged_per_scenario_and_metric(runs):
    deltas, notes = compare_runs(runs["base"], runs["slower"])
    flagged = {(d.scenario, d.metric) for d in deltas if d.regression}
    assert ("chat", "e2e_p50_ms") in flagged and ("(all)", "e2e_p95_ms") in flagged
    assert not any(d.metric.startswith("ttft") for d in deltas if d.regression), "TTFT did not change"
    chat = next(d for d in deltas if (d.scenario, d.metric) == ("chat", "e2e_p50_ms"))
    assert chat.change_pct == pytest.approx(50.0, abs=0.1)
    assert "source: per-request logs (exact samples)" in notes


def test_a_rerun_with_other_random_samples_is_within_noise(runs):
    deltas, _ = compare_runs(runs["base"], runs["same"])
    assert [d for d in deltas if d.regression] == []


def test_locust_csvs_alone_use_the_threshold(runs, tmp_path):
    base, cand = tmp_path / "b", tmp_path / "c"
    for source, target in ((runs["base"], base), (runs["slower"], cand)):
        target.mkdir()
        shutil.copy(source / "locust_stats.csv", target)
    stats = pd.read_csv(cand / "locust_stats.csv", keep_default_na=False)
    stats["95%"] = stats["95%"] * 2
    stats.to_csv(cand / "locust_stats.csv", index=False)
    deltas, notes = compare_runs(base, cand)
    assert {d.metric for d in deltas if d.regression} == {"p95_ms"}
    assert any("rounded percentiles" in note for note in notes)


def test_nothing_in_common_is_bad_input(runs, tmp_path):
    (tmp_path / "locust_stats.csv").write_bytes((runs["base"] / "locust_stats.csv").read_bytes())
    only_logs = tmp_path / "logs"
    only_logs.mkdir()
    shutil.copy(next(runs["base"].glob("requests-*.csv")), only_logs)
    with pytest.raises(ReportInputError, match="no common data"):
        compare_runs(tmp_path, only_logs)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports", "compare", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_exit_code_4_only_with_fail_on_regression(runs, tmp_path):
    done = cli(runs["base"], runs["slower"])
    assert done.returncode == 0 and "REGRESSION" in done.stdout
    page = tmp_path / "compare.html"
    done = cli(runs["base"], runs["slower"], "--fail-on-regression", "--html", page)
    assert done.returncode == 4, done.stderr
    assert 'class="regression"' in page.read_text(encoding="utf-8")
    assert cli(runs["base"], runs["same"], "--fail-on-regression").returncode == 0


def test_cli_help_documents_exit_code_4_and_bad_input_exits_2(runs, tmp_path):
    assert "4 regression found with --fail-on-regression" in " ".join(cli("--help").stdout.split())
    done = cli(runs["base"], tmp_path / "missing")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
