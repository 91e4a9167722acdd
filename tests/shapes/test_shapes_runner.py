"""Shapes driven by Locust's real LocalRunner, in-process, on a manual clock.

Locust spawns and stops the users and calls tick() about once a second; ScriptedTicks (conftest.py)
sets the manual clock to a scripted run time before each tick, once the previous tick's users run.
The users' calls take simulated time on the same clock, so arrivals, latencies, lags and stage times
are exact, and each test lasts about one real second per tick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.runners import STATE_STOPPED

import shapes
from shapes.clock import ManualClock
from shapes.runtime import runtime_for, use_clock
from tests.shapes.waiting import ScriptedTicks

pytestmark = pytest.mark.timeout(150)  # a bound for a hung run, far above a slow one


class SimulatedUser(User):
    """A call takes `environment.latency(environment)` seconds of the manual clock; waits on the pacer
    in open-model runs."""

    abstract = True
    wait_time = constant(0)

    @task
    def call(self) -> None:
        environment = self.environment
        clock = runtime_for(environment).clock
        pacer = shapes.get_pacer(environment)
        lag_ms = None
        if pacer is not None:
            _, lag_ms = pacer.wait_for_slot()
            environment.lags.append(lag_ms)  # at the start: a call may outlast the run
        stage = shapes.current_stage(environment)
        started = clock.now()
        clock.sleep(environment.latency(environment))  # why: the simulated service time (manual clock)
        e2e_ms = (clock.now() - started) * 1000.0
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


class TextUser(SimulatedUser):
    weight = 1


class StreamingUser(SimulatedUser):
    weight = 1


def make_env(
    options_factory,
    user_classes: list[type[User]],
    latency: Callable[[Any], float] = lambda environment: 0.05,
    **values: Any,
) -> Environment:
    environment = Environment(user_classes=user_classes, parsed_options=options_factory(**values))
    environment.outcomes = []
    environment.lags = []
    environment.latency = latency
    environment.clock = ManualClock()
    environment.create_local_runner()
    use_clock(environment, environment.clock)
    shapes.setup(environment)
    assert environment.shape_class is not None
    return environment


def run_to_end(environment: Environment, offsets: Sequence[float]) -> ScriptedTicks:
    """Start the shape and tick it at the run times `offsets`; returns once the shape ended the run."""
    ticks = ScriptedTicks(environment, environment.clock, offsets)
    environment.runner.start_shape()
    ticks.wait_for_end(lambda: environment.runner.state == STATE_STOPPED)
    assert ticks.ticks[-1].result is None and all(t.result is not None for t in ticks.ticks[:-1])
    return ticks


def test_ramp_follows_its_schedule_and_ends_the_run(options_factory) -> None:
    env = make_env(
        options_factory, [TextUser], shape="ramp", peak_users="4", ramp_up="2s", hold="1s", ramp_down="2s"
    )
    ticks = run_to_end(env, offsets=[1.0, 2.5, 4.0, 5.0]).ticks
    assert [t.result[0] for t in ticks[:-1]] == [2, 4, 2]  # up, hold at the peak, down
    assert [t.users for t in ticks] == [0, 2, 4, 2]  # Locust ran what the shape asked for
    assert [t.stage for t in ticks] == ["ramp-up", "hold", "ramp-down", ""]
    assert env.runner.user_count == 0  # ended by itself at 5 s: no tick at 6 s was needed
    log = shapes.stage_log(env)
    start = env.shape_class.start_epoch
    assert [(s["name"], s["start"] - start, s["end"] - start) for s in log] == [
        ("ramp-up", 0.0, 2.0), ("hold", 2.0, 3.0), ("ramp-down", 3.0, 5.0),
    ]  # fmt: skip
    # users tagged their calls with the stage running at the time
    assert {o["stage"] for o in env.outcomes} == {"ramp-up", "hold", "ramp-down"}
    assert shapes.current_stage(env) == "" and shapes.capacity_result(env) is None
    assert shapes.shape_info(env)["name"] == "ramp"


def test_spike_adds_only_streaming_users_on_a_mixed_baseline(options_factory) -> None:
    env = make_env(
        options_factory,
        [TextUser, StreamingUser],
        shape="spike", base_users="2", spike_users="3", spike_at="1s", spike_duration="2s", recovery="2s",
        stage_classes="spike=StreamingUser",
    )  # fmt: skip
    ticks = run_to_end(env, offsets=[0.5, 2.0, 4.0, 5.0]).ticks
    assert [t.stage for t in ticks] == ["baseline", "spike", "recovery", ""]
    # the classes running after each stage's spawning: the spike added only streaming users on top of
    # the mixed baseline, and the recovery removed exactly those
    assert [t.classes for t in ticks[1:]] == [
        {"TextUser": 1, "StreamingUser": 1},
        {"TextUser": 1, "StreamingUser": 4},
        {"TextUser": 1, "StreamingUser": 1},
    ]
    assert [s["name"] for s in shapes.stage_log(env)] == ["baseline", "spike", "recovery"]


def test_arrival_holds_the_rate_and_ends_at_run_time(options_factory) -> None:
    env = make_env(options_factory, [TextUser], shape="arrival", rate="30", max_users="50", run_time=3)
    ticks = run_to_end(env, offsets=[0, 1.5, 3.0]).ticks
    assert ticks[0].result[0] == 31  # rate + 1 users to start with
    assert all(o["schedule_lag_ms"] is not None for o in env.outcomes)  # every call waited for its arrival
    # 3 s of Poisson arrivals at 30/s: 90 expected; by chance outside these bounds < 1 in 100,000 runs
    assert 48 <= len(env.outcomes) <= 140
    assert max(o["schedule_lag_ms"] for o in env.outcomes) == 0.0  # enough free users: all on time
    (stage,) = shapes.stage_log(env)
    assert stage["name"] == "arrival" and stage["end"] - stage["start"] == pytest.approx(3.0)
    assert shapes.get_pacer(env) is None  # pacing ends with the run


def test_arrival_adds_users_when_all_are_busy_up_to_max_users(options_factory) -> None:
    # 4 s calls: the 21 users of the start take the first 21 arrivals and none is free again before
    # 4 s, so at the tick at 3 s ~39 of the ~60 arrivals wait: the pool grows, capped at 28.
    env = make_env(
        options_factory,
        [TextUser],
        latency=lambda environment: 4.0,
        shape="arrival", rate="20", max_users="28", run_time=6,
    )  # fmt: skip
    ticks = run_to_end(env, offsets=[0, 3.0, 6.0]).ticks
    asked = [t.result[0] for t in ticks[:-1]]
    assert asked[0] == 21 and asked[-1] == 28  # started at rate + 1, grew, capped
    assert asked == sorted(asked)  # the pool never shrinks
    assert ticks[-1].users == 28
    # the users added at 3 s took arrivals planned over a second before: the generator fell behind,
    # and says so (their calls outlast the run: the lags are those of the calls' starts)
    assert max(env.lags) > 1000.0


def test_capacity_steps_up_until_the_slo_breaks(options_factory) -> None:
    def latency(environment: Any) -> float:  # a server that falls over above 20 calls/s
        pacer = shapes.get_pacer(environment)
        return 0.3 if pacer is not None and pacer.rate > 20 else 0.02

    env = make_env(
        options_factory,
        [TextUser],
        latency=latency,
        shape="capacity", start_rate="10", rate_step="10", step_duration="2s", max_users="60",
        slo="e2e_p95<=150ms,error_rate<=1%",
    )  # fmt: skip
    # ticks at the starts of steps 10, 20 and 30/s (the rate holds until the next tick); step 30/s
    # ends at 6 s and is judged after 1 s of settling plus its p99 latency (7.3 s), so the tick at
    # 8 s judges the three steps and ends the search
    ticks = run_to_end(env, offsets=[0, 2.0, 4.0, 8.0]).ticks
    assert [t.stage for t in ticks[:-1]] == ["rate-10", "rate-20", "rate-30"]
    result = shapes.capacity_result(env)
    assert result["capacity_rps"] == 20.0 and result["stop_reason"] == "slo_breached"
    assert [(s["rate"], s["passed"]) for s in result["steps"]] == [(10.0, True), (20.0, True), (30.0, False)]
    failing = result["steps"][2]
    assert failing["gates"][0]["value"] == pytest.approx(300.0) and failing["gates"][1]["passed"] is True
    first = result["steps"][0]
    # step 1 was judged on exactly the calls that started in it
    in_first = [o for o in env.outcomes if first["start"] <= o["start_time"] < first["end"]]
    assert first["requests"] == len(in_first) > 0
    assert first["achieved_rps"] == pytest.approx(len(in_first) / 2.0, abs=0.001)
    assert [s["name"] for s in shapes.stage_log(env)] == ["rate-10", "rate-20", "rate-30"]


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
    run_to_end(env, offsets=[0.5, 2.0])
    first = shapes.stage_log(env)
    assert [s["name"] for s in first] == ["step-1"]
    run_to_end(env, offsets=[0.5, 1.5, 2.0])
    second = shapes.stage_log(env)
    assert [s["name"] for s in second] == ["step-1", "step-2"]
    assert second[0]["start"] == pytest.approx(first[-1]["end"])  # the second run started at the first's end
    assert second[-1]["end"] - second[0]["start"] == pytest.approx(2.0)
