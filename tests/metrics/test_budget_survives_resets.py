"""The budget counts what was spent, not what the (resettable) stats show."""

from __future__ import annotations

import argparse

from locust import User
from locust.env import Environment

from core.outcome import Outcome
from metrics import llm
from metrics.recorder import record_outcome


class _Idle(User):
    abstract = False

    def run(self) -> None:  # never started: the test drives events itself
        pass


def test_stats_resets_do_not_reset_the_spend_the_budget_sees(monkeypatch) -> None:
    options = argparse.Namespace(max_cost=0.05, slo="", results_dir="", headless=True)
    env = Environment(user_classes=[_Idle], parsed_options=options, host="http://127.0.0.1:9")
    env.create_local_runner()
    metrics = llm.install(env)
    stops: list[bool] = []
    monkeypatch.setattr("metrics.budget._stop_run", lambda environment: stops.append(True))
    env.events.test_start.fire(environment=env)
    for _ in range(4):
        record_outcome(env, Outcome("s", "gemini-2.5-flash", "http", 0.0, e2e_ms=5.0, cost_usd=0.01))
        env.events.reset_stats.fire()  # --reset-stats, a shape's stage or the web UI's button
    assert metrics.stats.total.counts["requests"] == 0  # the stats were reset...
    assert abs(metrics.estimated_spend_usd() - 0.04) < 1e-9  # ...the spend was not
    assert not stops
    record_outcome(env, Outcome("s", "gemini-2.5-flash", "http", 0.0, e2e_ms=5.0, cost_usd=0.01))
    assert metrics.budget.reached_at is not None and metrics.budget.stopper is not None
    metrics.budget.stopper.join(timeout=10)  # the run is stopped from a greenlet of its own
    assert stops == [True]
    env.events.test_start.fire(environment=env)  # a new test starts its spend at zero
    assert metrics.estimated_spend_usd() == 0
    env.runner.quit()
