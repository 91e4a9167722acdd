"""User-pool sizing and the capacity search, driven by fake windows: no clock, no runner."""

from __future__ import annotations

import pytest

from core.slo import WindowStats, parse_slo
from shapes.open_model import CapacitySearch, UserSizer, initial_users


class TestUserSizer:
    def test_starts_with_about_one_second_of_calls(self) -> None:
        assert initial_users(5, max_users=100) == 6
        assert initial_users(0.2, max_users=100) == 2
        assert initial_users(500, max_users=50) == 50
        assert UserSizer(max_users=100).update(rate=5, user_count=0, signal=None) == 6

    def test_grows_to_the_busy_users_with_headroom(self) -> None:
        sizer = UserSizer(max_users=100)
        sizer.update(5, 0, None)
        # 20 users, on average 2 idle: 18 busy -> 18 * 1.25 + 1
        assert sizer.update(5, 20, {"waiting_avg": 2.0, "backlog": 0, "rate": 5}) == 24

    def test_scales_with_a_new_rate_by_littles_law(self) -> None:
        sizer = UserSizer(max_users=100)
        # 8 busy at 10/s; the rate doubles: 16 busy expected, plus headroom
        assert sizer.update(20, 10, {"waiting_avg": 2.0, "backlog": 0, "rate": 10}) == 21

    def test_backlog_means_saturated_grow_by_half(self) -> None:
        sizer = UserSizer(max_users=1000)
        sizer.update(1, 0, None)
        assert sizer.update(1, 40, {"waiting_avg": 0.0, "backlog": 12, "rate": 1}) == 61

    def test_never_shrinks_and_never_passes_max_users(self) -> None:
        sizer = UserSizer(max_users=30)
        assert sizer.update(10, 0, {"waiting_avg": 0.0, "backlog": 5, "rate": 10}) == 11
        assert sizer.update(10, 25, {"waiting_avg": 0.0, "backlog": 5, "rate": 10}) == 30
        assert sizer.update(10, 30, {"waiting_avg": 29.0, "backlog": 0, "rate": 10}) == 30


def fake_windows(latency_by_rate: dict[float, float], step_s: float, start: float, step: float, lag_ms=None):
    """A window whose calls took latency_by_rate[rate of that step]; records the windows asked for."""
    asked: list[tuple[float, float]] = []

    def window(t0: float, t1: float) -> WindowStats:
        asked.append((t0, t1))
        rate = start + (t0 // step_s) * step
        stats = WindowStats(duration_s=t1 - t0)
        for _ in range(int(rate * (t1 - t0))):
            stats.add(e2e_ms=latency_by_rate.get(rate, 0.0), lag_ms=(lag_ms or {}).get(rate, 1.0))
        if latency_by_rate.get(rate) is None:
            stats = WindowStats(duration_s=t1 - t0)
        return stats

    return window, asked


def run_search(search: CapacitySearch, window, until: float, dt: float = 0.5) -> list[float | None]:
    rates = []
    t = 0.0
    while t <= until and not search.done:
        search.update(t, window)
        rates.append(search.rate_at(t))
        t += dt
    return rates


class TestCapacitySearch:
    def make(self, **kwargs) -> CapacitySearch:
        args = {
            "start_rate": 2.0,
            "rate_step": 2.0,
            "step_duration_s": 10.0,
            "gates": parse_slo("e2e_p95<=1s"),
        }
        return CapacitySearch(**{**args, **kwargs})

    def test_steps_up_until_the_slo_breaks_and_keeps_the_last_good_rate(self) -> None:
        search = self.make()
        window, asked = fake_windows({2: 100, 4: 200, 6: 900, 8: 2000, 10: 3000}, 10, 2, 2)
        rates = run_search(search, window, until=100)
        assert search.done and search.stop_reason == "slo_breached"
        assert search.capacity_rps == 6.0
        assert [(s.rate, s.passed) for s in search.steps] == [(2, True), (4, True), (6, True), (8, False)]
        assert search.steps[3].gates[0]["value"] == 2000.0 and search.steps[3].gates[0]["passed"] is False
        # the rate followed the steps, then the search ended with the failing step's judgement
        assert rates[0] == 2 and rates[20] == 4 and rates[-1] is None
        # each step was judged on its own window, not a cumulative one
        assert set(asked) == {(0, 10), (10, 20), (20, 30), (30, 40)}
        # step 8/s ended at 40 s and was judged after settle (1 s) + its p99 latency (2 s)
        assert len(rates) * 0.5 == pytest.approx(43.5)

    def test_first_step_failing_means_no_capacity(self) -> None:
        search = self.make()
        window, _ = fake_windows({2: 5000}, 10, 2, 2)
        run_search(search, window, until=30)
        assert search.capacity_rps is None and search.stop_reason == "slo_breached"
        assert search.result()["steps"][0]["passed"] is False

    def test_a_step_without_calls_stops_the_search(self) -> None:
        search = self.make()
        window, _ = fake_windows({2: 100}, 10, 2, 2)  # no calls at 4/s
        run_search(search, window, until=40)
        assert search.stop_reason == "no_requests" and search.capacity_rps == 2.0

    def test_a_lagging_generator_ends_the_search_without_blaming_the_server(self) -> None:
        search = self.make(lag_limit_ms=500)
        window, _ = fake_windows({2: 100, 4: 100, 6: 100}, 10, 2, 2, lag_ms={6: 800.0})
        run_search(search, window, until=60)
        assert search.stop_reason == "generator_limited" and search.capacity_rps == 4.0
        assert search.steps[-1].generator_limited and search.steps[-1].gates[0]["passed"] is True

    def test_run_time_ends_the_search_and_judges_the_step_just_finished(self) -> None:
        search = self.make(run_time_s=30)
        window, _ = fake_windows({2: 100, 4: 100, 6: 100, 8: 100}, 10, 2, 2)
        run_search(search, window, until=60)
        assert search.stop_reason == "run_time"
        assert [s.rate for s in search.steps] == [2, 4, 6] and search.capacity_rps == 6.0

    def test_max_steps_bounds_a_search_that_never_fails(self) -> None:
        search = self.make(max_steps=3)
        window, _ = fake_windows({r: 10.0 for r in range(2, 100, 2)}, 10, 2, 2)
        run_search(search, window, until=100)
        assert search.stop_reason == "max_steps" and search.capacity_rps == 6.0

    def test_a_hung_server_delays_the_judgement_by_one_step_at_most(self) -> None:
        search = self.make(step_duration_s=2.0, settle_s=1.0)
        window, _ = fake_windows({2: 60_000, 4: 60_000}, 2, 2, 2)  # a minute per call
        search.update(2.0, window)
        assert not search.steps
        search.update(4.99, window)
        assert not search.steps
        search.update(5.0, window)  # step end (2) + settle (1) + latency capped at one step (2)
        assert len(search.steps) == 1 and search.done

    def test_result_lists_every_judged_step(self) -> None:
        search = self.make()
        window, _ = fake_windows({2: 100, 4: 2000}, 10, 2, 2)
        run_search(search, window, until=40)
        result = search.result()
        assert result["capacity_rps"] == 2.0 and result["stop_reason"] == "slo_breached"
        assert result["slo"] == ["e2e_p95<=1s"]
        first = result["steps"][0]
        assert first["rate"] == 2 and first["achieved_rps"] == pytest.approx(2.0) and first["requests"] == 20
        assert first["lag_p95_ms"] == 1.0
