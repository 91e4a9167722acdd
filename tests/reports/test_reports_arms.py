"""The comparison of arms (`python -m reports arms`): rows from hand-made results folders, figures
computed by hand, the title by the option compared, links to each arm's report, and bad folders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from report_html import cells, section

from core.results import RunInfo, RunSpan, policy_log_name
from reports.__main__ import main as reports_main
from reports.arms import ARMS_CSV, write_comparison

START = 1_700_000_000.0  # the conftest's request_log starts call i at START + i


def with_run(folder: Path, options: dict, span: tuple[float, float] = (START, START + 10.0)) -> Path:
    RunInfo(run_id=folder.name, options=options, runs=[RunSpan(start=span[0], end=span[1])]).write(folder)
    return folder


def csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["value"]: row for row in csv.DictReader(handle)}


# An aimd+breaker arm: 3 answers (one via the fallback model), a call that got three 429s, a final
# 503, a 500, a shed call and a held call. Latencies 100..400 ms on the answers; cost on the answers only.
POLICY_CALLS = [
    dict(e2e_ms=100.0, cost_usd=0.01, throttle_ms=0.0),
    dict(e2e_ms=200.0, cost_usd=0.01, throttle_ms=50.0),
    dict(e2e_ms=400.0, cost_usd=0.02, policy_action="fallback"),
    dict(error_kind="rate_limited", http_status=429, attempts=3, attempt_kinds="rate_limited;rate_limited;rate_limited"),
    dict(error_kind="server_error", http_status=503, attempt_kinds="server_error"),
    dict(error_kind="server_error", http_status=500, attempt_kinds="server_error"),
    dict(error_kind="shed", policy_action="shed", attempts=0),
    dict(error_kind="blocked", block_reason="SAFETY", e2e_ms=300.0, throttle_ms=150.0),
]  # fmt: skip
RETRY_CALLS = [
    dict(e2e_ms=100.0, cost_usd=0.01),
    dict(error_kind="rate_limited", http_status=429, attempt_kinds="rate_limited"),
]


@pytest.fixture
def two_arms(request_log) -> list[Path]:
    first = request_log([{**c, "policy": "aimd+breaker"} for c in POLICY_CALLS], name="01-client-policy-aimd")
    second = request_log([{**c, "policy": "retry"} for c in RETRY_CALLS], name="02-client-policy-retry")
    with_run(first, {"client_policy": "aimd+breaker", "results_dir": "x", "retries": 2})
    with_run(second, {"client_policy": "retry", "results_dir": "y", "retries": 2}, (START, START + 4.0))
    return [first, second]


def test_one_row_per_arm_with_figures_from_its_files(two_arms, tmp_path) -> None:
    output = write_comparison(two_arms, tmp_path / "report.html")
    rows = csv_rows(tmp_path / ARMS_CSV)
    assert list(rows) == ["aimd+breaker", "retry"]  # the values, from each arm's run.json, in order
    policy = rows["aimd+breaker"]
    assert int(policy["calls"]) == 8
    assert int(policy["answered"]) == 4  # three answers and a blocked one
    assert float(policy["duration_s"]) == pytest.approx(10.0)  # run.json's measured span
    assert float(policy["goodput_per_s"]) == pytest.approx(0.4)
    # The server's refusals are counted per answer it sent (a retried call's three 429s are three),
    # the client's own (shed, fallback) per call.
    assert (policy["rate_limited_429"], policy["server_errors_5xx"], policy["shed"], policy["fallback"]) == (
        "3", "2", "1", "1",
    )  # fmt: skip
    assert int(policy["held_calls"]) == 2 and float(policy["held_s"]) == pytest.approx(0.2)
    # Nearest rank over the answers 100, 200, 300 (blocked), 400: p50 is the 2nd, p95 the 4th.
    assert float(policy["e2e_p50_ms"]) == 200.0 and float(policy["e2e_p95_ms"]) == 400.0
    assert int(policy["attempts"]) == 9  # 8 calls, the 429 sent 3 times, the shed one never
    assert float(policy["cost_per_1k_answers_usd"]) == pytest.approx(0.04 / 4 * 1000)
    assert float(rows["retry"]["goodput_per_s"]) == pytest.approx(1 / 4.0)
    html = output.read_text(encoding="utf-8")
    assert "<h2>Policies compared</h2>" in html  # FLAG was inferred: client-policy
    assert '<a href="01-client-policy-aimd/report.html">01-client-policy-aimd</a>' in html
    assert cells(section(html, "arms"), "retry")[3] == "1"  # the 429 column


def test_the_title_names_any_other_option_and_the_flag_given_wins(two_arms, tmp_path) -> None:
    html = write_comparison(two_arms, tmp_path / "out" / "report.html", flag="retries").read_text()
    assert "<h2>retries compared</h2>" in html
    with (tmp_path / "out" / ARMS_CSV).open(newline="") as handle:
        assert [row["value"] for row in csv.DictReader(handle)] == ["2", "2"]  # each arm's --retries


def test_moderation_items_accuracy_rate_and_cost_per_item(request_log, tmp_path) -> None:
    batched = request_log(
        [
            dict(scenario="moderation", batch_size=2, item_id="a;b", verdict="allow;block",
                 expected="allow;allow", cost_usd=0.02),
            dict(scenario="moderation", batch_size=2, item_id="c;d", expected="block;block",
                 error_kind="timeout"),
        ],
        name="01-batch-size-2",
    )  # fmt: skip
    single = request_log(
        [dict(scenario="moderation", item_id="a", verdict="allow", expected="allow", cost_usd=0.01)],
        name="02-batch-size-1",
    )
    with_run(batched, {"batch_size": "2"})
    with_run(single, {"batch_size": "1"})
    write_comparison([batched, single], tmp_path / "report.html")
    rows = csv_rows(tmp_path / ARMS_CSV)
    assert (rows["2"]["items"], rows["2"]["items_answered"]) == ("4", "2")
    assert float(rows["2"]["accuracy"]) == pytest.approx(0.5)  # a right, b wrong; c, d unanswered
    assert float(rows["2"]["items_per_s"]) == pytest.approx(2 / 10.0)
    assert float(rows["2"]["cost_per_1k_items_usd"]) == pytest.approx(0.02 / 2 * 1000)
    assert float(rows["1"]["accuracy"]) == 1.0


def test_aimd_limit_chart_when_arms_logged_one(two_arms, tmp_path) -> None:
    log = two_arms[0] / policy_log_name("local", "gen", 1)
    log.write_text(
        "timestamp,node,component,event,value,detail\n"
        f"{START + 1},local-gen-1,aimd,limit,4,\n{START + 3},local-gen-1,aimd,limit,2,\n"
    )
    html = write_comparison(two_arms, tmp_path / "report.html").read_text()
    assert 'id="chart-arms-aimd"' in html and 'id="chart-arms-goodput"' in html


def test_an_arm_with_nothing_to_read_is_a_row_and_a_warning(two_arms, tmp_path) -> None:
    refused = tmp_path / "03-client-policy-nope"
    refused.mkdir()
    with_run(refused, {"client_policy": "nope"})
    html = write_comparison([*two_arms, refused], tmp_path / "report.html").read_text()
    row = cells(section(html, "arms"), "03-client-policy-nope")  # no data: named by its folder
    assert "nothing to report" in row[-1]
    assert "Warning: 03-client-policy-nope: nothing to report" in html


def test_bad_folders_are_one_line_and_exit_2(two_arms, tmp_path, capsys) -> None:
    missing = tmp_path / "not-there"
    assert reports_main(["arms", str(two_arms[0]), str(missing), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err
    empty = [tmp_path / "e1", tmp_path / "e2"]
    for folder in empty:
        folder.mkdir()
    assert reports_main(["arms", *map(str, empty), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "e1" in err and "e2" in err


def test_cli_writes_report_and_csv(two_arms, tmp_path, capsys) -> None:
    output = tmp_path / "cmp" / "report.html"
    assert reports_main(["arms", *map(str, two_arms), "--flag", "client-policy", "-o", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert output.exists() and (output.parent / ARMS_CSV).exists()
