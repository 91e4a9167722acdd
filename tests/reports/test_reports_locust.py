"""Reports from plain Locust CSVs (no per-request logs): summary table, time charts, escaping, CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reports import ReportInputError, build_report
from reports.analysis import aggregated_history, locust_summary
from reports.loading import load_results


def test_summary_rows_come_from_stats_csv_with_aggregated_last(results_copy):
    data = load_results(results_copy("locust_only"))
    rows = locust_summary(data.stats)
    assert [row["name"] for row in rows] == ["fail", "flash <chat>", "Aggregated"]
    fail = rows[0]
    assert (fail["requests"], fail["failures"], fail["rps"], fail["p50"], fail["p99"]) == (
        40,
        10,
        4.0,
        30,
        51,
    )
    assert rows[-1]["aggregated"] and rows[-1]["requests"] == 200


def test_history_keeps_only_aggregated_rows_and_counts_from_run_start(results_copy):
    data = load_results(results_copy("locust_only"))
    history = aggregated_history(data.history, data.origin)
    assert history["elapsed_s"].tolist() == [0, 1, 2, 3, 4]
    assert history["Requests/s"].tolist() == [0, 10, 20, 30, 30]
    assert history["50%"].isna().tolist() == [True, False, False, False, False]


def test_report_has_summary_charts_toc_and_escapes_hostile_text(results_copy):
    folder = results_copy("locust_only")
    path = build_report(folder)
    assert path == folder / "report.html"
    html = path.read_text(encoding="utf-8")
    assert "flash &lt;chat&gt;" in html and "<chat>" not in html
    assert "&lt;b&gt;boom&lt;/b&gt;" in html and "<b>boom" not in html
    # Throughput, percentiles, and p95 per request name (the fixture has a --csv-full-history row).
    assert html.count('src="data:image/png;base64,') == 3 and 'id="chart-latency-endpoints"' in html
    for anchor in ("metadata", "locust-summary", "locust-timeline", "locust-failures"):
        assert f'href="#{anchor}"' in html and f'id="{anchor}"' in html
    assert "AIza" not in html, "an API-key-shaped value leaked into the report"
    assert "StepShape" in html and "warm-up" in html
    assert not re.search(r"""(src|href)=["']https?:""", html), "the report must not load anything remote"


def test_missing_folder_raises_one_line_error(tmp_path):
    with pytest.raises(ReportInputError, match="does not exist") as caught:
        build_report(tmp_path / "nope")
    assert "\n" not in str(caught.value)


def test_empty_stats_file_gives_partial_report_with_visible_warning(results_copy):
    folder = results_copy("locust_only")
    (folder / "locust_stats.csv").write_text("")
    html = build_report(folder).read_text(encoding="utf-8")
    assert "locust_stats.csv is empty" in html
    assert 'class="warning"' in html
    assert 'id="locust-timeline"' in html, "history still gives its charts"


def test_wrong_columns_are_named(results_copy):
    folder = results_copy("locust_only")
    (folder / "locust_stats.csv").write_text("a,b\n1,2\n")
    data = load_results(folder)
    assert data.stats is None
    assert any("locust_stats.csv: missing column(s) Type, Name" in w for w in data.warnings)


def test_partial_last_line_from_killed_run_is_dropped_with_warning(results_copy):
    folder = results_copy("locust_only")
    history = folder / "locust_stats_history.csv"
    history.write_text(history.read_text() + '1700000005,6,,Aggregated,30.0,1.0,"3')
    data = load_results(folder)
    assert data.history["Timestamp"].max() == 1700000004
    assert any("partial line" in w for w in data.warnings)


def test_nothing_usable_raises(tmp_path):
    (tmp_path / "locust_stats.csv").write_text("")
    with pytest.raises(ReportInputError, match="locust_stats.csv is empty"):
        build_report(tmp_path)


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "reports", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )


def test_cli_prints_report_path(results_copy):
    folder = results_copy("locust_only")
    done = run_cli(folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder / "report.html")


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    done = run_cli(tmp_path / "missing")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_names_that_look_like_numbers_stay_text(results_copy):
    folder = results_copy("locust_only")
    stats = folder / "locust_stats.csv"
    stats.write_text(stats.read_text().replace("GET,fail,", "GET,007,"))
    rows = locust_summary(load_results(folder).stats)
    assert "007" in [row["name"] for row in rows]
