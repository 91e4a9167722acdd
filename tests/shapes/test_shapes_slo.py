from __future__ import annotations

import pytest

from core.options import OptionError
from core.outcome import Outcome
from core.slo import WindowStats, all_passed, evaluate, parse_slo, percentile


def window_of(
    e2e: list[float], ttft: list[float] | None = None, kinds: list[str] | None = None
) -> WindowStats:
    stats = WindowStats(duration_s=10.0)
    ttft = ttft or [None] * len(e2e)
    for value, first in zip(e2e, ttft, strict=True):
        stats.add(e2e_ms=value, ttft_ms=first, cost_usd=0.001)
    for kind in kinds or []:
        stats.add(error_kind=kind, e2e_ms=5.0)
    return stats


def test_parses_the_issue_examples() -> None:
    gates = parse_slo(
        "ttft_p95<=800ms, e2e_p99<=5s,error_rate<=1%, rate_limited<=0.5%, rps>=50, cost_per_1k<=2usd"
    )
    assert [(g.metric, g.op, g.threshold, g.unit) for g in gates] == [
        ("ttft_p95", "<=", 800.0, "ms"),
        ("e2e_p99", "<=", 5000.0, "ms"),
        ("error_rate", "<=", 1.0, "%"),
        ("rate_limited", "<=", 0.5, "%"),
        ("rps", ">=", 50.0, "rps"),
        ("cost_per_1k", "<=", 2.0, "usd"),
    ]
    assert gates[0].expr == "ttft_p95<=800ms"


def test_repeated_option_and_commas_combine() -> None:
    gates = parse_slo(["ttft_p95<=800ms", "error_rate<=1%,e2e_p50<1.5s"])
    assert [g.metric for g in gates] == ["ttft_p95", "error_rate", "e2e_p50"]
    assert gates[2].threshold == 1500.0 and gates[2].op == "<"


def test_empty_and_none_give_no_gates() -> None:
    assert parse_slo(None) == [] and parse_slo("") == [] and parse_slo(" , ") == []


def test_other_units_and_forms() -> None:
    gates = parse_slo(
        "e2e_p99.9 <= 2m, ttft_avg<=300, lag_p95<250ms, cost_per_1k<=$0.5, rps>=10/s, requests>=100"
    )
    assert [g.threshold for g in gates] == [120_000.0, 300.0, 250.0, 0.5, 10.0, 100.0]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("ttft<=1s", "unknown metric 'ttft'"),
        ("error_rate<=1", "is a percentage"),
        ("e2e_p95<=fast", "is not a time"),
        ("ttft_p95=800ms", "is not an SLO expression"),
        ("ttft_p150<=1s", "percentile must be between 0 and 100"),
        ("rps>=many", "is not a number"),
        ("latency<=1s", "unknown metric"),
    ],
)
def test_bad_expressions_name_the_option_and_expression(expr: str, message: str) -> None:
    with pytest.raises(OptionError, match=message) as caught:
        parse_slo(f"error_rate<=1%,{expr}")
    assert str(caught.value).startswith("--slo: ")
    assert expr.split("=")[0].split("<")[0] in str(caught.value)
    assert "\n" not in str(caught.value)


def test_percentiles_are_nearest_rank() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentile(samples, 95) == 95.0
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_evaluate_passes_and_fails_on_the_window() -> None:
    stats = window_of(e2e=[100.0 * i for i in range(1, 101)], ttft=[10.0 * i for i in range(1, 101)])
    results = evaluate(parse_slo("ttft_p95<=950ms, ttft_p95<=900ms, e2e_p99<=10s, rps>=10, rps>=11"), stats)
    assert [r.passed for r in results] == [True, False, True, True, False]
    assert results[0].value == 950.0
    assert results[3].value == pytest.approx(10.0)


