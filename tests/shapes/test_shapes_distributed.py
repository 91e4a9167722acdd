"""A master and two workers in one process over loopback ZeroMQ, as `--processes 2` runs them.

Proves the master's shape reaches the workers: stage, each worker's share of the arrival rate, and
the capacity samples travelling back in the worker reports.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import gevent
import pytest
from locust import User, constant, task
from locust.env import Environment
from locust.runners import STATE_STOPPED, STATE_STOPPING

import shapes
from shapes.runtime import runtime_for

pytestmark = pytest.mark.timeout(60)


class PacedUser(User):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        environment = self.environment
        pacer = shapes.get_pacer(environment)
        lag_ms = pacer.wait_for_slot()[1] if pacer is not None else None
        started = time.time()
        # a server that slows down past 10 calls/s per worker (20/s in all)
        gevent.sleep(0.3 if pacer is not None and pacer.rate > 10 else 0.02)
        outcome = {
            "start_time": started,
            "e2e_ms": (time.time() - started) * 1000.0,
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


@pytest.fixture
def cluster(options_factory) -> Iterator[Any]:
    created: list[Environment] = []

    def build(**values: Any) -> tuple[Environment, list[Environment]]:
        master_env = Environment(user_classes=[PacedUser], parsed_options=options_factory(**values))
        master = master_env.create_master_runner("127.0.0.1", 0)
        shapes.setup(master_env)
        workers = []
        for _ in range(2):
            worker_env = Environment(user_classes=[PacedUser], parsed_options=options_factory())
            worker_env.outcomes = []
            worker_env.create_worker_runner("127.0.0.1", master.server.port)
            assert shapes.setup(worker_env) is None
            workers.append(worker_env)
        created.extend([master_env, *workers])
        deadline = time.monotonic() + 10
        while len(master.clients.ready) < 2 and time.monotonic() < deadline:
            gevent.sleep(0.1)
        assert len(master.clients.ready) == 2
        return master_env, workers

    with mock.patch("locust.runners.WORKER_REPORT_INTERVAL", new=0.3):
        yield build
        for environment in reversed(created):
            environment.runner.quit()


def run_master(master_env: Environment, timeout_s: float) -> None:
    master_env.runner.start_shape()
    deadline = time.monotonic() + timeout_s
    # a headless master quits its workers when the shape ends: it stays "stopping" without them
    while master_env.runner.state not in (STATE_STOPPING, STATE_STOPPED):
        assert time.monotonic() < deadline, "the shape did not end the run"
        gevent.sleep(0.2)


def test_each_worker_paces_its_share_of_the_rate(cluster) -> None:
    master_env, workers = cluster(shape="arrival", rate="20", max_users="40", run_time=3)
    run_master(master_env, timeout_s=15)
    outcomes = [o for w in workers for o in w.outcomes]
    assert {o["worker_rate"] for o in outcomes} == {10.0}  # 20/s split over two workers
    assert {o["stage"] for o in outcomes} == {"arrival"}
    assert all(w.outcomes for w in workers)
    assert 30 <= len(outcomes) <= 95  # 60 expected
    assert len(runtime_for(master_env).pacer_reports) == 2  # the feedback reached the master
    assert [s["name"] for s in shapes.stage_log(master_env)] == ["arrival"]


def test_capacity_is_judged_on_the_master_from_worker_samples(cluster) -> None:
    master_env, workers = cluster(
        shape="capacity", start_rate="10", rate_step="10", step_duration="2s", max_users="60",
        slo="e2e_p95<=150ms",
    )  # fmt: skip
    run_master(master_env, timeout_s=25)
    result = shapes.capacity_result(master_env)
    assert result["capacity_rps"] == 20.0 and result["stop_reason"] == "slo_breached"
    steps = result["steps"]
    assert [(s["rate"], s["passed"]) for s in steps] == [(10.0, True), (20.0, True), (30.0, False)]
    worker_calls = sum(1 for w in workers for o in w.outcomes if o["start_time"] < steps[0]["end"])
    assert steps[0]["requests"] == worker_calls  # every call of step 1 reached the master
