"""`python -m benchmarks report` machinery, on a small synthetic run (the 1M run is a benchmark)."""

from __future__ import annotations

import json

from benchmarks import report as bench


def test_benchmark_ends_with_one_json_line_of_figures(capsys):
    assert bench.main(["--requests", "3000", "--files", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["requests"] == 3000
    assert 0 < figures["report_seconds_1m"] < 60
    assert 50 < figures["report_peak_mb_1m"] < 2048


def test_synthetic_folder_has_every_input_the_report_reads(tmp_path):
    folder = bench.synthesize_results(tmp_path / "run", total=2000, files=3)
    names = {path.name for path in folder.iterdir()}
    assert {"locust_stats.csv", "locust_stats_history.csv", "run.json", "health.csv"} <= names
    assert len([n for n in names if n.startswith("requests-")]) == 3
    lines = sum(len(path.read_text().splitlines()) - 1 for path in folder.glob("requests-*.csv"))
    assert lines == 2000
