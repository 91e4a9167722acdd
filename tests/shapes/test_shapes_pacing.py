"""The arrival pacer with real gevent greenlets on a manual clock: seconds of arrivals in milliseconds.

The clock moves only in ManualClock.advance(), which wakes the pacer and the users at their own
deadlines, in order, so planned times, lags and averages are exact whatever the machine's load.
"""

from __future__ import annotations

import random
import statistics

import gevent
import locust  # noqa: F401  (monkey-patches like a real run)
import pytest

from shapes import pacing
from shapes.clock import ManualClock
from shapes.pacing import ArrivalPacer


def start_users(pacer: ArrivalPacer, clock: ManualClock, users: int, service_s: float) -> tuple[list, list]:
    """`users` greenlets that each take an arrival, then spend service_s of the clock on the call."""
    taken: list[tuple[float, float]] = []

    def user() -> None:
        while True:
            taken.append(pacer.wait_for_slot())
            clock.sleep(service_s)  # why: the simulated service time, on the manual clock

    return taken, [gevent.spawn(user) for _ in range(users)]


def test_poisson_arrivals_at_the_target_rate_each_taken_once() -> None:
    clock = ManualClock()
    start = clock.now()
    pacer = ArrivalPacer(rng=random.Random(7), clock=clock)
    pacer.set_rate(1000)
    taken, users = start_users(pacer, clock, users=50, service_s=0.005)
    clock.advance(0.6)
    gevent.killall(users)
    pacer.stop()
    planned = [p for p, _ in taken]
    assert len(planned) == len(set(planned)), "an arrival was handed to two users"
    # every arrival released was taken, each within the 0.6 s that passed
    assert len(planned) == pacer.released and start < min(planned) and max(planned) <= start + 0.6
    assert 450 <= len(planned) <= 750  # 600 expected
    gaps = [b - a for a, b in zip(sorted(planned), sorted(planned)[1:], strict=False)]
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.001, rel=0.15)
    # exponential gaps: the standard deviation equals the mean (a fixed pace would give ~0)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.2)
    assert max(lag for _, lag in taken) == 0.0  # 50 users for ~5 busy: every call starts on time


def test_too_few_users_keeps_the_schedule_and_reports_the_lag() -> None:
    clock = ManualClock()
    start = clock.now()
    pacer = ArrivalPacer(rng=random.Random(3), clock=clock)
    pacer.set_rate(100)
    taken, users = start_users(pacer, clock, users=1, service_s=0.05)
    clock.advance(0.6)
    signal = pacer.take_signal()
    gevent.killall(users)
    pacer.stop()
    planned = [p for p, _ in taken]
    lags = [lag for _, lag in taken]
    assert 11 <= len(taken) <= 13  # one user at 50 ms a call: about 12 calls
    # the arrivals still follow the 100/s schedule, not the 50 ms service time, and are taken in order
    assert planned == sorted(planned) and start < planned[0]
    assert (planned[-1] - planned[0]) / (len(planned) - 1) < 0.03
    # the lag is the time a call started after its planned time; the backlog makes each call later
    started = [p + lag / 1000.0 for p, lag in taken]
    assert all(b - a == pytest.approx(0.05) for a, b in zip(started[1:], started[2:], strict=False))
    assert lags[-1] > 250.0 and lags[-1] > lags[1]
    assert signal["backlog"] > 20 and signal["waiting_avg"] < 0.2 and signal["max_lag_ms"] >= lags[-1]


def test_a_rate_change_takes_effect_at_once() -> None:
    clock = ManualClock()
    pacer = ArrivalPacer(rng=random.Random(5), clock=clock)
    pacer.set_rate(0.1)  # with this seed the first arrival is planned 9.75 s away
    clock.advance(0.05)
    assert pacer.released == 0
    changed_at = clock.now()
    pacer.set_rate(300)
    taken, users = start_users(pacer, clock, users=20, service_s=0.001)
    clock.advance(0.3)
    gevent.killall(users)
    pacer.stop()
    assert len(taken) >= 50  # 90 expected at 300/s
    # redrawn from the change: the first arrival came within a few ms, not at the old 9.75 s
    assert min(p for p, _ in taken) - changed_at < 0.05


def test_zero_rate_pauses_and_signal_counts_idle_users() -> None:
    clock = ManualClock()
    pacer = ArrivalPacer(rng=random.Random(11), clock=clock)
    pacer.set_rate(200)
    clock.advance(0.05)
    pacer.set_rate(0)
    backlog = pacer.take_signal()["backlog"]
    assert backlog > 0
    taken, users = start_users(pacer, clock, users=4, service_s=0.0)
    clock.advance(0.2)
    gevent.killall(users)
    assert len(taken) == backlog  # the arrivals already due, and nothing after the pause
    pacer.take_signal()  # start a fresh averaging window
    waiters = [gevent.spawn(pacer.wait_for_slot) for _ in range(3)]
    clock.advance(0.1)
    signal = pacer.take_signal()
    assert signal["waiting"] == 3 and signal["waiting_avg"] == pytest.approx(3.0)
    clock.advance(0.1)
    gevent.killall(waiters)
    assert pacer.take_signal()["waiting_avg"] == pytest.approx(3.0)  # idle the whole window
    assert pacer.take_signal()["waiting"] == 0  # a stopped user leaves the queue
    pacer.stop()


def test_waiting_average_is_weighted_by_time() -> None:
    clock = ManualClock()
    pacer = ArrivalPacer(clock=clock)
    pacer.take_signal()
    waiter = gevent.spawn(pacer.wait_for_slot)
    clock.advance(0.3)  # one user idle for 0.3 s of a 1 s window
    waiter.kill()
    clock.advance(0.7)
    assert pacer.take_signal()["waiting_avg"] == pytest.approx(0.3)


def test_backlog_is_bounded_and_drops_are_counted() -> None:
    clock = ManualClock()
    pacer = ArrivalPacer(rng=random.Random(13), backlog_limit=10, clock=clock)
    pacer.set_rate(2000)
    clock.advance(0.1)  # nobody takes anything
    signal = pacer.take_signal()
    pacer.stop()
    assert signal["backlog"] == 10 and signal["dropped"] > 50  # ~200 arrivals
    assert signal["dropped"] == pacer.released - 10


def test_get_pacer_is_none_until_an_open_model_shape_activates_it() -> None:
    environment = object.__new__(type("Env", (), {}))
    assert pacing.get_pacer(environment) is None
    pacer = pacing.activate(environment, 5.0)
    assert pacing.get_pacer(environment) is pacer and pacer.rate == 5.0
    pacing.deactivate(environment)
    assert pacing.get_pacer(environment) is None and pacer.rate == 0.0
