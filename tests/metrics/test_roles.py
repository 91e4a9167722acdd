"""Metrics by role: chosen once from the runner, kept in the run context, each role doing its part.

Real Locust runners and events in this process (master and worker talk over loopback); the
end-to-end runs in test_runs.py and test_distributed.py check the same through real processes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from llm_helpers import NOT_LOOPBACK, free_port, read_rows
from locust import User
from locust.argument_parser import default_args_dict
from locust.env import Environment

from core.context import run_context
from core.options import OptionError
from core.outcome import SERVER_ERROR, Outcome
from lifecycle.form import install_start_form_check
from metrics import budget, distributed, llm
from metrics.recorder import record_outcome
from metrics.roles import LocalMetrics, MasterMetrics, RunMetrics, WorkerMetrics
from metrics.verdict import SLO_EXIT_CODE
from tests.waiting import wait_until


class _Idle(User):
    abstract = False

    def run(self) -> None:  # never started: the tests drive the events themselves
        pass


def options(**overrides: Any) -> argparse.Namespace:
    """Locust's own defaults (its runners and web UI read them) plus the metrics room's options."""
    values: dict[str, Any] = {**default_args_dict(), "max_cost": 0.0, "slo": "", "results_dir": ""}
    return argparse.Namespace(**{**values, "headless": True, **overrides})


def environment(**overrides: Any) -> Environment:
    return Environment(user_classes=[_Idle], parsed_options=options(**overrides), host="http://127.0.0.1:9")


def outcome(e2e_ms: float = 5.0, cost_usd: float = 0.001, error_kind: str = "") -> Outcome:
    return Outcome(
        "moderation", "gemini-2.5-flash", "http", 0.0, e2e_ms=e2e_ms, cost_usd=cost_usd, error_kind=error_kind
    )


@pytest.fixture
def local_env():
    env = environment()
    env.create_local_runner()
    yield env
    env.runner.quit()


def test_a_local_run_gets_local_metrics_in_its_run_context(local_env: Environment) -> None:
    with pytest.raises(LookupError, match="LlmMetrics"):
        llm.metrics_of(local_env)
    llm.finalize(local_env, None)  # nothing installed: nothing to do

    metrics = llm.install(local_env)
    assert type(metrics) is LocalMetrics
    assert llm.metrics_of(local_env) is metrics
    assert run_context(local_env).get(llm.LlmMetrics) is metrics
    assert llm.install(local_env) is metrics  # idempotent: one set of listeners
    assert not hasattr(local_env, "llm_metrics")

    record_outcome(local_env, outcome())
    assert metrics.stats.total.counts["requests"] == 1  # counted once


def test_two_environments_in_one_process_keep_their_own_metrics() -> None:
    first, second = environment(), environment()
    first.create_local_runner()
    second.create_local_runner()
    try:
        one, two = llm.install(first), llm.install(second)
        assert one is not two
        record_outcome(first, outcome())
        assert (one.stats.total.counts["requests"], two.stats.total.counts["requests"]) == (1, 0)
    finally:
        first.runner.quit()
        second.runner.quit()


def test_master_and_worker_roles_and_a_report_between_them() -> None:
    port = free_port()
    master_env, worker_env = environment(), environment()
    master_env.create_master_runner("127.0.0.1", port)
    try:
        worker_env.create_worker_runner("127.0.0.1", port)
        master, worker = llm.install(master_env), llm.install(worker_env)
        assert type(master) is MasterMetrics and type(worker) is WorkerMetrics
        assert isinstance(master, RunMetrics) and not isinstance(worker, RunMetrics)
        assert llm.check_options(worker_env) is None  # workers never judge the options
        wait_until(lambda: len(master_env.runner.clients) == 1, 30, "the worker to connect")

        for cost in (0.002, 0.003):
            record_outcome(worker_env, outcome(cost_usd=cost))
        record_outcome(worker_env, outcome(error_kind=SERVER_ERROR, cost_usd=0.0))
        data: dict[str, Any] = {}
        worker_env.events.report_to_master.fire(client_id="worker-1", data=data)
        assert worker.stats.total.counts["requests"] == 0  # sent, so its own share starts over
        assert data[distributed.REPORT_KEY]["cum_requests"] == 3

        master_env.events.worker_report.fire(client_id="worker-1", data=data)
        counts = master.stats.total.counts
        assert (counts["requests"], counts["failures"]) == (3, 1)
        assert master.tracker.workers["worker-1"].reported_requests == 3
        assert abs(master.estimated_spend_usd() - 0.005) < 1e-12
    finally:
        if worker_env.runner is not None:
            worker_env.runner.quit()
        master_env.runner.quit()


def run_folder(tmp_path: Path) -> SimpleNamespace:
    """What lifecycle/finish.py hands finalize: a folder and run.json's extra."""
    return SimpleNamespace(folder=tmp_path, extra={})


