"""LLM stats per scenario and model, kept so that workers' shares merge exactly on the master.

Per (scenario, model) and for the whole run, one process keeps:
- Timings in Locust's own RequestStats, one per metric (e2e, ttft, tpot, lag), so they serialize and
  merge the way Locust merges its request stats. Locust stores a histogram rounded to two significant
  digits (147 ms -> 150 ms); that rounding is the only approximation here. TPOT is stored in
  microseconds so a 5.55 ms/token figure keeps 0.1 ms resolution instead of rounding to whole ms.
  e2e and ttft time answered calls only (ok or blocked), like core/slo.py: a fast 429 must not
  make latency look better. Locust's own stats still time every call but a cancelled one.
- Exact integer counters: calls, failures, blocked, cancelled (cut off by the run's stop), each
  failure kind, attempts (requests sent, a cancelled call's included), tokens, and cost in integer
  pico-USD, so sums are exact and do not depend on the order workers report in.
- Per-second [calls, failures, output tokens] for the "current" rates of the history file.
The live charts' time series samples these stats (metrics/llm_series.py).

Percentiles are nearest-rank over the histogram (the smallest value with at least p% of calls at or
below it), the same definition core/slo.py uses on raw samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from locust.stats import RequestStats, StatsEntry

from core.outcome import BLOCKED, CANCELLED, Outcome
from core.results import FAILURE_KIND_NAMES, LLM_STATS_COLUMNS

TIMING_METRICS = ("e2e", "ttft", "tpot", "lag")
PUSD_PER_USD = 10**12  # cost is counted in integer pico-USD: exact, order-independent sums
TPOT_SCALE = 1000.0  # TPOT ms -> µs in the histogram
CURRENT_WINDOW_S = 10  # "current" rates: the last 10 whole seconds, ending 2 s ago (like Locust)
PER_SECOND_KEEP_S = 30
AGGREGATED = "Aggregated"

COUNTER_NAMES = (
    "requests",
    "failures",
    "blocked",
    "cancelled",
    "answered",
    *FAILURE_KIND_NAMES,
    "attempts",
    "usage_reported",
    "prompt_tokens",
    "output_tokens",
    "thoughts_tokens",
    "cached_tokens",
    "cost_pusd",
)


class Counters:
    """Exact counts of one (scenario, model) or of the whole run."""

    __slots__ = ("counts", "per_second", "first_ts", "last_ts")

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.per_second: dict[int, list[int]] = {}  # epoch second -> [calls, failures, output tokens]
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def add(self, outcome: Outcome, now: float) -> None:
        counts = self.counts
        counts["requests"] += 1
        counts["attempts"] += int(outcome.attempts or 1)
        failed = outcome.failed  # the same test Locust's stats use: every kind but blocked, cancelled
        if failed:
            counts["failures"] += 1
            counts[outcome.error_kind] += 1
        elif outcome.error_kind == BLOCKED:
            counts["blocked"] += 1
            counts["answered"] += 1
        elif outcome.error_kind == CANCELLED:
            counts["cancelled"] += 1
        elif not outcome.error_kind:
            counts["answered"] += 1
        if outcome.prompt_tokens is not None or outcome.output_tokens is not None:
            counts["usage_reported"] += 1
        output = int(outcome.output_tokens or 0)
        counts["prompt_tokens"] += int(outcome.prompt_tokens or 0)
        counts["output_tokens"] += output
        counts["thoughts_tokens"] += int(outcome.thoughts_tokens or 0)
        counts["cached_tokens"] += int(outcome.cached_tokens or 0)
        counts["cost_pusd"] += usd_to_pusd(outcome.cost_usd)
        second = self.per_second.setdefault(int(now), [0, 0, 0])
        second[0] += 1
        second[1] += int(failed)
        second[2] += output
        self.first_ts = now if self.first_ts is None else min(self.first_ts, now)
        self.last_ts = now if self.last_ts is None else max(self.last_ts, now)

    def serialize(self) -> dict[str, Any]:
        """Plain msgpack types only: the payload of a worker report."""
        return {
            "counts": dict(self.counts),
            "per_second": {second: list(values) for second, values in self.per_second.items()},
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    def extend(self, data: dict[str, Any]) -> None:
        for name, value in data.get("counts", {}).items():
            self.counts[name] = self.counts.get(name, 0) + int(value)
        for second, values in data.get("per_second", {}).items():
            mine = self.per_second.setdefault(int(second), [0, 0, 0])
            for index, value in enumerate(values[:3]):
                mine[index] += int(value)
        for name, pick in (("first_ts", min), ("last_ts", max)):
            theirs = data.get(name)
            if theirs is not None:
                ours = getattr(self, name)
                setattr(self, name, theirs if ours is None else pick(ours, theirs))

    def prune(self, before: int) -> None:
        for second in [s for s in self.per_second if s < before]:
            del self.per_second[second]

    def current_rates(self, now: float, started_at: float) -> tuple[float, float, float]:
        """(calls/s, failures/s, output tokens/s) over the last whole seconds, like Locust's current_rps."""
        end = int(now) - 2  # the last two seconds may still miss worker reports
        start = max(end - CURRENT_WINDOW_S, int(started_at))
        if end <= start:
            return 0.0, 0.0, 0.0
        sums = [0, 0, 0]
        for second in range(start, end):
            for index, value in enumerate(self.per_second.get(second, (0, 0, 0))):
                sums[index] += value
        span = end - start
        return sums[0] / span, sums[1] / span, sums[2] / span

    @property
    def cost_usd(self) -> float:
        return self.counts["cost_pusd"] / PUSD_PER_USD


