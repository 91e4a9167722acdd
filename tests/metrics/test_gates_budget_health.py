"""SLO gates on merged stats, the budget rules and the generator-health detector, without Locust runs."""

from __future__ import annotations

import csv
import time
from types import SimpleNamespace

import gevent
import gevent.event
import pytest

from core.options import OptionError
from core.outcome import RATE_LIMITED, Outcome
from core.slo import parse_slo
from metrics import budget, gates, health, llm_files
from metrics.llm_stats import LlmStats
from tests.waiting import ManualClock, wait_until


def stats_with(e2e_values: list[float], *, rate_limited: int = 0, cost_each: float = 0.001) -> LlmStats:
    stats = LlmStats(keep_current_window=False)
    stats.started_at = 100.0
    for index, ms in enumerate(e2e_values):
        stats.log(
            Outcome("s", "m", "genai", 0.0, e2e_ms=ms, ttft_ms=ms / 2, cost_usd=cost_each), now=101.0 + index
        )
    for _ in range(rate_limited):
        stats.log(Outcome("s", "m", "genai", 0.0, e2e_ms=3.0, error_kind=RATE_LIMITED), now=101.0)
    return stats


def test_gates_judge_the_run_with_the_shared_syntax() -> None:
    stats = stats_with([float(ms) for ms in range(10, 1010, 10)], rate_limited=1)  # 100 answered + one 429
    results = gates.evaluate_run(
        parse_slo(
            "e2e_p95<=1s, ttft_p95<=400ms, error_rate<=1%, rate_limited<=0.5%, rps>=1, cost_per_1k<=2usd"
        ),
        stats,
    )
    by_expr = {r.gate.expr: r for r in results}
    assert by_expr["e2e_p95<=1s"].value == 950.0 and by_expr["e2e_p95<=1s"].passed
    # 475 ms in Locust's histogram is the 480 ms bucket: two significant digits, as documented.
    assert by_expr["ttft_p95<=400ms"].value == 480.0 and not by_expr["ttft_p95<=400ms"].passed
    assert by_expr["error_rate<=1%"].value == pytest.approx(100 / 101) and by_expr["error_rate<=1%"].passed
    assert not by_expr["rate_limited<=0.5%"].passed
    assert by_expr["rps>=1"].value == pytest.approx(101 / 100.0)  # 101 calls, first at start, last at +100 s
    assert by_expr["cost_per_1k<=2usd"].value == pytest.approx(1000 * 0.1 / 101)
    table = gates.format_table(results)
    assert "ttft_p95<=400ms" in table and "FAIL" in table and "2 of 6 SLO gates failed" in table
    assert gates.results_for_run_json(results)[0] == {
        "expr": "e2e_p95<=1s",
        "metric": "e2e_p95",
        "threshold": 1000.0,
        "unit": "ms",
        "value": 950.0,
        "passed": True,
    }


def test_a_gate_without_data_fails() -> None:
    stats = LlmStats(keep_current_window=False)
    (result,) = gates.evaluate_run(parse_slo("ttft_p95<=800ms"), stats)
    assert result.value is None and not result.passed
    assert "no data" in gates.format_table([result])


def test_time_per_output_token_gate_on_the_whole_run() -> None:
    stats = LlmStats(keep_current_window=False)
    stats.started_at = 100.0
    for tokens in (11, 21):  # (280 - 100) / 10 = 18 ms and 180 / 20 = 9 ms per token
        streamed = Outcome("s", "m", "genai", 0.0, e2e_ms=300.0, ttft_ms=100.0, last_chunk_ms=280.0)
        streamed.output_tokens = tokens
        stats.log(streamed, now=101.0)
    (result,) = gates.evaluate_run(parse_slo("tpot_p95<=20ms"), stats)
    assert result.value == pytest.approx(18.0) and result.passed


