"""The web-UI session's index page: one row per test folder, escaped, linking only reports that exist."""

from __future__ import annotations

import json
from pathlib import Path

from core.results import numbered_test_folder, session_test_folders
from metrics.session_index import write_session_index


def make_test(session: Path, number: int, document: dict, report: bool) -> Path:
    folder = session / numbered_test_folder(number, 1_800_000_000 + 60 * number)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(document))
    if report:
        (folder / "report.html").write_text("<html></html>")
    return folder


def test_the_index_lists_each_test_in_order_and_escapes_what_the_run_wrote(tmp_path: Path) -> None:
    spike = make_test(
        tmp_path, 1,
        {"run_id": "a", "started_at": "2027-01-15T08:01:00+00:00", "ended_at": "2027-01-15T08:01:15+00:00",
         "shape": {"name": "<b>spike</b>", "params": {}}, "llm": {"requests": 1200, "failures": 3,
         "blocked": 0, "output_tokens": 1, "cost_usd": 0.1},
         "slo": [{"expr": "ttft_p95<=800ms", "passed": False}]},
        report=True,
    )  # fmt: skip
    fixed = make_test(
        tmp_path, 2, {"run_id": "b", "started_at": "2027-01-15T08:02:00+00:00", "shape": None}, report=False
    )
    (tmp_path / "notes").mkdir()  # not a test folder
    assert session_test_folders(tmp_path) == [spike, fixed]

    text = write_session_index(tmp_path).read_text()
    assert text.index(spike.name) < text.index(fixed.name)
    assert "&lt;b&gt;spike&lt;/b&gt;" in text and "<b>spike" not in text
    assert f'href="{spike.name}/report.html"' in text and f"{fixed.name}/report.html" not in text
    assert "15 s" in text and "1,200" in text and "1 of 1 SLO gates failed" in text
    assert "running" in text  # the second test has no end yet
    assert "<script" not in text and "http" not in text  # self-contained


def test_an_unreadable_run_json_is_a_row_that_says_so(tmp_path: Path) -> None:
    folder = make_test(tmp_path, 1, {"run_id": "a", "bogus": 1}, report=False)
    text = write_session_index(tmp_path).read_text()
    assert folder.name in text and "run.json unreadable" in text and "not a field of run.json" in text
