"""Shapes driven by Locust's real LocalRunner, in-process, with users whose task just sleeps.

Locust ticks a shape once a second, so these runs last a few seconds each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.runners import STATE_STOPPED

import shapes

pytestmark = pytest.mark.timeout(60)


class SleepyUser(User):
    """Sleeps `latency(environment)` seconds a call; waits on the pacer in open-model runs."""

    abstract = True
    wait_time = constant(0.05)
    latency: Callable[[Any], float] = staticmethod(lambda environment: 0.05)

    @task
    def call(self) -> None:
        environment = self.environment
        pacer = shapes.get_pacer(environment)
        lag_ms = None
        if pacer is not None:
            _, lag_ms = pacer.wait_for_slot()
        stage = shapes.current_stage(environment)
        started = time.time()
        gevent.sleep(self.latency(environment))
        e2e_ms = (time.time() - started) * 1000.0
        outcome = {
            "start_time": started,
            "e2e_ms": e2e_ms,
            "error_kind": "",
            "schedule_lag_ms": lag_ms,
            "stage": stage,
        }
        environment.events.request.fire(
            request_type="model",
            name=type(self).__name__,
            response_time=e2e_ms,
            response_length=0,
            exception=None,
            context={"outcome": outcome},
            start_time=started,
        )
        environment.outcomes.append(outcome)


class TextUser(SleepyUser):
    weight = 1


class StreamingUser(SleepyUser):
    weight = 1


def make_env(options_factory, user_classes: list[type[User]], **values: Any) -> Environment:
    environment = Environment(user_classes=user_classes, parsed_options=options_factory(**values))
    environment.outcomes = []
    environment.create_local_runner()
    shapes.setup(environment)
    assert environment.shape_class is not None
    return environment


def run_to_end(environment: Environment, timeout_s: float) -> list[dict[str, Any]]:
    """Start the shape; sample user counts every 0.2 s until the shape ends the run by itself."""
    runner = environment.runner
    runner.start_shape()
    started = time.monotonic()
    samples = []
    while time.monotonic() - started < timeout_s:
        gevent.sleep(0.2)
        samples.append(
            {
                "t": time.monotonic() - started,
                "users": runner.user_count,
                "classes": dict(runner.user_classes_count),
                "stage": shapes.current_stage(environment),
            }
        )
        if runner.state == STATE_STOPPED:
            return samples
    runner.quit()
    raise AssertionError(f"the shape did not end the run within {timeout_s} s")


def test_ramp_follows_its_schedule_and_ends_the_run(options_factory) -> None:
    env = make_env(
        options_factory, [TextUser], shape="ramp", peak_users="4", ramp_up="2s", hold="1s", ramp_down="2s"
    )
    samples = run_to_end(env, timeout_s=15)
    users = [s["users"] for s in samples]
    assert max(users) == 4 and users[-1] == 0
    assert samples[-1]["t"] < 8.0
    peak_at = users.index(4)
    assert all(a <= b for a, b in zip(users[:peak_at], users[1 : peak_at + 1], strict=True))  # rising, then
    assert all(a >= b for a, b in zip(users[peak_at:], users[peak_at + 1 :], strict=False))  # falling
    log = shapes.stage_log(env)
    assert [stage["name"] for stage in log] == ["ramp-up", "hold", "ramp-down"]
    assert [round(s["end"] - s["start"], 3) for s in log] == [2.0, 1.0, 2.0]  # planned boundaries
    assert all(a["end"] == b["start"] for a, b in zip(log, log[1:], strict=False))
    # users tagged their calls with the stage running at the time
    assert {"ramp-up", "hold", "ramp-down"} >= {o["stage"] for o in env.outcomes} >= {"ramp-up", "hold"}
    assert shapes.current_stage(env) == "" and shapes.capacity_result(env) is None
    assert shapes.shape_info(env)["name"] == "ramp"


def test_spike_adds_only_streaming_users_on_a_mixed_baseline(options_factory) -> None:
    env = make_env(
        options_factory,
        [TextUser, StreamingUser],
        shape="spike", base_users="2", spike_users="3", spike_at="1s", spike_duration="2s", recovery="2s",
        stage_classes="spike=StreamingUser",
    )  # fmt: skip
    samples = run_to_end(env, timeout_s=15)
    by_stage: dict[str, list[dict[str, int]]] = {}
    for sample in samples:
        by_stage.setdefault(sample["stage"], []).append(sample["classes"])
    baseline = by_stage["baseline"][-1]
    assert baseline == {"TextUser": 1, "StreamingUser": 1}
    assert {"TextUser": 1, "StreamingUser": 4} in by_stage["spike"]
    assert all(c["TextUser"] == 1 for c in by_stage["spike"])  # the mixed baseline kept running
    assert by_stage["recovery"][-1] == {"TextUser": 1, "StreamingUser": 1}  # the spike's users left
    assert [s["name"] for s in shapes.stage_log(env)] == ["baseline", "spike", "recovery"]


def test_arrival_holds_the_rate_and_ends_at_run_time(options_factory) -> None:
    env = make_env(options_factory, [TextUser], shape="arrival", rate="30", max_users="50", run_time=3)
    samples = run_to_end(env, timeout_s=15)
    assert samples[-1]["t"] < 5.5
    planned_calls = [o for o in env.outcomes if o["schedule_lag_ms"] is not None]
    assert len(planned_calls) == len(env.outcomes) and 55 <= len(env.outcomes) <= 125  # 90 expected
    lags = sorted(o["schedule_lag_ms"] for o in env.outcomes)
    assert lags[len(lags) // 2] < 50.0  # enough users: calls start on time
    (stage,) = shapes.stage_log(env)
    assert stage["name"] == "arrival" and stage["end"] - stage["start"] == pytest.approx(3.0)
    assert shapes.get_pacer(env) is None  # pacing ends with the run


def test_arrival_adds_users_when_all_are_busy_up_to_max_users(options_factory) -> None:
    env = make_env(options_factory, [TextUser], shape="arrival", rate="20", max_users="28", run_time=6)
    # 2 s calls need ~40 busy users for 20/s: with 28 allowed (14 calls/s) the backlog, and the lag
    # of calls that still finish within the run, grows by ~6 arrivals a second: far beyond noise.
    TextUser.latency = staticmethod(lambda environment: 2.0)
    try:
        samples = run_to_end(env, timeout_s=15)
    finally:
        TextUser.latency = staticmethod(lambda environment: 0.05)
    users = [s["users"] for s in samples]
    assert users[0] <= 21 and max(users) == 28  # started at rate + 1, grew, capped
    assert max(o["schedule_lag_ms"] for o in env.outcomes) > 500.0  # the generator fell behind, and says so


def test_capacity_steps_up_until_the_slo_breaks(options_factory) -> None:
    env = make_env(
        options_factory,
        [TextUser],
        shape="capacity", start_rate="10", rate_step="10", step_duration="2s", max_users="60",
        slo="e2e_p95<=150ms,error_rate<=1%",
    )  # fmt: skip

    def latency(environment: Any) -> float:  # a server that falls over above 20 calls/s
        pacer = shapes.get_pacer(environment)
        return 0.3 if pacer is not None and pacer.rate > 20 else 0.02

    TextUser.latency = staticmethod(latency)
    try:
        samples = run_to_end(env, timeout_s=20)
    finally:
        TextUser.latency = staticmethod(lambda environment: 0.05)
    result = shapes.capacity_result(env)
    assert result["capacity_rps"] == 20.0 and result["stop_reason"] == "slo_breached"
    assert [(s["rate"], s["passed"]) for s in result["steps"]] == [(10.0, True), (20.0, True), (30.0, False)]
    failing = result["steps"][2]
    assert failing["gates"][0]["value"] >= 300.0 and failing["gates"][1]["passed"] is True
    assert 10 <= result["steps"][0]["requests"] <= 35 and result["steps"][0]["achieved_rps"] > 5
    assert samples[-1]["t"] < 10.0  # stopped by itself once step 30/s was judged
    names = [s["name"] for s in shapes.stage_log(env)]
    assert names[:3] == ["rate-10", "rate-20", "rate-30"]


def test_a_new_run_starts_a_fresh_log(options_factory) -> None:
    # not headless: the shape's end stops the run without quitting, as in the web UI, so it can start again
    env = make_env(
        options_factory,
        [TextUser],
        shape="step",
        step_users="1",
        step_duration="1s",
        steps="2",
        headless=False,
    )
    run_to_end(env, timeout_s=10)
    first = shapes.stage_log(env)
    run_to_end(env, timeout_s=10)
    second = shapes.stage_log(env)
    assert [s["name"] for s in second] == ["step-1", "step-2"]
    assert second[0]["start"] > first[-1]["start"]