def test_bad_slo_expression_is_one_clear_error() -> None:
    with pytest.raises(OptionError, match="unknown metric 'p95'"):
        gates.gates_from_options(SimpleNamespace(slo="p95<=3"))
    assert gates.gates_from_options(SimpleNamespace(slo="")) == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("", True),
        (None, True),
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.1", True),
        ("http://localhost:1", True),
        ("http://[::1]:8000", True),
        ("https://generativelanguage.googleapis.com", False),
        ("http://192.0.2.1", False),
        ("http://emulator:8000", False),
        ("http://localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert budget.is_loopback_host(host) is loopback


def test_budget_is_required_off_loopback_and_the_message_hides_credentials() -> None:
    message = budget.budget_error("https://user:s3cret@api.example.com:8443/v1", 0.0)
    assert message is not None and "--max-cost" in message and "s3cret" not in message
    assert "https://api.example.com:8443" in message
    assert budget.budget_error("https://api.example.com", 5) is None
    assert budget.budget_error("http://127.0.0.1:9", 0) is None
    assert "not an amount in USD" in (budget.budget_error("http://127.0.0.1", "lots") or "")
    assert "positive" in (budget.budget_error("http://127.0.0.1", -1) or "")
    assert budget.parse_max_cost("$2.5") == 2.5


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def quit(self) -> None:
        self.calls.append("quit")

    def stop(self) -> None:
        self.calls.append("stop")


def test_budget_guard_stops_the_run_once() -> None:
    runner = FakeRunner()
    environment = SimpleNamespace(
        runner=runner, parsed_options=SimpleNamespace(max_cost=0.5, headless=True), web_ui=None
    )
    guard = budget.BudgetGuard(environment, clock=ManualClock(start=1_700_000_123.5))
    guard.arm()
    assert not guard.check(0.49)
    assert guard.check(0.5)
    assert not guard.check(0.9)
    assert guard.stopper is not None
    guard.stopper.join(timeout=10)  # the run is stopped from its own greenlet
    assert guard.stopper.ready() and runner.calls == ["quit"]
    summary = guard.summary(0.61)
    assert summary["reached"] and summary["max_cost_usd"] == 0.5 and summary["spent_usd"] == 0.61
    assert summary["reached_at"] == 1_700_000_123.5 and summary["spent_at_stop_usd"] == 0.5
    guard.arm()  # a new test: nothing reached, nothing stopping
    assert guard.reached_at is None and guard.stopper is None


def test_health_detector_flags_sustained_readings_only() -> None:
    detector = health.HealthDetector()
    cpu = [50, 95, 40, 92, 97, 91, 93, 10]  # one spike, then 4 in a row
    for second, value in enumerate(cpu):
        detector.add((1000.0 + second, "local-x-1", float(value), 5.0))
    for second, lag in enumerate([150, 160, 20, 120, 130]):  # never 3 in a row
        detector.add((2000.0 + second, "worker-x-2", 1.0, float(lag)))
    assert detector.warnings == [
        {
            "node": "local-x-1",
            "metric": "cpu_percent",
            "threshold": 90.0,
            "start": 1003.0,
            "end": 1006.0,
            "peak": 97.0,
            "samples": 4,
        }
    ]


def test_sampler_ticks_by_hand_measure_lag_and_close_one_second_windows() -> None:
    clock = ManualClock(start=50.0)
    late = [0.0]  # how much later than asked the next sleep wakes, in seconds
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        clock.advance(seconds + late[0])

    cpu_readings = iter([0.0, 42.04, 7.0])  # the first call only sets psutil's reference point
    samples: list[health.Sample] = []
    sampler = health.HealthSampler(
        "local-test-1",
        samples.append,
        clock=clock,
        sleep=sleep,
        wall_clock=lambda: 1_700_000_000.0 + clock(),
        cpu=lambda: next(cpu_readings),
    )
    sampler.begin()

    def run(lags: list[float]) -> list[health.Sample | None]:
        results = []
        for lag in lags:
            late[0] = lag
            results.append(sampler.tick())
        return results

    # 50 ms ticks, one of them 325 ms late: the window closes at the first wake at or after 1 s,
    # the 14th tick (14 x 0.05 + 0.325 = 1.025 s; the 13th woke at 0.975 s).
    results = run([0.0] * 5 + [0.325] + [0.0] * 8)
    assert results[:13] == [None] * 13 and len(results) == 14
    assert results[13] == samples[0] == (1_700_000_051.025, "local-test-1", 42.0, 325.0)
    # The next window starts where the last one ended, its worst lag reset: 25 ms this time.
    results = run([0.025] + [0.0] * 19)
    assert results[:19] == [None] * 19 and len(samples) == 2
    assert results[19] == samples[1] == (1_700_000_052.05, "local-test-1", 7.0, 25.0)
    assert asked == [health.LAG_TICK_S] * 34


def test_sampler_sees_a_blocked_event_loop() -> None:
    """The real clock, gevent's sleep and psutil: a 300 ms block of the hub shows in the next sample."""
    samples: list[health.Sample] = []
    asleep = gevent.event.Event()

    def sleep(seconds: float) -> None:
        asleep.set()
        gevent.sleep(seconds)  # why: the sampler's own 50 ms tick, whose lateness is under test

    sampler = health.HealthSampler("local-test-1", samples.append, sleep=sleep)
    sampler.start()
    try:
        assert asleep.wait(timeout=10), "the sampler never started ticking"
        burnt = time.process_time() + 0.3
        while time.process_time() < burnt:  # 300 ms of CPU that never yields to the hub
            pass
        wait_until(lambda: samples, timeout=10, what="the first health sample")
    finally:
        sampler.stop()
    timestamp, node, cpu, lag = samples[0]
    assert node == "local-test-1" and abs(timestamp - time.time()) < 60
    # The sampler was asleep for 50 ms when the block began, so it woke at least 250 ms late.
    assert lag >= 250, f"a 300 ms block showed as {lag} ms of lag"
    assert cpu > 0, "300 ms of CPU in the window is more than 0 % however long the window ran"


def test_appended_csv_files_keep_one_header_and_flush_every_write(tmp_path) -> None:
    log = health.HealthLog()
    log.open(tmp_path)
    log.write([(1.0, "local-h-1", 12.5, 3.0)])
    assert (
        tmp_path / "health.csv"
    ).read_text() == "timestamp,node,cpu_percent,loop_lag_ms\n1.0,local-h-1,12.5,3.0\n"
    log.close()
    log.open(tmp_path)  # a reopened folder (web-UI rerun): rows appended, no second header
    log.write([(2.0, "local-h-1", 13.0, 4.0)])
    log.close()
    assert (tmp_path / "health.csv").read_text().count("timestamp") == 1

    history = llm_files.HistoryLog()
    history.open(tmp_path)
    history.write([{"timestamp": 5, "scenario": "s", "requests": 3, "not_a_column": "x"}])
    with (tmp_path / "llm_stats_history.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    history.close()
    assert (row["timestamp"], row["scenario"], row["requests"], row["model"]) == ("5", "s", "3", "")
    assert "not_a_column" not in row
