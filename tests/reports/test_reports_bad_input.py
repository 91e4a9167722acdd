"""Bad input: one line saying what is wrong; a partial report where the data allows; no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reports import ReportInputError, build_report
from reports.loading import load_results

ROOT = Path(__file__).resolve().parents[2]
LOG = "requests-gen-1.csv"


def only_log(results_copy, text: str | None = None) -> Path:
    """The llm_small folder with one request log (optionally rewritten) and nothing else usable."""
    folder = results_copy("llm_small")
    (folder / "requests-gen-2.csv").unlink()
    if text is not None:
        (folder / LOG).write_text(text)
    return folder


def test_a_non_number_names_file_column_and_line(results_copy):
    folder = results_copy("llm_small")
    log = folder / LOG
    lines = log.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",300,", ",3oo,", 1)
    log.write_text("".join(lines))
    data = load_results(folder)
    assert f"{LOG}: column e2e_ms, line 4: '3oo' is not a number" in data.warnings
    assert len(data.requests) == 5, "the other log still reports"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"{LOG} is empty (0 bytes)"),
        ("scenario,model,start_time,e2e_ms,error_kind\n", f"{LOG} has a header but no rows"),
        ("scenario,when,took\nx,1,2\n", f"{LOG}: missing column(s) model, start_time, e2e_ms, error_kind"),
    ],
)
def test_unusable_request_log_alone_raises_with_the_reason(results_copy, text, message):
    folder = only_log(results_copy, text)
    with pytest.raises(ReportInputError) as caught:
        build_report(folder)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_run_json_that_is_not_json_is_a_warning_not_a_failure(results_copy):
    folder = results_copy("llm_small")
    (folder / "run.json").write_text("{not json")
    html = build_report(folder).read_text(encoding="utf-8")
    assert "run.json is not valid JSON" in html


def test_header_only_history_from_a_run_killed_at_once(results_copy):
    folder = results_copy("locust_only")
    history = folder / "locust_stats_history.csv"
    history.write_text(history.read_text().splitlines()[0] + "\n")
    html = build_report(folder).read_text(encoding="utf-8")
    assert "locust_stats_history.csv has a header but no rows" in html
    assert 'id="locust-summary"' in html


def test_cli_prints_warnings_and_still_builds_a_partial_report(results_copy):
    folder = results_copy("llm_small")
    done = subprocess.run(
        [sys.executable, "-m", "reports", str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0
    assert "warning: requests-gen-2.csv ends with a partial line" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.strip().endswith("report.html")


def test_cli_one_line_error_for_a_file_instead_of_a_folder(tmp_path):
    path = tmp_path / "locust_stats.csv"
    path.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "reports", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {path} is not a folder; pass the results/<run-id>/ directory\n"


def test_a_folder_with_several_web_ui_tests_reports_the_last_one(tmp_path) -> None:
    import json

    from core.outcome import OUTCOME_COLUMNS
    from reports.loading import load_results

    folder = tmp_path / "run"
    folder.mkdir()
    rows = []
    for start in (1000.0, 1001.0, 2000.0, 2001.0, 2002.0):  # two calls in test 1, three in test 2
        row = dict.fromkeys(OUTCOME_COLUMNS, "")
        row.update(scenario="s", model="m", transport="http", start_time=start, e2e_ms=10, attempts=1)
        rows.append(",".join(str(row[c]) for c in OUTCOME_COLUMNS))
    (folder / "requests-h-1.csv").write_text(",".join(OUTCOME_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    runs = [{"start": 999.0, "end": 1002.0}, {"start": 1999.5, "end": 2003.0}]
    (folder / "run.json").write_text(json.dumps({"run_id": "run", "runs": runs}))
    data = load_results(folder)
    assert list(data.requests["start_time"]) == [2000.0, 2001.0, 2002.0]
    assert data.origin == 1999.5
    assert any("2 tests started from the web UI" in w for w in data.warnings)
