"""The clock the shapes read (shapes/clock.py), and the shapes' timing on a manual clock without a runner."""

from __future__ import annotations

import time

import gevent
import locust  # noqa: F401  (monkey-patches like a real run)
import pytest
from gevent.event import Event
from locust import User, constant, task
from locust.env import Environment

import shapes
from shapes.clock import REAL_CLOCK, ManualClock
from shapes.runtime import use_clock


class TestManualClock:
    def test_sleepers_wake_in_order_each_at_its_own_deadline(self) -> None:
        clock = ManualClock(start=100.0)
        woke: list[tuple[str, float]] = []

        def sleeper(name: str, seconds: float) -> None:
            clock.sleep(seconds)  # why: the manual clock's sleep is under test
            woke.append((name, clock.now()))

        greenlets = [gevent.spawn(sleeper, "late", 0.3), gevent.spawn(sleeper, "early", 0.1)]
        clock.advance(0.2)
        assert woke == [("early", 100.1)] and clock.now() == pytest.approx(100.2)
        clock.advance(0.2)
        assert woke == [("early", 100.1), ("late", 100.3)] and clock.now() == pytest.approx(100.4)
        assert all(g.dead for g in greenlets)

    def test_wait_returns_true_when_set_and_false_at_its_timeout(self) -> None:
        clock = ManualClock(start=0.0)
        event = Event()
        results: list[tuple[bool, float]] = []

        def waiter(timeout: float) -> None:
            results.append((clock.wait(event, timeout), clock.now()))

        gevent.spawn(waiter, 1.0)
        clock.advance(0.5)
        event.set()
        clock.advance(0)
        assert results == [(True, 0.5)]  # woken by the event, before its timeout
        event.clear()
        gevent.spawn(waiter, 1.0)
        clock.advance(2.0)
        assert results[1] == (False, 1.5)  # timed out at 0.5 + 1.0, not at the end of the advance

    def test_a_chain_of_wakeups_runs_to_its_end_within_one_advance(self) -> None:
        clock = ManualClock(start=0.0)
        handed: list[float] = []
        relay = Event()

        def first() -> None:
            clock.sleep(0.1)  # why: the manual clock's sleep is under test
            relay.set()

        def second() -> None:
            relay.wait()
            clock.sleep(0.1)  # why: the manual clock's sleep is under test
            handed.append(clock.now())

        gevent.spawn(first)
        gevent.spawn(second)
        clock.advance(1.0)
        assert handed == [pytest.approx(0.2)]

    def test_time_does_not_go_back(self) -> None:
        with pytest.raises(ValueError):
            ManualClock().advance(-1.0)


def test_the_real_clock_reads_wall_time_and_does_not_wait_for_a_set_event() -> None:
    before = time.time()
    now = REAL_CLOCK.now()
    assert before <= now <= time.time()
    assert REAL_CLOCK.monotonic() <= REAL_CLOCK.monotonic()
    event = Event()
    event.set()
    assert REAL_CLOCK.wait(event, 60.0) is True  # returns at once: the test would time out otherwise
    assert REAL_CLOCK.wait(Event(), 0) is False


class QuietUser(User):
    wait_time = constant(1)

    @task
    def nothing(self) -> None:
        pass  # never runs: these environments have no runner


def shaped_env(options_factory, **values) -> tuple[Environment, ManualClock]:
    environment = Environment(user_classes=[QuietUser], parsed_options=options_factory(**values))
    clock = ManualClock(start=1_000.0)
    use_clock(environment, clock)
    assert shapes.setup(environment) is not None
    return environment, clock


def test_stage_times_come_from_the_environments_clock(options_factory) -> None:
    env, clock = shaped_env(options_factory, shape="ramp", peak_users="10", ramp_up="10s", hold="5s")
    shape = env.shape_class
    clock.advance(50.0)  # time before the run starts does not count
    shape.reset_time()
    assert shape.start_epoch == 1_050.0 and shape.get_run_time() == 0.0
    assert shape.tick()[0] == 0
    clock.advance(12.5)
    assert shape.get_run_time() == 12.5
    assert shape.tick()[0] == 10 and shapes.current_stage(env) == "hold"
    assert shapes.stage_log(env) == [
        {"name": "ramp-up", "start": 1_050.0, "end": 1_060.0},
        {"name": "hold", "start": 1_060.0, "end": None},
    ]
    clock.advance(1.0)
    env.events.test_stop.fire(environment=env)  # stopped by hand at 13.5 s: the open stage ends then
    assert shapes.stage_log(env)[-1] == {"name": "hold", "start": 1_060.0, "end": 1_063.5}
    assert shapes.current_stage(env) == ""


