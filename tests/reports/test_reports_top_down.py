"""The report reads top-down: a verdict that claims only what the user's gates judged, blocked answers
apart from failures, sparse series as points, idle time left out, and the options the user set
apart from the defaults (which are checked against Locust's real parser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_reports_analysis import requests_frame

from core.results import RunInfo
from reports import analysis, charts, llm_sections
from reports import llm_analysis as la
from reports.loading import RunData
from reports.metadata import metadata_groups
from reports.verdict import BROKEN, FAIL, NONE, PASS, judge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[list[dict]]:
    """The lines of every chart drawn (label, marker, linestyle, points), instead of its PNG."""
    figures: list[list[dict]] = []

    def capture(fig) -> str:
        figures.append(
            [
                {
                    "label": line.get_label(),
                    "marker": line.get_marker(),
                    "linestyle": line.get_linestyle(),
                    "points": len(line.get_xdata()),
                }
                for ax in fig.axes
                for line in ax.get_lines()
            ]
        )
        return "data:image/png;base64,"

    monkeypatch.setattr(charts, "to_uri", capture)
    return figures


def test_a_series_with_gaps_is_drawn_as_points_and_a_dense_one_as_a_line(drawn):
    xs = np.arange(6.0)
    gapped = [100.0, np.nan, np.nan, 120.0, np.nan, 130.0]
    dense = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    charts.time_chart("k", "TTFT", "ms", [("p95", xs, gapped), ("rps", xs, dense)])
    (lines,) = drawn
    by_label = {line["label"]: line for line in lines}
    assert by_label["p95"]["marker"] == "o" and by_label["p95"]["linestyle"] == "None"
    assert by_label["rps"]["marker"] == "None" and by_label["rps"]["linestyle"] == "-"
    # Two values are no line either; leading and trailing NaN alone are not gaps.
    assert charts.line_style([np.nan, 1.0, 2.0])["marker"] == "o"
    assert charts.line_style([np.nan, 1.0, 2.0, 3.0, np.nan]) == {}


def test_the_ttft_chart_of_sparse_bins_draws_points(drawn):
    # Answers with a TTFT in bins 0, 3 and 6 only; the bins between hold only failures.
    rows = []
    for second in range(7):
        answered = second % 3 == 0
        rows.append({"start_time": second, "e2e_ms": 200.0, "ttft_ms": 50.0 if answered else np.nan,
                     "error_kind": "" if answered else "timeout"})  # fmt: skip
    requests = requests_frame(rows)
    series = la.time_series(requests, origin=0.0, width_s=1.0)
    llm_sections.timeline_section(series, [], None)
    ttft = drawn[-1]  # the last chart of the section
    assert [line["label"] for line in ttft] == ["p50", "p95", "p99"]
    assert all(line["marker"] == "o" and line["linestyle"] == "None" for line in ttft)


def test_blocked_answers_have_their_own_series_not_under_failures(monkeypatch, drawn):
    layers: dict[str, list[str]] = {}
    real = charts.stacked_time_chart

    def spy(key, title, ylabel, xs, stacked, stages=()):
        layers[title] = list(stacked)
        return real(key, title, ylabel, xs, stacked, stages)

    monkeypatch.setattr(charts, "stacked_time_chart", spy)
    kinds = ["", "blocked", "timeout", "", "blocked", "cancelled", "", "rate_limited"]
    requests = requests_frame([{"start_time": i / 2, "error_kind": kind} for i, kind in enumerate(kinds)])
    series = la.time_series(requests, origin=0.0, width_s=1.0)
    section = llm_sections.timeline_section(series, [], None)
    keys = [chart.key for chart in section.charts]
    assert "chart-llm-blocked" in keys and "chart-llm-errors" in keys
    assert layers == {"Failure rate by kind": ["rate_limited", "timeout"]}, "no blocked, no cancelled"
    blocked = section.charts[keys.index("chart-llm-blocked")]
    assert "answers, not failures" in blocked.title
    assert llm_sections.blocked_share(series).tolist() == [50.0, 0.0, 50.0, 0.0]
    no_blocks = la.time_series(requests_frame([{"start_time": 0.0}]), origin=0.0, width_s=1.0)
    assert llm_sections.blocked_share(no_blocks) is None


def test_empty_bins_between_requests_are_zero_rate_and_no_percentile():
    requests = requests_frame([{"start_time": 0.0}, {"start_time": 3.0}])
    series = la.time_series(requests, origin=0.0, width_s=1.0)
    assert series["elapsed_s"].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert series["rps"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert series["e2e_ms_p50"].isna().tolist() == [False, True, True, False]


def history(totals: list[float], rps: list[float] | None = None) -> pd.DataFrame:
    count = len(totals)
    return pd.DataFrame(
        {
            "Timestamp": np.arange(count, dtype=float) + 100,
            "Name": ["Aggregated"] * count,
            "User Count": [2.0] * count,
            "Requests/s": rps if rps is not None else [1.0] * count,
            "Total Request Count": [str(int(total)) for total in totals],  # text, as loading reads it
            "elapsed_s": np.arange(count, dtype=float),
        }
    )


def test_idle_seconds_before_the_first_and_after_the_last_request_are_trimmed():
    # A web UI open 3 s before the start, a 4-s test, then left open 5 s.
    trimmed = analysis.trim_idle(history([0, 0, 0, 0, 5, 12, 20, 26, 26, 26, 26, 26, 26]))
    assert trimmed["elapsed_s"].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0], (
        "from the second before to the last growth"
    )
    # A reset (a new web-UI test) counts as activity; without the column, the request rate decides.
    assert len(analysis.trim_idle(history([0, 4, 8, 0, 3, 3]))) == 5
    frame = history([0] * 5, rps=[0.0, 0.0, 2.0, 3.0, 0.0]).drop(columns="Total Request Count")
    assert analysis.trim_idle(frame)["elapsed_s"].tolist() == [1.0, 2.0, 3.0]
    assert len(analysis.trim_idle(history([0, 0, 0]))) == 3, "nothing ran: nothing to trim"


def test_without_gates_the_verdict_claims_nothing_and_names_locusts_rule():
    verdict = judge(RunInfo(), calls=120, failures=3)
    assert verdict.status == NONE and verdict.title == "No SLO gates set: nothing judged"
    assert "3 of 120 calls failed" in verdict.detail and "Locust's own rule" in verdict.detail
    text = (verdict.title + verdict.detail).lower()
    assert "met" not in text and "passed" not in text and verdict.gates == []


def test_the_verdict_follows_the_runs_own_judgement():
    gate = {"expr": "ttft_p95<=800ms", "metric": "ttft_p95", "threshold": 800.0, "unit": "ms"}
    passed = RunInfo.from_document({"slo": [{**gate, "value": 430.0, "passed": True}]})
    assert (judge(passed, 10, 0).status, judge(passed, 10, 0).title) == (PASS, "The SLO gate passed")
    missed = RunInfo.from_document(
        {
            "slo": [{**gate, "value": 2161.0, "passed": False}],
            "budget": {"max_cost_usd": 1.0, "spent_usd": 1.02, "reached": True, "reached_at": 5.0,
                       "spent_at_stop_usd": 1.02},
        }
    )  # fmt: skip
    verdict = judge(missed, 10, 0)
    assert (
        verdict.status == FAIL and verdict.title == "1 of 1 SLO gates missed" and "exits 3" in verdict.detail
    )
    assert [(g.expr, g.measured, g.result) for g in verdict.gates] == [
        ("ttft_p95<=800ms", "2,161 ms", "MISSED")
    ]
    assert "The cost budget (1.00 USD) stopped the run; 1.0200 USD spent." in verdict.detail
    died = RunInfo.from_document(
        {"emulator_died": {"at": "2024-01-01T00:00:00Z", "how": "killed by SIGKILL"}}
    )
    assert judge(died, 10, 0).status == BROKEN
    assert judge(RunInfo(), 0, 0).title == "Nothing measured"


def test_options_the_user_set_are_open_and_the_defaults_folded(tmp_path):
    defaults = {"num_users": None, "spawn_rate": 1, "slo": "", "stop_timeout": 0, "user_classes": "[]"}
    defaults.update(class_picker=False, emulator_url="")
    options = {**defaults, "num_users": 5, "spawn_rate": 2.0, "slo": "e2e_p95<=5s"}
    options.update(emulator_url="http://127.0.0.1:1", my_plugin_flag=1)
    run = RunInfo.from_document({"run_id": "r", "options": options, "option_defaults": defaults})
    data = RunData(results_dir=tmp_path, run=run)
    data.emulator_stats = {"requests": 3}
    groups = {group.title.split(" (")[0]: group for group in metadata_groups(data)}
    chosen = groups["Options you set"]
    assert not chosen.folded
    # A plugin's option with no recorded default counts as set: nothing is hidden as a default.
    assert [name for name, _ in chosen.rows] == ["my_plugin_flag", "num_users", "slo", "spawn_rate"]
    left = groups["Options left at Locust's and the suite's defaults"]
    assert left.folded and ("class_picker", "False") in left.rows and ("stop_timeout", "0") in left.rows
    assert ("emulator_url", "http://127.0.0.1:1") in left.rows, "filled in by the suite, not the user"
    emulator = groups["Emulator stats"]
    assert emulator.folded and emulator.preformatted and '"requests": 3' in emulator.rows[0][1]
    assert not groups["Run"].folded


def test_an_older_run_json_without_defaults_claims_no_option_as_set(tmp_path):
    run = RunInfo.from_document({"run_id": "r", "options": {"num_users": 5, "class_picker": False}})
    groups = {
        group.title.split(" (")[0]: group for group in metadata_groups(RunData(results_dir=tmp_path, run=run))
    }
    assert "Options you set" not in groups
    assert groups["Options"].folded and ("num_users", "5") in groups["Options"].rows
