"""The arrival pacer with real gevent greenlets, in short bursts (each test well under a second)."""

from __future__ import annotations

import random
import statistics

import gevent
import locust  # noqa: F401  (monkey-patches like a real run)
import pytest

from shapes import pacing
from shapes.pacing import ArrivalPacer


def run_users(pacer: ArrivalPacer, users: int, service_s: float, seconds: float) -> list[tuple[float, float]]:
    taken: list[tuple[float, float]] = []

    def user() -> None:
        while True:
            taken.append(pacer.wait_for_slot())
            gevent.sleep(service_s)

    greenlets = [gevent.spawn(user) for _ in range(users)]
    gevent.sleep(seconds)
    gevent.killall(greenlets)
    return taken


def test_poisson_arrivals_at_the_target_rate_each_taken_once() -> None:
    pacer = ArrivalPacer(rng=random.Random(7))
    pacer.set_rate(1000)
    taken = run_users(pacer, users=50, service_s=0.005, seconds=0.6)
    pacer.stop()
    planned = [p for p, _ in taken]
    assert len(planned) == len(set(planned)), "an arrival was handed to two users"
    assert 450 <= len(planned) <= 750  # 600 expected
    gaps = [b - a for a, b in zip(sorted(planned), sorted(planned)[1:], strict=False)]
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.001, rel=0.15)
    # exponential gaps: the standard deviation equals the mean (a fixed pace would give ~0)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.2)
    assert statistics.median(lag for _, lag in taken) < 20.0


def test_too_few_users_keeps_the_schedule_and_reports_the_lag() -> None:
    pacer = ArrivalPacer(rng=random.Random(3))
    pacer.set_rate(100)
    taken = run_users(pacer, users=1, service_s=0.05, seconds=0.6)
    signal = pacer.take_signal()
    pacer.stop()
    lags = [lag for _, lag in taken]
    assert len(taken) <= 14  # one user at 50 ms a call: about 12 calls
    assert lags[-1] > 250.0 and lags[-1] > lags[1]  # the backlog makes each call later than planned
    assert signal["backlog"] > 20 and signal["waiting_avg"] < 0.2 and signal["max_lag_ms"] >= lags[-1]
    # the planned times still follow the 100/s schedule: they are not spaced by the 50 ms service time
    planned = [p for p, _ in taken]
    assert (planned[-1] - planned[0]) / (len(planned) - 1) < 0.03


def test_a_rate_change_takes_effect_at_once() -> None:
    pacer = ArrivalPacer(rng=random.Random(5))
    pacer.set_rate(0.1)  # the first arrival would be about 10 s away
    gevent.sleep(0.05)
    pacer.set_rate(300)
    taken = run_users(pacer, users=20, service_s=0.001, seconds=0.3)
    pacer.stop()
    assert len(taken) >= 50


def test_zero_rate_pauses_and_signal_counts_idle_users() -> None:
    pacer = ArrivalPacer()
    pacer.set_rate(200)
    gevent.sleep(0.05)
    pacer.set_rate(0)
    backlog = pacer.take_signal()["backlog"]
    assert backlog > 0
    taken = run_users(pacer, users=4, service_s=0.0, seconds=0.2)
    assert len(taken) == backlog  # the arrivals already due, and nothing after the pause
    pacer.take_signal()  # start a fresh averaging window
    waiters = [gevent.spawn(pacer.wait_for_slot) for _ in range(3)]
    gevent.sleep(0.1)
    signal = pacer.take_signal()
    assert signal["waiting"] == 3 and signal["waiting_avg"] == pytest.approx(3.0, abs=0.1)
    gevent.killall(waiters)
    assert pacer.take_signal()["waiting"] == 0  # a stopped user leaves the queue
    pacer.stop()


def test_backlog_is_bounded_and_drops_are_counted() -> None:
    pacer = ArrivalPacer(backlog_limit=10)
    pacer.set_rate(2000)
    gevent.sleep(0.1)  # nobody takes anything
    signal = pacer.take_signal()
    pacer.stop()
    assert signal["backlog"] == 10 and signal["dropped"] > 50


def test_get_pacer_is_none_until_an_open_model_shape_activates_it() -> None:
    environment = object.__new__(type("Env", (), {}))
    assert pacing.get_pacer(environment) is None
    pacer = pacing.activate(environment, 5.0)
    assert pacing.get_pacer(environment) is pacer and pacer.rate == 5.0
    pacing.deactivate(environment)
    assert pacing.get_pacer(environment) is None and pacer.rate == 0.0
