"""Closed-model schedules as pure functions of elapsed seconds."""

from __future__ import annotations

import pytest

from core.options import OptionError
from shapes import schedules


def users_over(schedule: schedules.Schedule, times: list[float]) -> list[int | None]:
    return [plan.users if (plan := schedule.at(t)) else None for t in times]


def stage_over(schedule: schedules.Schedule, times: list[float]) -> list[str | None]:
    return [plan.stage if (plan := schedule.at(t)) else None for t in times]


class TestRamp:
    def test_linear_up_hold_linear_down_then_stop(self) -> None:
        ramp = schedules.ramp(peak_users=10, ramp_up_s=10, hold_s=5, ramp_down_s=10)
        assert users_over(ramp, [0, 1, 5, 9.9, 10, 14.9, 15, 20, 24.9, 25, 30]) == [
            0, 1, 5, 10, 10, 10, 10, 5, 0, None, None,
        ]  # fmt: skip
        assert stage_over(ramp, [0, 9.99, 10, 14.99, 15, 24.99]) == [
            "ramp-up", "ramp-up", "hold", "hold", "ramp-down", "ramp-down",
        ]  # fmt: skip
        assert ramp.total_s == 25
        assert ramp.boundaries() == [("ramp-up", 0, 10), ("hold", 10, 15), ("ramp-down", 15, 25)]

    def test_spawn_rate_keeps_up_with_the_slope(self) -> None:
        ramp = schedules.ramp(peak_users=100, ramp_up_s=10, hold_s=10, ramp_down_s=4)
        assert ramp.at(1).spawn_rate == 10  # 100 users over 10 s
        assert ramp.at(12).spawn_rate == 1  # holding: nothing to spawn
        assert ramp.at(21).spawn_rate == 25  # 100 users off over 4 s

    def test_slow_ramp_still_spawns_at_least_one_user_per_second(self) -> None:
        ramp = schedules.ramp(peak_users=3, ramp_up_s=60, hold_s=0, ramp_down_s=0)
        assert ramp.at(30).spawn_rate == 1
        assert ramp.at(30).users == 2  # 1.5 rounds half up

    def test_zero_hold_and_zero_ramp_down_are_skipped(self) -> None:
        ramp = schedules.ramp(peak_users=4, ramp_up_s=4, hold_s=0, ramp_down_s=0)
        assert [name for name, _, _ in ramp.boundaries()] == ["ramp-up"]
        assert ramp.at(3.99).users == 4
        assert ramp.at(4) is None

    def test_instant_ramp_up_jumps_to_peak(self) -> None:
        ramp = schedules.ramp(peak_users=8, ramp_up_s=0, hold_s=5, ramp_down_s=0)
        plan = ramp.at(0)
        assert (plan.stage, plan.users, plan.spawn_rate) == ("hold", 8, 8)

    def test_all_zero_durations_is_an_error(self) -> None:
        with pytest.raises(OptionError, match="schedule is empty"):
            schedules.ramp(peak_users=5, ramp_up_s=0, hold_s=0, ramp_down_s=0)

    def test_negative_time_is_the_start(self) -> None:
        ramp = schedules.ramp(peak_users=10, ramp_up_s=10, hold_s=0, ramp_down_s=0)
        assert ramp.at(-1).users == 0


class TestStep:
    def test_plateaus_then_stop(self) -> None:
        step = schedules.step(step_users=5, step_duration_s=10, steps=3)
        assert users_over(step, [0, 9.9, 10, 19.9, 20, 29.9, 30]) == [5, 5, 10, 10, 15, 15, None]
        assert stage_over(step, [0, 10, 20]) == ["step-1", "step-2", "step-3"]
        assert step.at(15).spawn_rate == 5  # each step is a sudden jump of step_users
        assert step.at(15).stage_start_s == 10 and step.at(15).stage_end_s == 20

    def test_single_step(self) -> None:
        step = schedules.step(step_users=7, step_duration_s=2, steps=1)
        assert users_over(step, [0, 1.99, 2]) == [7, 7, None]


class TestSpike:
    def test_baseline_spike_recovery(self) -> None:
        spike = schedules.spike(
            base_users=10, spike_users=40, spike_at_s=60, spike_duration_s=30, recovery_s=120
        )
        assert users_over(spike, [0, 59.9, 60, 89.9, 90, 209.9, 210]) == [10, 10, 50, 50, 10, 10, None]
        assert stage_over(spike, [0, 60, 90]) == ["baseline", "spike", "recovery"]
        # sudden: the whole jump in one spawn step, both ways
        assert spike.at(60).spawn_rate == 40
        assert spike.at(90).spawn_rate == 40
        assert spike.boundaries() == [("baseline", 0, 60), ("spike", 60, 90), ("recovery", 90, 210)]

    def test_spike_at_zero_starts_with_the_spike(self) -> None:
        spike = schedules.spike(base_users=2, spike_users=3, spike_at_s=0, spike_duration_s=5, recovery_s=5)
        assert spike.at(0).stage == "spike" and spike.at(0).users == 5

    def test_zero_baseline_is_allowed(self) -> None:
        spike = schedules.spike(base_users=0, spike_users=3, spike_at_s=1, spike_duration_s=1, recovery_s=1)
        assert users_over(spike, [0, 1, 2, 3]) == [0, 3, 0, None]

    def test_stage_classes_reach_the_plan(self) -> None:
        spike = schedules.spike(1, 2, 1, 1, 1, classes={"spike": ("StreamingUser",)})
        assert spike.uses_classes
        assert spike.at(1.5).classes == ("StreamingUser",)
        assert spike.at(0).classes is None and spike.at(2.5).classes is None


class TestSoak:
    def test_warm_up_then_hold_until_run_time(self) -> None:
        soak = schedules.soak(soak_users=20, warm_up_s=10, run_time_s=100)
        assert users_over(soak, [0, 5, 10, 99.9, 100]) == [0, 10, 20, 20, None]
        assert stage_over(soak, [0, 10]) == ["warm-up", "soak"]

    def test_no_warm_up_starts_at_full_load(self) -> None:
        soak = schedules.soak(soak_users=6, warm_up_s=0, run_time_s=10)
        assert (soak.at(0).stage, soak.at(0).users, soak.at(0).spawn_rate) == ("soak", 6, 6)

    def test_warm_up_longer_than_run_time_is_an_error(self) -> None:
        with pytest.raises(OptionError, match=r"--warm-up .* --run-time"):
            schedules.soak(soak_users=6, warm_up_s=60, run_time_s=60)


def test_plan_is_a_pure_function_of_time() -> None:
    ramp = schedules.ramp(peak_users=10, ramp_up_s=10, hold_s=5, ramp_down_s=10)
    forward = [ramp.at(t / 4) for t in range(0, 120)]
    backward = [ramp.at(t / 4) for t in reversed(range(0, 120))]
    assert forward == list(reversed(backward))