def test_error_kinds_and_blocked_count_apart() -> None:
    stats = window_of(e2e=[100.0] * 96, kinds=["rate_limited", "rate_limited", "server_error", "blocked"])
    values = {r.gate.metric: r.value for r in evaluate(
        parse_slo("error_rate<=1%, rate_limited<=0.5%, server_error<=1%, blocked<=1%"), stats)}  # fmt: skip
    assert values == pytest.approx(
        {"error_rate": 3.0, "rate_limited": 2.0, "server_error": 1.0, "blocked": 1.0}
    )
    # latency holds answered calls only: the blocked answer counts, the failures do not
    assert len(stats.e2e_ms) == 97


def test_cost_per_thousand() -> None:
    stats = window_of(e2e=[1.0] * 10)  # 0.001 USD each
    (result,) = evaluate(parse_slo("cost_per_1k<=1usd"), stats)
    assert result.value == pytest.approx(1.0) and result.passed


def test_no_data_does_not_pass() -> None:
    results = evaluate(parse_slo("ttft_p95<=1s, error_rate<=1%, requests>=1"), WindowStats(duration_s=5))
    assert [(r.value, r.passed) for r in results] == [(None, False), (None, False), (0.0, False)]
    assert not all_passed(results)


def test_window_from_outcomes_objects_and_rows() -> None:
    outcomes = [
        Outcome("s", "m", "t", start_time=1.0, e2e_ms=200.0, ttft_ms=50.0, cost_usd=0.01),
        Outcome("s", "m", "t", start_time=2.0, e2e_ms=20.0, error_kind="timeout", schedule_lag_ms=3.0),
    ]
    for source in (outcomes, [o.as_row() for o in outcomes]):
        stats = WindowStats.from_outcomes(source, duration_s=2.0)
        assert (stats.requests, stats.failures, stats.e2e_ms, stats.ttft_ms) == (
            2,
            {"timeout": 1},
            [200.0],
            [50.0],
        )
        assert stats.lag_ms == [3.0] and stats.cost_usd == pytest.approx(0.01)


def test_result_as_dict_is_json_ready() -> None:
    (result,) = evaluate(parse_slo("e2e_p50<=1s"), window_of(e2e=[123.456]))
    assert result.as_dict() == {
        "expr": "e2e_p50<=1s", "metric": "e2e_p50", "threshold": 1000.0, "unit": "ms", "value": 123.456, "passed": True,
    }  # fmt: skip


def test_time_per_output_token_gates() -> None:
    (gate,) = parse_slo("tpot_p95<=50ms")
    assert (gate.metric, gate.op, gate.threshold, gate.unit) == ("tpot_p95", "<=", 50.0, "ms")
    stats = WindowStats(duration_s=1.0)
    for tpot in range(1, 21):  # 1..20 ms per token
        stats.add(e2e_ms=100.0, tpot_ms=float(tpot))
    stats.add(error_kind="timeout", tpot_ms=500.0)  # a failed call is not timed
    stats.add(e2e_ms=100.0)  # a call without a stream has no tpot
    results = evaluate(parse_slo("tpot_p95<=19ms, tpot_p50<10ms, tpot_avg<=10.5, tpot_max<=20ms"), stats)
    assert [(r.value, r.passed) for r in results] == [(19.0, True), (10.0, False), (10.5, True), (20.0, True)]
    (empty,) = evaluate(parse_slo("tpot_p95<=50ms"), window_of(e2e=[100.0]))
    assert (empty.value, empty.passed) == (None, False), "no streamed call: no data, not a pass"


def test_window_from_outcomes_derives_tpot() -> None:
    streamed = Outcome(
        "s", "m", "t", start_time=1.0, e2e_ms=300.0, ttft_ms=100.0, last_chunk_ms=280.0, output_tokens=10
    )
    for source in ([streamed], [streamed.as_row()]):
        stats = WindowStats.from_outcomes(source, duration_s=1.0)
        assert stats.tpot_ms == [pytest.approx(20.0)]  # (280 - 100) / (10 - 1)
