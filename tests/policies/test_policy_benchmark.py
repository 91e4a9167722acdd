"""`python -m benchmarks policies` runs every chain through admission and settlement without a wait
(its limits are far above the load) and reports each against the no-policy baseline."""

from __future__ import annotations

import json

from benchmarks import policies


def test_the_benchmark_admits_every_attempt_and_reports_each_chain(capsys) -> None:
    for name in policies.CHAINS:
        chain = policies._chain(name)
        assert chain is not None and chain.label.count("+") == name.count("+")
    assert policies.main(["--attempts", "300", "--rounds", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["attempts"] == 300 and figures["baseline_us"] > 0
    for name in policies.CHAINS:
        assert figures[name]["us_per_attempt"] > 0


def test_nothing_waits_in_the_benchmark() -> None:
    """Limits above the load: the aimd gate never has a waiter, the breaker stays closed."""
    chain = policies._chain("limiter+aimd+breaker")
    assert chain is not None
    policies._seconds(chain, 500)
    aimd, breaker = chain.component("aimd"), chain.component("breaker")
    assert aimd.gate.in_flight == 0 and not aimd.gate.waiting
    assert breaker.state == "closed"
