"""LLM stats: what one process counts, and that workers' shares merge on the master exactly."""

from __future__ import annotations

import random

import pytest
from locust.rpc.protocol import Message

from core.outcome import BLOCKED, RATE_LIMITED, SERVER_ERROR, Outcome
from metrics.llm_stats import LLM_STATS_COLUMNS, LlmStats, bucket_percentile


def make_outcomes(count: int, seed: int = 7) -> list[Outcome]:
    rng = random.Random(seed)
    outcomes = []
    for index in range(count):
        scenario, model = rng.choice([("moderation", "gemini-2.5-flash"), ("stream", "gemini-2.5-pro")])
        kind = rng.choice(["", "", "", "", BLOCKED, RATE_LIMITED, SERVER_ERROR])
        streaming = scenario == "stream" and kind in ("", BLOCKED)
        ttft = rng.uniform(50, 900) if streaming else None
        output = rng.randint(2, 400) if kind in ("", BLOCKED) else None
        outcomes.append(
            Outcome(
                scenario=scenario,
                model=model,
                transport="genai",
                start_time=1_700_000_000 + index * 0.01,
                e2e_ms=rng.uniform(5, 12_000),
                ttft_ms=ttft,
                last_chunk_ms=None if ttft is None else ttft + rng.uniform(10, 3000),
                prompt_tokens=rng.randint(10, 5000) if output is not None else None,
                output_tokens=output,
                thoughts_tokens=rng.randint(0, 50),
                error_kind=kind,
                attempts=rng.randint(1, 3),
                cost_usd=rng.uniform(0, 0.01) if output is not None else 0.0,
                schedule_lag_ms=rng.uniform(0, 40) if index % 3 == 0 else None,
            )
        )
    return outcomes


def through_the_wire(payload: dict) -> dict:
    """What the master receives: Locust's own msgpack message encoding, both ways."""
    return Message.unserialize(Message("stats", {"gemini_llm": payload}, "w").serialize()).data["gemini_llm"]


def test_two_workers_merged_on_a_master_equal_one_process_exactly() -> None:
    outcomes = make_outcomes(3000)
    now = 1_700_000_100.0
    single = LlmStats(keep_current_window=True)
    for outcome in outcomes:
        single.log(outcome, now=now)

    master = LlmStats(keep_current_window=True)
    workers = [LlmStats(keep_current_window=False), LlmStats(keep_current_window=False)]
    for index, outcome in enumerate(outcomes):
        workers[index % 2].log(outcome, now=now)
        if index % 250 == 0:  # workers report every few seconds, each time sending what is new
            for worker in workers:
                master.merge(through_the_wire(worker.serialize_and_reset()))
    for worker in workers:
        master.merge(through_the_wire(worker.serialize_and_reset()))
    master.started_at = single.started_at

    assert master.rows() == single.rows()
    total = master.rows()[-1]
    assert total["scenario"] == "Aggregated" and total["requests"] == 3000
    # Exact sums, not approximations: tokens and cost against the raw outcomes.
    assert total["output_tokens"] == sum(o.output_tokens or 0 for o in outcomes)
    assert total["prompt_tokens"] == sum(o.prompt_tokens or 0 for o in outcomes)
    assert total["cost_usd"] == pytest.approx(sum(o.cost_usd for o in outcomes), abs=1e-9)
    assert total["attempts"] == sum(o.attempts for o in outcomes)
    assert total["failures"] == sum(o.failed for o in outcomes)
    assert total["blocked"] == sum(o.error_kind == BLOCKED for o in outcomes)
    assert total["rate_limited"] + total["server_error"] == total["failures"]


def test_rows_have_every_column_and_split_by_scenario_and_model() -> None:
    stats = LlmStats(keep_current_window=True)
    for outcome in make_outcomes(200):
        stats.log(outcome)
    rows = stats.rows()
    assert [(r["model"], r["scenario"]) for r in rows] == [
        ("gemini-2.5-flash", "moderation"),
        ("gemini-2.5-pro", "stream"),
        ("", "Aggregated"),
    ]
    assert all(tuple(row) == LLM_STATS_COLUMNS for row in rows)
    assert rows[0]["requests"] + rows[1]["requests"] == rows[2]["requests"] == 200
    assert rows[0]["ttft_p50_ms"] is None, "moderation calls do not stream: no TTFT"
    assert rows[1]["ttft_p50_ms"] is not None and rows[1]["tpot_p50_ms"] is not None


