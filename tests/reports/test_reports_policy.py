"""The single-run "Client policy" section: settings, the server's 429s and 503s beside the client's
sheds, fallbacks and held calls, the breaker's state changes and aimd's limit, from hand-made files."""

from __future__ import annotations

import pandas as pd
import pytest
from report_html import cells, section

from core.results import RunInfo, RunSpan, policy_log_name
from reports import build_report
from reports.policy import held_figures, run_wide_limit

START = 1_700_000_000.0
CALLS = [
    dict(policy="aimd+breaker", throttle_ms=0.0),
    dict(policy="aimd+breaker", throttle_ms=40.0),
    dict(policy="aimd+breaker", throttle_ms=100.0),
    dict(policy="aimd+breaker", throttle_ms=300.0, policy_action="fallback", model="gemini-fallback"),
    dict(
        policy="aimd+breaker",
        error_kind="rate_limited",
        http_status=429,
        attempts=2,
        attempt_kinds="rate_limited;rate_limited",
    ),  # fmt: skip
    dict(policy="aimd+breaker", error_kind="server_error", http_status=503, attempt_kinds="server_error"),
    dict(policy="aimd+breaker", error_kind="server_error", http_status=503, attempt_kinds="server_error"),
    dict(policy="aimd+breaker", error_kind="shed", policy_action="shed", attempts=0),
]
POLICY_LOG = (
    "timestamp,node,component,event,value,detail\n"
    f"{START + 1},local-gen-1,aimd,limit,4,\n"
    f"{START + 2},local-gen-1,breaker,state,0.6,open\n"
    f"{START + 3},local-gen-1,aimd,limit,2,\n"
    f"{START + 7},local-gen-1,breaker,state,0.0,half_open\n"
    f"{START + 7.5},local-gen-1,breaker,state,0.0,closed\n"
)


@pytest.fixture
def policy_run(request_log):
    folder = request_log(CALLS)
    options = {"client_policy": "aimd+breaker", "aimd_start": "4", "breaker_window": "10", "limit_rpm": "0"}
    RunInfo(run_id="p", started_at="2023-11-14T22:13:20+00:00", options=options,
            runs=[RunSpan(start=START, end=START + 10)]).write(folder)  # fmt: skip
    (folder / policy_log_name("local", "gen", 1)).write_text(POLICY_LOG)
    return folder


def test_client_policy_section_counts_who_said_no(policy_run) -> None:
    html = section(build_report(policy_run).read_text(encoding="utf-8"), "client-policy")
    assert "Policy aimd+breaker." in html
    assert cells(html, "client_policy")[1] == "aimd+breaker"
    assert cells(html, "aimd_start")[1] == "4" and cells(html, "breaker_window")[1] == "10"
    assert "limit_rpm" not in html  # the limiter is not part of this policy
    rows = {cell[1]: cell for cell in _rows(html) if len(cell) == 5}
    # The server's refusals per answer it sent: the retried call's two 429s are two.
    assert rows["429 rate limited (answers, retries included)"][2] == "2"
    assert rows["5xx server error (answers, retries included)"][2] == "2"
    assert rows["shed (never sent)"][2] == "1"
    assert rows["sent to the fallback model"][2] == "1"
    held = next(cell for name, cell in rows.items() if name.startswith("held before sending"))
    assert held[2] == "3" and held[3] == "100" and held[4] == "300"  # nearest rank of 40, 100, 300
    assert "held before sending (0.4 s in all)" in html


def test_breaker_timeline_and_aimd_chart(policy_run) -> None:
    html = section(build_report(policy_run).read_text(encoding="utf-8"), "client-policy")
    assert [cells(html, elapsed)[2] for elapsed in ("2.0", "7.0", "7.5")] == ["open", "half_open", "closed"]
    assert cells(html, "2.0")[3] == "60.0%"
    assert 'id="chart-aimd-limit"' in html


def test_no_section_without_a_policy(request_log) -> None:
    folder = request_log([dict(), dict(error_kind="rate_limited", http_status=429)])
    assert 'id="client-policy"' not in build_report(folder).read_text(encoding="utf-8")
    # Retries only (every run's default): the baseline, with nothing the client decided to show.
    baseline = request_log([dict(policy="retry"), dict(policy="retry")], name="baseline")
    assert 'id="client-policy"' not in build_report(baseline).read_text(encoding="utf-8")


def test_held_figures_over_held_calls_and_over_all() -> None:
    figures = held_figures(pd.DataFrame({"throttle_ms": [0.0, 0.0, 0.0, 10.0, 20.0]}))
    assert figures["held"] == 2 and figures["held_s"] == pytest.approx(0.03)
    assert (figures["held_p50_ms"], figures["held_p95_ms"], figures["p95_all_ms"]) == (10.0, 20.0, 20.0)


def test_run_wide_limit_is_the_signal_else_the_sum_of_processes() -> None:
    logs = pd.DataFrame(
        {
            "timestamp": [1.0, 2.0, 3.0],
            "node": ["worker-a-1", "worker-b-2", "worker-a-1"],
            "component": ["aimd"] * 3,
            "event": ["limit"] * 3,
            "value": [4.0, 6.0, 2.0],
            "detail": [""] * 3,
        }
    )
    assert run_wide_limit(logs)["value"].tolist() == [4.0, 10.0, 8.0]  # each held until it changes
    signal = pd.DataFrame(
        {"timestamp": [1.5], "node": ["master-m-0"], "component": ["aimd"], "event": ["signal"],
         "value": [12.0], "detail": ["2"]}
    )  # fmt: skip
    assert run_wide_limit(pd.concat([logs, signal]))["value"].tolist() == [12.0]


def _rows(html: str) -> list[list[str]]:
    import re

    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    ]
