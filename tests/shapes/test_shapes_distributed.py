"""A master and two workers in one process over loopback ZeroMQ, as `--processes 2` runs them.

Proves the master's shape reaches the workers: stage, each worker's share of the arrival rate, and
the capacity samples travelling back in the worker reports. All three share one manual clock: the
master's shape ticks at scripted run times (ScriptedTicks), each once the workers run its users and
their reports of the time before have reached the master, so no judgement depends on delivery speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.runners import STATE_STOPPED, STATE_STOPPING

import shapes
from shapes.clock import ManualClock
from shapes.runtime import runtime_for, use_clock
from tests.shapes.waiting import ScriptedTicks
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(150)  # a bound for a hung run, far above a slow one


class PacedUser(User):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        environment = self.environment
        clock = runtime_for(environment).clock
        pacer = shapes.get_pacer(environment)
        lag_ms = pacer.wait_for_slot()[1] if pacer is not None else None
        started = clock.now()
        # a server that slows down past 10 calls/s per worker (20/s in all)
        clock.sleep(0.3 if pacer is not None and pacer.rate > 10 else 0.02)  # why: simulated service time
        outcome = {
            "start_time": started,
            "e2e_ms": (clock.now() - started) * 1000.0,
            "error_kind": "",
            "schedule_lag_ms": lag_ms,
            "stage": shapes.current_stage(environment),
            "worker_rate": pacer.rate if pacer is not None else None,
        }
        environment.events.request.fire(
            request_type="model", name="paced", response_time=outcome["e2e_ms"], response_length=0,
            exception=None, context={"outcome": outcome}, start_time=started,
        )  # fmt: skip
        environment.outcomes.append(outcome)


class Cluster:
    """The master's environment, the workers' and the reports between them."""

    def __init__(self, master_env: Environment, workers: list[Environment], clock: ManualClock) -> None:
        self.master_env, self.workers, self.clock = master_env, workers, clock
        self.built: dict[str, int] = {}  # reports each worker built
        self.received: dict[str, int] = {}  # the number of the last one the master received
        for worker_env in workers:
            client_id = worker_env.runner.client_id

            def on_build(client_id: str, data: dict[str, Any], _id: str = client_id, **_: Any) -> None:
                self.built[_id] = self.built.get(_id, 0) + 1
                data["test_report_number"] = self.built[_id]

            worker_env.events.report_to_master.add_listener(on_build)

        def on_receive(client_id: str, data: dict[str, Any], **_: Any) -> None:
            if "test_report_number" in data:
                self.received[client_id] = data["test_report_number"]

        master_env.events.worker_report.add_listener(on_receive)

    def users_running(self, result: Any) -> bool:
        """The workers applied the master's latest state and run the users of its last tick."""
        stage = shapes.current_stage(self.master_env)
        return sum(w.runner.user_count for w in self.workers) == result[0] and all(
            shapes.current_stage(w) == stage for w in self.workers
        )

    def reports_delivered(self) -> None:
        """Wait until the master has a report each worker built after now (with its samples and pacer
        feedback until now)."""
        marks = {w.runner.client_id: self.built.get(w.runner.client_id, 0) for w in self.workers}
        wait_until(
            lambda: all(self.received.get(c, 0) > mark for c, mark in marks.items()),
            what="a fresh report from every worker",
        )

    def run(self, offsets: list[float]) -> ScriptedTicks:
        ticks = ScriptedTicks(
            self.master_env, self.clock, offsets, ready=self.users_running, settled=self.reports_delivered
        )
        self.master_env.runner.start_shape()
        # a headless master quits its workers when the shape ends: it stays "stopping" without them
        ticks.wait_for_end(lambda: self.master_env.runner.state in (STATE_STOPPING, STATE_STOPPED))
        assert ticks.ticks[-1].result is None
        return ticks


@pytest.fixture
def cluster(options_factory) -> Iterator[Any]:
    created: list[Environment] = []

    def build(**values: Any) -> Cluster:
        clock = ManualClock()
        master_env = Environment(user_classes=[PacedUser], parsed_options=options_factory(**values))
        master = master_env.create_master_runner("127.0.0.1", 0)
        use_clock(master_env, clock)
        shapes.setup(master_env)
        workers = []
        for _ in range(2):
            worker_env = Environment(user_classes=[PacedUser], parsed_options=options_factory())
            worker_env.outcomes = []
            worker_env.create_worker_runner("127.0.0.1", master.server.port)
            use_clock(worker_env, clock)
            assert shapes.setup(worker_env) is None
            workers.append(worker_env)
        created.extend([master_env, *workers])
        wait_until(lambda: len(master.clients.ready) == 2, what="both workers to connect")
        return Cluster(master_env, workers, clock)

    # Reports every 0.3 s keep the test short; a starved machine can delay heartbeats by seconds, which
    # must not get a worker declared missing (Locust's default: 3 missed beats).
    with (
        mock.patch("locust.runners.WORKER_REPORT_INTERVAL", new=0.3),
        mock.patch("locust.runners.HEARTBEAT_LIVENESS", new=30),
    ):
        yield build
        for environment in reversed(created):
            environment.runner.quit()


def test_each_worker_paces_its_share_of_the_rate(cluster) -> None:
    nodes = cluster(shape="arrival", rate="20", max_users="40", run_time=3)
    nodes.run([0, 1.5, 3.0])
    outcomes = [o for w in nodes.workers for o in w.outcomes]
    assert {o["worker_rate"] for o in outcomes} == {10.0}  # 20/s split over two workers
    assert {o["stage"] for o in outcomes} == {"arrival"}
    assert all(w.outcomes for w in nodes.workers)
    # 3 s of two Poisson streams at 10/s: 60 expected; by chance outside these bounds < 1 in 100,000 runs
    assert 25 <= len(outcomes) <= 100
    assert max(o["schedule_lag_ms"] for o in outcomes) == 0.0  # enough users on both workers
    assert len(runtime_for(nodes.master_env).pacer_reports) == 2  # the feedback reached the master
    assert [s["name"] for s in shapes.stage_log(nodes.master_env)] == ["arrival"]


def test_capacity_is_judged_on_the_master_from_worker_samples(cluster) -> None:
    nodes = cluster(
        shape="capacity", start_rate="10", rate_step="10", step_duration="2s", max_users="60",
        slo="e2e_p95<=150ms",
    )  # fmt: skip
    # ticks at the starts of steps 10, 20 and 30/s (the rate holds until the next tick); a step is
    # judged 2.3 s (report interval + margin) plus its p99 latency after its end: step 30/s (0.3 s
    # calls) at 8.6 s, so the tick at 9 s judges the three steps and ends the search
    ticks = nodes.run([0, 2.0, 4.0, 9.0]).ticks
    assert [t.stage for t in ticks[:-1]] == ["rate-10", "rate-20", "rate-30"]
    result = shapes.capacity_result(nodes.master_env)
    assert result["capacity_rps"] == 20.0 and result["stop_reason"] == "slo_breached"
    steps = result["steps"]
    assert [(s["rate"], s["passed"]) for s in steps] == [(10.0, True), (20.0, True), (30.0, False)]
    assert steps[2]["gates"][0]["value"] == pytest.approx(300.0)
    for step in steps:  # every call of every step reached the master, from both workers
        calls = [
            o for w in nodes.workers for o in w.outcomes if step["start"] <= o["start_time"] < step["end"]
        ]
        assert step["requests"] == len(calls) > 0
    judged_until = steps[-1]["end"]
    assert all(any(o["start_time"] < judged_until for o in w.outcomes) for w in nodes.workers)  # both counted
