"""Each analysis on constructed data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.results import RunInfo
from core.slo import metric_value, passes
from reports import analysis, capacity, slo
from reports import llm_analysis as la
from reports import scenario_analysis as sa
from reports.load_sections import capacity_section, capacity_statement
from reports.loading import REQUEST_TEXT_COLUMNS


def requests_frame(rows: list[dict]) -> pd.DataFrame:
    """A per-request frame as loading.read_request_log gives it (missing columns defaulted)."""
    defaults = {
        "scenario": "s",
        "model": "m",
        "start_time": 0.0,
        "e2e_ms": 100.0,
        "ttft_ms": np.nan,
        "last_chunk_ms": np.nan,
        "tpot_ms": np.nan,
        "prompt_tokens": np.nan,
        "output_tokens": np.nan,
        "thoughts_tokens": np.nan,
        "cost_usd": 0.0,
        "thoughts_cost_usd": 0.0,
        "prep_ms": 0.0,
        "request_bytes": 0.0,
        "attempts": 1.0,
        "error_kind": "",
        "finish_reason": "",
        "attempt_kinds": "",
        "error_message": "",
        "variant": "",
        "item_id": "",
        "verdict": "",
        "expected": "",
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    for column in REQUEST_TEXT_COLUMNS:  # strings are categories, as loading reads them ("" when absent)
        frame[column] = (frame[column] if column in frame else pd.Series("", index=frame.index)).astype(
            "category"
        )
    return la.add_derived(frame)


def test_percentiles_on_known_samples_use_nearest_rank():
    # Nearest rank, as the SLO gates: observed values, never interpolated (linear would give 50.5 ...).
    assert la.percentiles(np.arange(1, 101)) == [50.0, 90.0, 95.0, 99.0]
    assert la.percentiles(np.arange(1, 11)) == [5.0, 9.0, 10.0, 10.0]
    assert la.percentiles(pd.Series([7.0, np.nan])) == [7.0] * 4
    assert all(np.isnan(la.percentiles(np.array([]))))


def test_summary_counts_failures_by_kind_blocked_apart_rates_and_cost():
    rows = [
        {"start_time": float(i), "e2e_ms": 1000.0, "output_tokens": 10.0, "cost_usd": 0.002} for i in range(8)
    ]
    rows[1] |= {"error_kind": "rate_limited", "output_tokens": np.nan}
    rows[2] |= {"error_kind": "server_error", "output_tokens": np.nan, "e2e_ms": 50_000.0}
    rows[3] |= {"error_kind": "blocked", "output_tokens": np.nan}
    table = la.summary(requests_frame(rows))
    everything = table[table["scenario"] == la.ALL].iloc[0]
    assert everything["requests"] == 8
    assert everything["failures"] == 2 and everything["blocked"] == 1
    assert everything["kind_rate_limited"] == 1 and everything["kind_server_error"] == 1
    assert everything["kind_blocked"] == 1 and everything["kind_timeout"] == 0
    # Span: first start 0 s to last end 7 + 1 = 8 s (the failed 50 s call ends at 52 s).
    assert everything["rps"] == pytest.approx(8 / 52.0)
    assert everything["tokens_per_s"] == pytest.approx(50 / 52.0)
    assert everything["cost_per_1k"] == pytest.approx(2.0)
    assert everything["e2e_ms_p99"] == pytest.approx(1000.0), "failed calls are left out of latency"


def test_cancelled_calls_are_counted_apart_and_their_attempts_by_kind():
    rows = [{"start_time": float(i), "e2e_ms": 100.0} for i in range(4)]
    rows[1] |= {"attempts": 3.0, "attempt_kinds": "rate_limited;rate_limited"}  # answered on the 3rd
    rows[2] |= {"error_kind": "server_error", "attempts": 2.0, "attempt_kinds": "server_error;server_error"}
    # Cut off by the stop: one 429, then the retry in flight; its long e2e is the stop's, not latency.
    rows[3] |= {"error_kind": "cancelled", "e2e_ms": 60_000.0, "attempts": 2.0,
                "attempt_kinds": "rate_limited;cancelled"}  # fmt: skip
    everything = la.summary(requests_frame(rows)).iloc[-1]
    assert (everything["requests"], everything["failures"], everything["cancelled"]) == (4, 1, 1)
    assert everything["kind_cancelled"] == 1 and everything["failure_rate"] == pytest.approx(0.25)
    assert everything["attempts"] == 8
    assert (everything["attempt_rate_limited"], everything["attempt_server_error"]) == (3, 2)
    assert everything["attempt_cancelled"] == 1
    assert everything["e2e_ms_p99"] == pytest.approx(100.0), "a cancelled call is left out of latency"


def test_time_series_rates_and_error_share_per_bin():
    rows = [{"start_time": 0.0, "e2e_ms": 500.0} for _ in range(3)] + [
        {"start_time": 0.0, "e2e_ms": 500.0, "error_kind": "timeout"}
    ]
    series = la.time_series(requests_frame(rows), origin=0.0, width_s=1.0)
    assert series["rps"].tolist() == [4.0]
    assert series["ok_rps"].tolist() == [3.0] and series["failed_rps"].tolist() == [1.0]
    assert series["rate_timeout"].tolist() == [25.0]


def test_ecdf_points_reach_one_and_stay_small_for_big_samples():
    values, fractions = la.ecdf_points(np.arange(1.0, 11.0))
    assert values.tolist() == list(range(1, 11)) and fractions[-1] == 1.0 and fractions[4] == 0.5
    values, fractions = la.ecdf_points(np.arange(100_000.0), points=100)
    assert values.size == 100 and values[0] == 0 and values[-1] == 99_999


def test_knee_on_a_known_hockey_stick_curve():
    x = np.arange(0, 101, 5.0)
    y = np.where(x <= 50, 100.0, 100.0 + 20.0 * (x - 50))
    knee = capacity.find_knee(x, y)
    assert knee is not None and knee.throughput == 50.0 and knee.latency == 100.0


def test_no_knee_on_a_straight_or_flat_curve():
    x = np.arange(1, 21, 1.0)
    assert capacity.find_knee(x, 10.0 * x) is None, "linear growth has no bend"
    assert capacity.find_knee(x, np.full_like(x, 200.0)) is None, "flat latency has no knee"
    assert capacity.find_knee([1, 2, 3], [1, 2, 30]) is None, "too few points"


def test_knee_curve_takes_medians_per_throughput_band():
    x = np.array([1.0, 1.1, 1.2, 9.0, 9.1, 9.2])
    y = np.array([10.0, 11.0, 500.0, 80.0, 90.0, 100.0])
    curve_x, curve_y = capacity.knee_curve(x, y, bins=2)
    assert curve_x.tolist() == pytest.approx([1.1, 9.1]) and curve_y.tolist() == [11.0, 90.0]


@pytest.mark.parametrize(
    ("expr", "metric", "threshold", "value", "met"),
    [
        ("ttft_p95<=800ms", "ttft_p95", 800.0, 800.0, True),
        ("e2e_p99<5s", "e2e_p99", 5000.0, 5001.0, False),
        ("e2e_p99.9 <= 1.5m", "e2e_p99.9", 90_000.0, 1.0, True),
        ("error_rate<=1%", "error_rate", 1.0, 2.0, False),
        ("rate_limited<5%", "rate_limited", 5.0, 4.0, True),
        ("rps>=10", "rps", 10.0, 12.0, True),
        ("cost_per_1k<=2usd", "cost_per_1k", 2.0, 2.5, False),
        ("tpot_p95<=50ms", "tpot_p95", 50.0, 50.0, True),
    ],
)
def test_slo_expressions_in_the_suite_syntax_are_parsed(expr, metric, threshold, value, met):
    parsed = slo.parse_slo(expr)
    assert parsed is not None and parsed.metric == metric and parsed.threshold == pytest.approx(threshold)
    assert passes(parsed, value) is met
    assert passes(parsed, None) is False, "a gate without data does not pass"
    assert passes(parsed, float("nan")) is False


def test_unknown_slo_expression_is_not_guessed():
    assert slo.parse_slo("mood == happy") is None
    assert slo.parse_slo("apdex > 0.9") is None
    assert slo.parse_slo("error_rate<=1") is None, "a rate needs %"
    # One language with the run's --slo: what the run would have rejected is not judged here either.
    assert slo.parse_slo("p95 < 2000") is None
    assert slo.parse_slo("e2e_p95<=1s, rps>=2") is None, "one run.json entry is one gate"


def test_window_values_use_nearest_rank_and_percent():
    rows = [{"e2e_ms": float(v), "cost_usd": 0.001} for v in range(1, 11)]
    rows += [{"e2e_ms": 5.0, "error_kind": "rate_limited"}, {"e2e_ms": 7.0, "error_kind": "blocked"}]
    rows[0] |= {"tpot_ms": 4.0}
    rows[1] |= {"tpot_ms": 9.0}
    rows[-2] |= {"tpot_ms": 99.0, "schedule_lag_ms": 50.0}  # rate-limited: not timed, but it started late
    rows[0] |= {"schedule_lag_ms": 10.0}
    part = requests_frame(rows)
    window = slo.window_stats(part, 10.0)
    # Answered calls (ok or blocked): 1..10 and 7; nearest rank p50 of 11 samples is the 6th: 6.
    assert metric_value("e2e_p50", window) == 6.0
    assert metric_value("e2e_p95", window) == 10.0
    assert metric_value("e2e_max", window) == 10.0
    assert metric_value("error_rate", window) == pytest.approx(100 / 12)
    assert metric_value("rate_limited", window) == pytest.approx(100 / 12)
    assert metric_value("blocked", window) == pytest.approx(100 / 12)
    assert metric_value("rps", window) == pytest.approx(1.2)
    assert metric_value("cost_per_1k", window) == pytest.approx(10 / 12)
    assert metric_value("ttft_p95", window) is None
    assert metric_value("tpot_p95", window) == 9.0 and metric_value("tpot_avg", window) == 6.5
    assert metric_value("lag_max", window) == 50.0, "schedule lag counts every call, as in the run"
    only_e2e = slo.window_stats(
        part, 10.0, slo.latency_sources(slo.parse_slo(e) for e in ("e2e_p95<1s", "rps>1"))
    )
    assert only_e2e.e2e_ms == window.e2e_ms == sorted(window.e2e_ms) and only_e2e.tpot_ms == []


def test_capacity_is_the_highest_window_that_met_every_slo():
    # Four 10-s windows at 1, 2, 3 and 4 req/s. Latency: fine, fine, too slow, fine but failing.
    rows = []
    for window, (rate, e2e, failing) in enumerate(
        [(1, 500.0, 0), (2, 900.0, 0), (3, 2500.0, 0), (4, 700.0, 8)]
    ):
        for i in range(10 * rate):
            kind = "server_error" if i < failing else ""
            rows.append(
                {
                    "start_time": window * 10 + i / rate,
                    "e2e_ms": e2e,
                    "output_tokens": 6.0,
                    "error_kind": kind,
                }
            )
    requests = requests_frame(rows)
    spans = [capacity.Stage(f"w{i}", i * 10.0, (i + 1) * 10.0) for i in range(4)]
    gates = [{"expr": "e2e_p95<=1s", "passed": False}, {"expr": "error_rate<=1%", "passed": False}]
    run = RunInfo.from_document({"slo": [*gates, {"expr": "weird", "passed": True}]})
    result = capacity.capacity(requests, 0.0, spans, run)
    assert result.table["met"].tolist() == [True, True, False, False]
    assert (result.best_rps, result.best_tokens_per_min, result.best_window) == (2.0, 720.0, "w1")
    assert result.ignored == ["weird"]
    assert [c.expr for c in result.criteria] == ["e2e_p95<=1s", "error_rate<=1%"], "no default is added"
    assert result.table["e2e_p95<=1s"].tolist() == [500.0, 900.0, 2500.0, 700.0]
    assert result.table["failure_pct"].tolist() == [0.0, 0.0, 0.0, 20.0]
    statement = capacity_statement(result)
    assert statement.startswith("Capacity: 2.00 req/s sustained (window w1)")
    assert "met your SLOs (e2e_p95<=1s; error_rate<=1%)" in statement

    # Only a latency gate: failures are not judged (no default bound), and the statement says how
    # many failed in the window it names.
    latency_only = capacity.capacity(requests, 0.0, spans, RunInfo.from_document({"slo": gates[:1]}))
    assert latency_only.table["met"].tolist() == [True, True, False, True]
    assert latency_only.best_window == "w3"
    assert "No gate bounds failures: 20.00% of calls failed in that window." in capacity_statement(
        latency_only
    )


def test_without_slo_gates_capacity_claims_nothing_and_says_what_was_measured():
    rows = [{"start_time": i / 2, "e2e_ms": 400.0 + i, "output_tokens": 5.0} for i in range(40)]
    rows += [{"start_time": 20 + i / 4, "e2e_ms": 900.0, "error_kind": "timeout"} for i in range(20)]
    spans = [capacity.Stage("low", 0.0, 20.0), capacity.Stage("high", 20.0, 25.0)]
    result = capacity.capacity(requests_frame(rows), 0.0, spans, RunInfo())
    assert not result.judged and result.criteria == [] and result.best_rps is None
    assert result.table["met"].isna().all()
    statement = capacity_statement(result)
    assert "met" not in statement and "SLO" not in statement.replace("--slo", "")
    assert statement == (
        "No --slo gate was set, so no capacity is claimed. Highest load measured: 4.00 req/s "
        "(window high), with 100.00% of calls failed and p95 end-to-end – (no call answered)."
    )
    section = capacity_section(result)
    assert section.title == "Load windows"
    assert "Met your SLOs" not in section.tables[0].columns and "Failed" in section.tables[0].columns


def test_capacity_without_stages_uses_fixed_windows():
    spans = capacity.windows([], (0.0, 200.0))
    assert [(s.start_s, s.end_s) for s in spans[:2]] == [(0.0, 20.0), (20.0, 40.0)] and len(spans) == 10
    staged = [capacity.Stage("short", 0.0, 2.0), capacity.Stage("long", 2.0, 30.0)]
    assert [s.name for s in capacity.windows(staged, (0.0, 30.0))] == ["long"]


def test_moderation_accuracy_and_consistency():
    rows = [
        {"scenario": "mod", "item_id": "a", "expected": "safe", "verdict": "safe"},
        {"scenario": "mod", "item_id": "a", "expected": "safe", "verdict": "SAFE "},
        {"scenario": "mod", "item_id": "b", "expected": "unsafe", "verdict": "unsafe"},
        {"scenario": "mod", "item_id": "b", "expected": "unsafe", "verdict": "safe"},
        {"scenario": "mod", "item_id": "c", "expected": "unsafe", "error_kind": "blocked"},
        {"scenario": "mod", "item_id": "d", "expected": "unsafe", "error_kind": "timeout"},
        {"scenario": "chat"},
    ]
    figures = sa.moderation(requests_frame(rows))
    row = figures.table[figures.table["scenario"] == "mod"].iloc[0]
    assert row["answers"] == 5, "the timed-out call has no verdict and is left out"
    assert row["calls"] == 6 and row["unanswered"] == 1
    assert row["accuracy"] == pytest.approx(3 / 5)
    assert row["blocked"] == 1
    assert row["items_repeated"] == 2 and row["consistency"] == pytest.approx(0.5)
    # A blocked call without a verdict is the service refusing the post: verdict "violating".
    confusion = figures.confusion["mod"]
    assert confusion.loc["unsafe", "violating"] == 1 and confusion.loc["safe", "safe"] == 2
    assert np.isnan(row["precision"]) and np.isnan(row["recall"]), "these labels have no 'violating' class"
    assert figures.inconsistent["item_id"].tolist() == ["b"]
    assert list(figures.confusion) == ["mod"], "the unlabelled scenario is not scored"


def test_variant_comparison_raw_against_optimized():
    rows = [
        {"scenario": "vision", "variant": "raw", "e2e_ms": e, "request_bytes": 2048.0}
        for e in (900.0, 1100.0)
    ]
    rows += [
        {"scenario": "vision", "variant": "optimized", "e2e_ms": e, "prep_ms": 10.0} for e in (300.0, 500.0)
    ]
    rows += [{"scenario": "chat", "variant": "short"}]
    table = sa.variant_comparison(requests_frame(rows)).set_index("variant")
    # Nearest rank: the median of two calls is the first of them, an observed value.
    assert table.loc["raw", "e2e_p50"] == 900.0 and table.loc["optimized", "e2e_p50"] == 300.0
    assert table.loc["raw", "request_kb"] == 2.0 and table.loc["optimized", "prep_ms"] == 10.0
    assert "short" not in table.index, "a scenario with one variant has nothing to compare"


def test_variant_means_pair_the_items_every_variant_answered():
    def call(variant: str, item: str, kb: float, tokens: float, **extra) -> dict:
        return {"scenario": "vision", "variant": variant, "item_id": item, "request_bytes": kb * 1024,
                "prompt_tokens": tokens, "cost_usd": tokens / 1e6, **extra}  # fmt: skip

    rows = [
        call("raw", "a", 1000.0, 1000.0),
        call("raw", "a", 1000.0, 1200.0),  # asked twice: one mean for the item, not two votes
        call("raw", "b", 3000.0, 3000.0),
        call("raw", "c", 9000.0, 9000.0),  # the run stopped before c went out optimized
        call("raw", "b", 9999.0, 9999.0, error_kind="server_error"),  # failed: not in the means
        call("optimized", "a", 100.0, 250.0, prep_ms=8.0),
        call("optimized", "b", 300.0, np.nan, prep_ms=12.0),  # tokens not reported: left out, not 0
    ]
    table = sa.variant_comparison(requests_frame(rows)).set_index("variant")
    assert table.loc["raw", "items"] == table.loc["optimized", "items"] == 2
    assert table.loc["raw", "request_kb"] == pytest.approx(2000.0)  # (1000 + 3000) / 2
    assert table.loc["raw", "prompt_tokens"] == pytest.approx(2050.0)  # (1100 + 3000) / 2
    assert table.loc["raw", "cost_per_1k"] == pytest.approx(2.05)
    assert table.loc["optimized", "request_kb"] == pytest.approx(200.0)
    assert table.loc["optimized", "prompt_tokens"] == pytest.approx(250.0)
    assert table.loc["optimized", "prep_ms"] == pytest.approx(10.0) and table.loc["raw", "prep_ms"] == 0.0
    assert table.loc["raw", "requests"] == 5 and table.loc["raw", "failure_rate"] == pytest.approx(0.2)


def test_health_warns_only_on_sustained_overload():
    health = pd.DataFrame(
        {
            "timestamp": [0.0, 1, 2, 3, 4, 5, 6],
            "node": "w1",
            "cpu_percent": [50.0, 95, 40, 92, 93, 97, 60],
            "loop_lag_ms": [2.0, 3, 120, 130, 150, 10, 5],
        }
    )
    found = analysis.health_warnings(health, origin=0.0)
    assert [(w.what, w.start_s, w.end_s, w.peak) for w in found] == [
        ("cpu", 3.0, 5.0, 97.0),
        ("lag", 2.0, 4.0, 150.0),
    ]
    assert "w1" in found[0].message() and "90%" in found[0].message()


def test_distributions_per_scenario_leave_out_failures_and_empty_scenarios():
    rows = [{"scenario": "a", "e2e_ms": float(v)} for v in (3, 1, 2)]
    rows += [
        {"scenario": "a", "e2e_ms": 9999.0, "error_kind": "timeout"},
        {"scenario": "b", "error_kind": "timeout"},
    ]
    curves = la.distributions(requests_frame(rows), "e2e_ms")
    assert list(curves) == ["a"]
    values, fractions = curves["a"]
    assert values.tolist() == [1.0, 2.0, 3.0] and fractions.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_top_errors_count_kind_scenario_message_triples():
    rows = [{"error_kind": "rate_limited", "error_message": "429 quota"} for _ in range(3)]
    rows += [{"error_kind": "blocked", "error_message": ""}, {"error_kind": ""}]
    table = la.top_errors(requests_frame(rows))
    assert table[["error_kind", "error_message", "count"]].values.tolist() == [
        ["rate_limited", "429 quota", 3],
        ["blocked", "", 1],
    ]


def test_metadata_hides_secret_names_but_keeps_token_counts() -> None:
    from reports.metadata import HIDDEN, scrub

    shown = scrub(
        {
            "api_key": "k",
            "web_auth": "u:p",
            "max_output_tokens": 256,
            "tokens_served": {"output": 9},
            "x": "AIza" + "b" * 35,
        }
    )
    assert shown["api_key"] == HIDDEN and shown["web_auth"] == HIDDEN and shown["x"] == HIDDEN
    assert shown["max_output_tokens"] == 256 and shown["tokens_served"] == {"output": 9}
