"""The LLM tab's live part without a browser: number formats, table rows, the bounded chart series,
and the live JSON's gates, budget banner and capacity line (tests/metrics/test_webui.py draws them)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.outcome import RATE_LIMITED, SERVER_ERROR, Outcome
from core.slo import GateResult, SloGate, WindowStats, parse_slo
from metrics import web_formats as fmt
from metrics import webui, webui_live
from metrics.budget import BudgetGuard
from metrics.llm_series import LlmSeries, SeriesPoint, point_from_stats
from metrics.llm_stats import LlmStats
from shapes.open_model import CapacitySearch
from shapes.runtime import runtime_for
from tests.waiting import ManualClock


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0, "0"), (0.002, "0.002"), (0.0034567, "0.003457"), (0.12349, "0.1235"), (12.345, "12.35"),
     (2500.0, "2,500.00"), (3.4e-07, "0.00000034"), (None, "")],
)  # fmt: skip
def test_costs_show_cents_or_four_significant_digits(value: float | None, shown: str) -> None:
    assert fmt.usd(value) == shown


def test_counts_and_times_are_integers_with_separators() -> None:
    assert fmt.count(2964.22) == "2,964" and fmt.count(2500) == "2,500" and fmt.count(None) == ""
    assert fmt.ms(2161.4) == "2,161" and fmt.ms_per_token(5.56) == "5.6" and fmt.ms(None) == ""
    assert fmt.percent(12.5) == "12.5 %" and fmt.percent(0) == "0 %"
    tpot = GateResult(SloGate("tpot_p95<=50ms", "tpot_p95", "<=", 50.0, "ms"), 7.25, True)
    ttft = GateResult(SloGate("ttft_p95<=800ms", "ttft_p95", "<=", 800.0, "ms"), 2161.0, False)
    assert fmt.gate_value(tpot) == "7.2 ms/token" and fmt.gate_value(ttft) == "2,161 ms"
    assert fmt.gate_value(GateResult(ttft.gate, None, False)) == "no data yet"


def outcome(**fields: object) -> Outcome:
    base = {"e2e_ms": 300.0, "ttft_ms": 120.0, "output_tokens": 1500, "thoughts_tokens": 2200,
            "prompt_tokens": 40_000, "cost_usd": 0.0012345}  # fmt: skip
    base.update(fields)
    return Outcome("chat", "gemini-x", "genai", 0.0, **base)


def test_table_rows_have_thinking_tokens_one_failure_column_and_one_format_per_column() -> None:
    stats = LlmStats(keep_current_window=False)
    stats.started_at = 100.0
    stats.log(outcome(), now=101.0)
    stats.log(outcome(), now=102.0)
    stats.log(outcome(error_kind=RATE_LIMITED, output_tokens=None, thoughts_tokens=None), now=102.0)
    stats.log(outcome(error_kind=SERVER_ERROR, output_tokens=None, thoughts_tokens=None), now=102.0)
    row, total = webui.web_rows(stats)
    assert total["scenario"] == "Aggregated"
    assert row["thinking"] == "4,400" and row["tokensin"] == "160,000" and row["tokensout"] == "3,000"
    assert row["errors"] == "429 ×1 · 5xx ×1" and row["failures"] == "2"
    assert row["ttftninetyfive"] == "120" and row["cost"] == "0.004938"
    assert row["tokenspersecond"] == "1,500"  # 3,000 tokens over 2 s: an integer, not 1500.0
    assert set(row) == {key for key, _, _ in webui.WEB_COLUMNS}  # every cell has its column


def point(t: float, cost: float) -> SeriesPoint:
    return SeriesPoint(t, 1, 100.0, 200.0, 50.0, 1.0, cost, {"rate_limited": int(t)})


def test_the_series_stays_bounded_and_keeps_the_whole_run() -> None:
    series = LlmSeries(max_points=10, first_interval_s=1.0)
    t = 0.0
    while t < 100:
        if series.due(t):
            series.add(point(t, t / 100))
        t += 0.5
    assert len(series.points) <= 10
    data = series.as_json()
    assert data["t"][0] <= 16 and data["t"][-1] >= 84  # from near the start to near the end
    assert data["interval_s"] >= 8  # the interval grew as the points thinned
    assert data["errors"]["rate_limited"] == [int(t) for t in data["t"]]  # cumulative: still exact
    series.reset()
    assert series.as_json()["t"] == [] and series.interval_s == 1.0


def test_a_point_reads_the_current_window_and_the_failure_counts() -> None:
    stats = LlmStats(keep_current_window=True)
    stats.started_at = 100.0
    stats.log(outcome(), now=101.0)
    stats.log(outcome(error_kind=RATE_LIMITED, output_tokens=None), now=101.0)
    sample = point_from_stats(stats, 105.0, 3, spent_usd=0.5)
    assert sample.errors == {"rate_limited": 1} and sample.cost_usd == 0.5 and sample.users == 3
    assert sample.output_tokens_per_s == pytest.approx(
        1500 / 3
    )  # seconds 100..102: the last 2 s are kept back


class FakeRunner:
    state = "running"

    def stop(self) -> None:
        self.state = "stopped"

    quit = stop


def live_source(slo: str, max_cost: float) -> SimpleNamespace:
    environment = SimpleNamespace(
        runner=FakeRunner(),
        parsed_options=SimpleNamespace(slo=slo, max_cost=max_cost, headless=False),
        web_ui=None,
    )
    stats = LlmStats(keep_current_window=False)
    guard = BudgetGuard(environment, clock=ManualClock(start=1_700_000_000.0))
    guard.arm()
    source = SimpleNamespace(environment=environment, stats=stats, series=LlmSeries(), budget=guard)
    source.estimated_spend_usd = lambda: stats.total.cost_usd
    return source


def test_live_gates_and_the_budget_banner_come_from_the_final_verdicts_code() -> None:
    source = live_source("ttft_p95<=1ms, error_rate<=50%", max_cost=0.002)
    state = webui_live.live_state(source)
    assert [(g["expr"], g["shown"], g["passed"]) for g in state["gates"]] == [
        ("ttft_p95<=1ms", "no data yet", False), ("error_rate<=50%", "no data yet", False),
    ]  # fmt: skip
    assert state["budget"]["text"] == "Budget: 0 of 0.002 USD spent (0 %)" and state["banner"] == ""
    for _ in range(2):
        source.stats.log(outcome(ttft_ms=2161.0), now=101.0)
        source.budget.check(source.estimated_spend_usd())
    state = webui_live.live_state(source)
    assert [(g["shown"], g["passed"]) for g in state["gates"]] == [("2,161 ms", False), ("0 %", True)]
    assert state["banner"] == (
        "The cost budget stopped this test: estimated spend 0.002469 USD reached --max-cost 0.002 USD"
    )
    assert state["budget"]["reached_at"] == 1_700_000_000.0
    source.budget.arm()  # the next test starts: the banner goes
    assert webui_live.live_state(source)["banner"] == ""


def test_a_bad_slo_is_its_one_line_error_and_no_budget_is_no_line() -> None:
    state = webui_live.live_state(live_source("ttft_p95<=fast", max_cost=0))
    assert state["gates"] == [] and "--slo" in state["gates_error"] and state["budget"] is None


def test_a_capacity_search_shows_its_step_and_the_capacity_so_far() -> None:
    source = live_source("e2e_p95<=500ms", max_cost=0)
    environment = source.environment
    assert webui_live.live_state(source)["capacity"] is None  # not a capacity search
    search = CapacitySearch(start_rate=10, rate_step=10, step_duration_s=2, gates=parse_slo("e2e_p95<=500ms"))
    runtime = runtime_for(environment)

    def window(start: float, end: float) -> WindowStats:
        calls = WindowStats(requests=20, duration_s=end - start)
        calls.e2e_ms.extend([100.0 if start < 2 else 900.0] * 20)  # the second step breaks the SLO
        return calls

    for index, t in enumerate((0.0, 2.0, 4.0)):  # the shape's ticks: stage, then the search's state
        runtime.stage = f"rate-{10 * (index + 1)}"
        runtime.stage_log.enter(runtime.stage, 1000.0 + t)
        search.update(t, window)
        runtime.capacity = search.result()
    capacity = webui_live.live_state(source)["capacity"]
    assert capacity["text"] == "Capacity search: step 3 (rate-30), 1 judged; capacity so far: 10 requests/s"
    search.update(8.0, window)
    runtime.capacity = search.result()
    capacity = webui_live.live_state(source)["capacity"]
    assert capacity["text"] == "Capacity search over (slo_breached): capacity 10 requests/s"