def usd_to_pusd(usd: float | None) -> int:
    if not usd or usd != usd:
        return 0
    return round(float(usd) * PUSD_PER_USD)


def bucket_percentile(entry: StatsEntry, pct: float) -> float | None:
    """Nearest-rank percentile (pct in 0..100) over a StatsEntry's histogram; None without samples."""
    histogram = entry.response_times
    samples = sum(histogram.values())
    if samples == 0:
        return None
    rank = max(1, math.ceil(pct / 100.0 * samples))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            # The bucket may lie outside the exact extremes (a 147 ms maximum sits in the 150 bucket).
            low = entry.min_response_time if entry.min_response_time is not None else value
            return float(min(max(value, low), entry.max_response_time))
    return float(entry.max_response_time)


def entry_average(entry: StatsEntry) -> float | None:
    timed = entry.num_requests - entry.num_none_requests
    return entry.total_response_time / timed if timed > 0 else None


class LlmStats:
    """One process's LLM stats; on the master (or a single process) the merged stats of the run."""

    def __init__(self, *, keep_current_window: bool) -> None:
        # The response-times cache gives Locust's "current" (last ~10 s) percentiles for the history
        # file; workers do not need it (they report and reset every 3 s).
        self.keep_current_window = keep_current_window
        self.timing: dict[str, RequestStats] = {}
        self.counters: dict[tuple[str, str], Counters] = {}
        self.total = Counters()
        self.started_at = time.time()
        self.reset()

    def reset(self) -> None:
        self.timing = {
            m: RequestStats(use_response_times_cache=self.keep_current_window) for m in TIMING_METRICS
        }
        self.counters = {}
        self.total = Counters()
        self.started_at = time.time()

    # ---- recording -------------------------------------------------------------------------------

    def log(self, outcome: Outcome, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key = (outcome.scenario, outcome.model)
        counters = self.counters.get(key)
        if counters is None:
            counters = self.counters[key] = Counters()
        counters.add(outcome, now)
        self.total.add(outcome, now)
        answered = outcome.error_kind in ("", BLOCKED)
        if answered:
            self._time("e2e", outcome, outcome.e2e_ms)
            self._time("ttft", outcome, outcome.ttft_ms)
        tpot = outcome.tpot_ms
        self._time("tpot", outcome, None if tpot is None else tpot * TPOT_SCALE)
        self._time("lag", outcome, outcome.schedule_lag_ms)

    def _time(self, metric: str, outcome: Outcome, value: float | None) -> None:
        if value is None or value != value or value < 0:
            return
        self.timing[metric].log_request(outcome.model, outcome.scenario, value, 0)

    # ---- distribution: worker -> master ---------------------------------------------------------

    def serialize_and_reset(self) -> dict[str, Any]:
        """What a worker sends with its report (plain msgpack types); its own stats start over."""
        payload = {
            "timing": {
                metric: {"entries": stats.serialize_stats(), "total": stats.total.get_stripped_report()}
                for metric, stats in self.timing.items()
            },
            "counters": [
                {"scenario": scenario, "model": model, **counters.serialize()}
                for (scenario, model), counters in self.counters.items()
            ],
            "total": self.total.serialize(),
        }
        self.counters = {}
        self.total = Counters()
        return payload

    def merge(self, payload: dict[str, Any]) -> None:
        for metric, part in payload.get("timing", {}).items():
            stats = self.timing.get(metric)
            if stats is None:
                continue  # a metric this version does not know: skip rather than fail the run
            for data in part.get("entries", []):
                entry = StatsEntry.unserialize(data, stats)
                stats.get(entry.name, entry.method).extend(entry)
            if part.get("total"):
                stats.total.extend(StatsEntry.unserialize(part["total"], stats))
        for item in payload.get("counters", []):
            key = (str(item["scenario"]), str(item["model"]))
            self.counters.setdefault(key, Counters()).extend(item)
        self.total.extend(payload.get("total", {}))

    def prune(self, now: float) -> None:
        before = int(now) - PER_SECOND_KEEP_S
        self.total.prune(before)
        for counters in self.counters.values():
            counters.prune(before)

    # ---- reading ----------------------------------------------------------------------------------

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self.counters, key=lambda key: (key[1], key[0]))

    def timing_entry(self, metric: str, key: tuple[str, str] | None) -> StatsEntry:
        stats = self.timing[metric]
        if key is None:
            return stats.total
        return stats.entries.get(key) or StatsEntry(stats, key[0], key[1])

    def duration_s(self) -> float:
        last = self.total.last_ts
        return max(0.0, last - self.started_at) if last is not None else 0.0

    def row(self, key: tuple[str, str] | None) -> dict[str, Any]:
        """One row of llm_stats.csv; key None is the Aggregated row."""
        counters = self.total if key is None else self.counters.get(key, Counters())
        counts = counters.counts
        requests = counts["requests"]
        scenario, model = (AGGREGATED, "") if key is None else key
        row: dict[str, Any] = {"model": model, "scenario": scenario}
        row.update(
            {
                name: counts.get(name, 0)
                for name in ("requests", "failures", "blocked", "cancelled", "attempts")
            }
        )
        row.update({name: counts.get(name, 0) for name in FAILURE_KIND_NAMES})
        row["failure_pct"] = _pct(counts["failures"], requests)
        row["blocked_pct"] = _pct(counts["blocked"], requests)
        for metric, percentiles, extremes in (
            ("e2e", (50, 90, 95, 99), True),
            ("ttft", (50, 90, 95, 99), True),
            ("tpot", (50, 95, 99), False),
            ("lag", (50, 95), False),
        ):
            entry = self.timing_entry(metric, key)
            scale = TPOT_SCALE if metric == "tpot" else 1.0
            has = entry.num_requests > 0
            if metric != "lag":
                row[f"{metric}_avg_ms"] = _ms(entry_average(entry), scale)
            for pct in percentiles:
                row[f"{metric}_p{pct}_ms"] = _ms(bucket_percentile(entry, pct), scale)
            if extremes:
                row[f"{metric}_min_ms"] = _ms(entry.min_response_time if has else None, scale)
            if extremes or metric == "lag":
                row[f"{metric}_max_ms"] = _ms(entry.max_response_time if has else None, scale)
        row.pop("ttft_min_ms", None)
        for name in ("prompt_tokens", "output_tokens", "thoughts_tokens", "cached_tokens"):
            row[name] = counts[name]
        duration = self.duration_s()
        row["output_tokens_per_s"] = round(counts["output_tokens"] / duration, 3) if duration > 0 else None
        row["requests_per_s"] = round(requests / duration, 3) if duration > 0 else None
        row["cost_usd"] = round(counters.cost_usd, 9)
        row["cost_per_1k_usd"] = round(1000.0 * counters.cost_usd / requests, 9) if requests else None
        return row

    def rows(self) -> list[dict[str, Any]]:
        """Every (scenario, model) row, then the Aggregated row, in LLM_STATS_COLUMNS order."""
        rows = [self.row(key) for key in self.keys()]
        rows.append(self.row(None))
        return [{column: row.get(column) for column in LLM_STATS_COLUMNS} for row in rows]

    def history_rows(self, now: float, user_count: int) -> list[dict[str, Any]]:
        rows = []
        keys: Iterable[tuple[str, str] | None] = [*self.keys(), None]
        for key in keys:
            counters = self.total if key is None else self.counters[key]
            rps, fail_ps, tokens_ps = counters.current_rates(now, self.started_at)
            scenario, model = (AGGREGATED, "") if key is None else key
            row: dict[str, Any] = {
                "timestamp": int(now),
                "user_count": user_count,
                "model": model,
                "scenario": scenario,
                "requests": counters.counts["requests"],
                "failures": counters.counts["failures"],
                "blocked": counters.counts["blocked"],
                "current_rps": round(rps, 3),
                "current_fail_per_s": round(fail_ps, 3),
                "current_output_tokens_per_s": round(tokens_ps, 3),
                "output_tokens": counters.counts["output_tokens"],
                "cost_usd": round(counters.cost_usd, 9),
            }
            for metric, pct in (("e2e", 50), ("e2e", 95), ("ttft", 50), ("ttft", 95), ("tpot", 50)):
                row[f"{metric}_p{pct}_ms"] = self._current_percentile(metric, key, pct)
            rows.append(row)
        return rows

    def current_percentile(self, metric: str, pct: int, key: tuple[str, str] | None = None) -> float | None:
        """ms over about the last 10 s (Locust's "current" window): what the live charts draw."""
        return self._current_percentile(metric, key, pct)

    def _current_percentile(self, metric: str, key: tuple[str, str] | None, pct: int) -> float | None:
        entry = self.timing_entry(metric, key)
        if entry.num_requests == 0 or not entry.use_response_times_cache:
            return None
        value = entry.get_current_response_time_percentile(pct / 100.0)
        return _ms(value, TPOT_SCALE if metric == "tpot" else 1.0) if value else None


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _ms(value: float | None, scale: float = 1.0) -> float | None:
    return None if value is None else round(float(value) / scale, 2)