def test_latency_counts_answered_calls_only_and_uses_nearest_rank() -> None:
    stats = LlmStats(keep_current_window=False)
    for ms in range(1, 101):  # 1..100 ms, all answered
        stats.log(Outcome("s", "m", "genai", 0.0, e2e_ms=float(ms)))
    stats.log(Outcome("s", "m", "genai", 0.0, e2e_ms=1.0, error_kind=RATE_LIMITED))  # a fast 429
    row = stats.rows()[-1]
    assert row["requests"] == 101 and row["failures"] == 1
    assert row["e2e_p95_ms"] == 95.0  # nearest rank of 1..100; the 429 is not a latency sample
    assert row["e2e_p50_ms"] == 50.0 and row["e2e_min_ms"] == 1.0 and row["e2e_max_ms"] == 100.0


def test_cancelled_calls_are_counted_apart_with_their_attempts_and_never_timed() -> None:
    from core.outcome import CANCELLED
    from core.slo import WindowStats, metric_value
    from metrics.gates import window_from_stats

    stats = LlmStats(keep_current_window=False)
    answered = Outcome("s", "m", "genai", 0.0, e2e_ms=100.0, attempts=2, attempt_kinds=RATE_LIMITED)
    failed = Outcome("s", "m", "genai", 0.0, e2e_ms=5.0, error_kind=SERVER_ERROR, attempt_kinds=SERVER_ERROR)
    # Cut off by the stop while backing off after two 429s: 2 attempts, not a failure, not timed.
    cancelled = Outcome(
        "s", "m", "genai", 0.0, e2e_ms=9_000.0, ttft_ms=50.0, error_kind=CANCELLED, attempts=2,
        attempt_kinds="rate_limited;rate_limited",
    )  # fmt: skip
    for outcome in (answered, failed, cancelled):
        stats.log(outcome)
    row = stats.rows()[-1]
    assert (row["requests"], row["failures"], row["cancelled"], row["attempts"]) == (3, 1, 1, 5)
    assert row["e2e_max_ms"] == 100.0 and row["ttft_p50_ms"] is None, "only the answer is timed"
    # The SLO language counts it apart too: not in error_rate, a metric of its own.
    for window in (window_from_stats(stats), WindowStats.from_outcomes([answered, failed, cancelled], 1.0)):
        assert metric_value("error_rate", window) == pytest.approx(100 / 3)
        assert metric_value("cancelled", window) == pytest.approx(100 / 3)
    assert WindowStats.from_outcomes([cancelled], 1.0).e2e_ms == []


def test_time_per_output_token_keeps_sub_millisecond_resolution() -> None:
    stats = LlmStats(keep_current_window=False)
    # (last - first) / (tokens - 1) = (1000 - 100) / 180 = 5.0 ms/token; then 5.55 ms/token.
    stats.log(
        Outcome("s", "m", "genai", 0.0, e2e_ms=1000, ttft_ms=100, last_chunk_ms=1000, output_tokens=181)
    )
    stats.log(Outcome("s", "m", "genai", 0.0, e2e_ms=1000, ttft_ms=1, last_chunk_ms=1000, output_tokens=181))
    row = stats.rows()[-1]
    assert row["tpot_p50_ms"] == 5.0
    assert row["tpot_p99_ms"] == pytest.approx(5.55, abs=0.05)  # would be 6 with whole-ms buckets


def test_bucket_percentile_never_leaves_the_exact_extremes() -> None:
    stats = LlmStats(keep_current_window=False)
    stats.log(Outcome("s", "m", "genai", 0.0, e2e_ms=147.0))  # lands in Locust's 150 ms bucket
    entry = stats.timing_entry("e2e", None)
    assert bucket_percentile(entry, 100) == 147.0
    assert bucket_percentile(LlmStats(keep_current_window=False).timing_entry("e2e", None), 50) is None


def test_history_rows_give_current_rates_from_whole_seconds() -> None:
    stats = LlmStats(keep_current_window=True)
    stats.started_at = 1000.0
    for second in range(1000, 1012):
        for _ in range(4):
            stats.log(
                Outcome("s", "m", "genai", float(second), e2e_ms=10.0, output_tokens=25), now=second + 0.5
            )
    rows = stats.history_rows(now=1012.2, user_count=3)
    total = rows[-1]
    assert total["scenario"] == "Aggregated" and total["user_count"] == 3
    assert total["requests"] == 48
    assert total["current_rps"] == 4.0 and total["current_output_tokens_per_s"] == 100.0