@pytest.mark.parametrize(
    ("slo", "exit_code", "passed"),
    [("e2e_p95<=1s,rps>=0", 0, [True, True]), ("e2e_p95<=1ms", SLO_EXIT_CODE, [False]), ("", None, None)],
    ids=["gates-pass", "gate-fails", "no-gates"],
)
def test_finalize_writes_the_summary_and_applies_the_verdict(
    tmp_path: Path, slo: str, exit_code: int | None, passed: list[bool] | None
) -> None:
    env = environment(slo=slo, results_dir=str(tmp_path))
    env.create_local_runner()
    try:
        metrics = llm.install(env)
        env.events.test_start.fire(environment=env)
        for _ in range(5):
            record_outcome(env, outcome(e2e_ms=20.0))
        record_outcome(env, outcome(error_kind=SERVER_ERROR))  # within no gate: not the verdict
        folder = run_folder(tmp_path)
        llm.finalize(env, folder)
        llm.finalize(env, folder)  # idempotent
    finally:
        env.runner.quit()
    assert env.process_exit_code == exit_code
    assert folder.extra["llm"]["requests"] == 6 and folder.extra["llm"]["failures"] == 1
    assert [gate["passed"] for gate in folder.extra.get("slo", [])] == (passed or [])
    assert "budget" not in folder.extra and "lost_workers" not in folder.extra
    assert folder.extra["health_warnings"] == []
    (aggregated,) = [row for row in read_rows(tmp_path / "llm_stats.csv") if row["scenario"] == "Aggregated"]
    assert aggregated["requests"] == "6"
    assert metrics.finalized and not metrics.greenlets


def test_a_bad_slo_at_the_end_is_reported_not_judged(tmp_path: Path) -> None:
    env = environment(slo="p95<=3", results_dir=str(tmp_path))
    env.create_local_runner()
    try:
        llm.install(env)
        folder = run_folder(tmp_path)
        llm.finalize(env, folder)
    finally:
        env.runner.quit()
    assert env.process_exit_code is None
    assert "unknown metric 'p95'" in folder.extra["slo_error"]


def test_options_are_checked_by_one_function_with_one_error_type() -> None:
    assert not hasattr(budget, "BudgetError")
    with pytest.raises(OptionError, match="not an amount in USD"):
        budget.parse_max_cost("lots")

    llm.check_form_options(SimpleNamespace(host=None, max_cost=0, slo="e2e_p95<=1s"))
    llm.check_form_options(SimpleNamespace(host="https://api.example.com", max_cost="5", slo=""))
    with pytest.raises(OptionError, match="is not loopback") as refused:
        llm.check_form_options(SimpleNamespace(host="https://user:s3cret@api.example.com", max_cost=0))
    assert "s3cret" not in str(refused.value)
    with pytest.raises(OptionError, match="unknown metric 'p95'"):
        llm.check_form_options(SimpleNamespace(host=None, max_cost=0, slo="p95<=3"))
    # The budget is named first when both are wrong.
    with pytest.raises(OptionError, match="--max-cost"):
        llm.check_form_options(SimpleNamespace(host=NOT_LOOPBACK, max_cost=0, slo="p95<=3"))


def test_init_check_uses_the_environments_host(local_env: Environment) -> None:
    assert llm.check_options(local_env) is None
    local_env.host = NOT_LOOPBACK
    assert "--max-cost" in (llm.check_options(local_env) or "")
    local_env.parsed_options.max_cost = 1.0
    local_env.parsed_options.slo = "p95<=3"
    assert "unknown metric 'p95'" in (llm.check_options(local_env) or "")


def test_the_start_form_is_refused_with_the_same_check(local_env: Environment, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["locust"])  # Locust's web UI parses the command line for its form
    web_ui = local_env.create_web_ui("127.0.0.1", 0, delayed_start=True)  # no server: Flask's test client
    llm.install(local_env)
    assert install_start_form_check(local_env, wait_until_ready=lambda: None)
    client = web_ui.app.test_client()
    answer = client.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "host": NOT_LOOPBACK})
    assert answer.json["success"] is False and "--max-cost" in answer.json["message"]
    answer = client.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "slo": "p95<=3"})
    assert answer.json["success"] is False and "unknown metric 'p95'" in answer.json["message"]
    answer = client.post(
        "/swarm", data={"user_count": "1", "spawn_rate": "1", "host": NOT_LOOPBACK, "max_cost": "-1"}
    )
    assert answer.json["success"] is False and "positive amount" in answer.json["message"]
    assert local_env.runner.user_count == 0  # nothing started