def test_a_shape_ends_its_log_at_the_planned_end_not_at_the_late_tick(options_factory) -> None:
    env, clock = shaped_env(options_factory, shape="step", step_users="1", step_duration="2s", steps="2")
    env.shape_class.reset_time()
    env.shape_class.tick()
    clock.advance(7.0)  # a tick three seconds late
    assert env.shape_class.tick() is None
    assert shapes.stage_log(env) == [{"name": "step-1", "start": 1_000.0, "end": 1_004.0}]


def fire(env: Environment, start_time: float | None, e2e_ms: float, tpot_ms: float | None = None) -> None:
    outcome = {"start_time": start_time, "e2e_ms": e2e_ms, "error_kind": "", "tpot_ms": tpot_ms}
    env.events.request.fire(
        request_type="model", name="call", response_time=e2e_ms, response_length=0,
        exception=None, context={"outcome": outcome} if start_time else {}, start_time=start_time,
    )  # fmt: skip


def capacity_env(options_factory, slo: str) -> tuple[Environment, ManualClock]:
    """A capacity search of 2 s steps from 10 req/s up by 10, on a manual clock, started."""
    env, clock = shaped_env(
        options_factory,
        shape="capacity", start_rate="10", rate_step="10", step_duration="2s", max_users="50", slo=slo,
    )  # fmt: skip
    env.shape_class.reset_time()
    return env, clock


def test_capacity_steps_are_judged_on_windows_of_the_clocks_epochs(options_factory) -> None:
    env, clock = capacity_env(options_factory, "e2e_p95<=500ms")
    shape = env.shape_class
    assert shape.tick() is not None and shapes.current_stage(env) == "rate-10"
    for i in range(20):  # step 1 [1000, 1002): fast calls
        fire(env, 1_000.0 + i * 0.1, 100.0)
    fire(env, 1_002.0, 900.0)  # starts exactly at the step's end: belongs to step 2
    clock.advance(2.0)
    assert shape.tick() is not None and shapes.current_stage(env) == "rate-20"
    clock.advance(1.0)
    for _ in range(10):  # step 2: slow calls, recorded at their end without a start time
        clock.advance(0.1)
        fire(env, None, 900.0)  # dated by the clock: now less 0.9 s, from 1002.2 to 1003.1
    # 4 s: step 1 judged (end 2 s + settle 1 s + p99 0.1 s), on its own window of epochs
    assert shape.tick() is not None
    result = shapes.capacity_result(env)
    assert [(s["rate"], s["requests"], s["passed"]) for s in result["steps"]] == [(10.0, 20, True)]
    assert (result["steps"][0]["start"], result["steps"][0]["end"]) == (1_000.0, 1_002.0)
    clock.advance(1.5)  # 5.5 s: step 2 (end 4 s + 1 s + p99 0.9 s) not yet
    assert shape.tick() is not None and len(shapes.capacity_result(env)["steps"]) == 1
    clock.advance(0.5)  # 6 s: judged
    assert shape.tick() is None
    result = shapes.capacity_result(env)
    assert result["capacity_rps"] == 10.0 and result["stop_reason"] == "slo_breached"
    assert [(s["rate"], s["requests"], s["passed"]) for s in result["steps"]] == [
        (10.0, 20, True), (20.0, 11, False),
    ]  # fmt: skip
    assert shapes.get_pacer(env) is None


def test_capacity_steps_are_judged_on_their_time_per_output_token(options_factory) -> None:
    env, clock = capacity_env(options_factory, "tpot_p95<=50ms")
    shape = env.shape_class
    assert shape.tick() is not None
    for i in range(20):  # step 1: 20 ms per output token
        fire(env, 1_000.0 + i * 0.1, 300.0, tpot_ms=20.0)
    clock.advance(2.0)
    assert shape.tick() is not None
    for i in range(20):  # step 2: 80 ms per output token
        fire(env, 1_002.0 + i * 0.1, 300.0, tpot_ms=80.0)
    clock.advance(4.0)
    shape.tick()
    clock.advance(4.0)
    assert shape.tick() is None
    result = shapes.capacity_result(env)
    values = [s["gates"][0]["value"] for s in result["steps"]]
    assert values == [20.0, 80.0], result["steps"]
    assert [s["passed"] for s in result["steps"]] == [True, False]
    assert result["capacity_rps"] == 10.0 and result["stop_reason"] == "slo_breached"
