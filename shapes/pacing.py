"""Open-model pacing: Poisson arrivals at a target rate, whatever the latency.

Locust users are closed-loop: each waits for its answer before the next call. To load at a fixed
arrival rate, one clock greenlet per process draws Poisson arrival times and hands each arrival to
exactly one free user waiting in `wait_for_slot()`. When no user is free, the arrival is queued with
its planned time; the next user to come free takes the oldest one at once, and the difference
between its actual and planned start is the schedule lag: the coordinated-omission signal a
closed-loop generator would otherwise hide. The schedule never bends to the server's latency.

Distributed runs: each worker process has its own pacer set to rate / worker count by the shape
running on the master (see shapes/runtime.py); independent Poisson streams add up to one Poisson
stream at the full rate.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

from core.context import run_context
from shapes.clock import REAL_CLOCK, Clock

# Arrivals waiting for a free user; beyond this the oldest are dropped and counted, so a generator
# with far too few users cannot grow its memory without bound (1,000 rps for 100 s).
BACKLOG_LIMIT = 100_000


class ArrivalPacer:
    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock = REAL_CLOCK,
        backlog_limit: int = BACKLOG_LIMIT,
    ) -> None:
        self._rng = rng or random.Random()
        self._clock = clock
        self._backlog_limit = backlog_limit
        self._rate = 0.0
        self._waiters: deque[AsyncResult] = deque()  # free users, first come first served
        self._backlog: deque[float] = deque()  # planned times of arrivals no user was free to take
        self._wake = Event()
        self._greenlet: gevent.Greenlet | None = None
        self.released = 0  # arrivals handed to users, in total
        self.dropped = 0  # arrivals dropped because the backlog was full
        self._waiting = 0  # users idle in wait_for_slot right now
        self._reset_signal()

    # ---- control (the shape, or the message from the master) ----
    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rps: float) -> None:
        """Arrivals per second from now on; 0 pauses. A change takes effect at once: the next
        arrival is redrawn from now, which Poisson's memorylessness allows."""
        rps = max(0.0, float(rps))
        if rps == self._rate:
            return
        self._rate = rps
        if rps > 0 and (self._greenlet is None or self._greenlet.dead):
            self._greenlet = gevent.spawn(self._run)
        self._wake.set()

    def stop(self) -> None:
        """End of a run: no more arrivals, forget the backlog. Waiting users are stopped by Locust."""
        self._rate = 0.0
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        self._backlog.clear()
        self._waiters.clear()
        self._waiting = 0
        self._reset_signal()

    # ---- the user side ----
    def wait_for_slot(self) -> tuple[float, float]:
        """Block until this user's arrival; returns (planned start epoch, schedule lag ms)."""
        if self._backlog:
            planned = self._backlog.popleft()
        else:
            waiter: AsyncResult = AsyncResult()
            self._waiters.append(waiter)
            self._count_waiting(+1)
            released = False
            try:
                planned = waiter.get()
                released = True
            finally:
                if not released:  # the user was stopped while waiting: leave the queue
                    try:
                        self._waiters.remove(waiter)
                        self._count_waiting(-1)
                    except ValueError:
                        pass  # released just before being stopped: that arrival is lost
        lag_ms = max(0.0, (self._clock.now() - planned) * 1000.0)
        self._max_lag_ms = max(self._max_lag_ms, lag_ms)
        return planned, lag_ms

    # ---- the feedback the shape uses to size the user pool ----
    def take_signal(self) -> dict[str, Any]:
        """How busy the users were since the last call (plain types: it travels to the master).

        waiting_avg: time-averaged count of users idle in wait_for_slot; backlog: arrivals now
        waiting for a user; max_lag_ms: worst schedule lag seen; rate: the rate in force.
        """
        now = self._clock.now()
        self._count_waiting(0, now)
        elapsed = now - self._signal_start
        waiting_avg = self._waiting_integral / elapsed if elapsed > 0 else float(self._waiting)
        signal = {
            "waiting_avg": waiting_avg,
            "waiting": self._waiting,
            "backlog": len(self._backlog),
            "released": self.released - self._released_at_signal,
            "dropped": self.dropped,
            "max_lag_ms": self._max_lag_ms,
            "rate": self._rate,
        }
        self._reset_signal(now)
        return signal

    def _reset_signal(self, now: float | None = None) -> None:
        now = self._clock.now() if now is None else now
        self._signal_start = self._last_change = now
        self._waiting_integral = 0.0
        self._max_lag_ms = 0.0
        self._released_at_signal = self.released

    def _count_waiting(self, delta: int, now: float | None = None) -> None:
        now = self._clock.now() if now is None else now
        self._waiting_integral += self._waiting * (now - self._last_change)
        self._last_change = now
        self._waiting += delta

    # ---- the clock ----
    def _run(self) -> None:
        next_at: float | None = None
        while True:
            if self._rate <= 0:
                self._wake.wait()
                self._wake.clear()
                next_at = None
                continue
            now = self._clock.now()
            if next_at is None:
                next_at = now + self._rng.expovariate(self._rate)
            if next_at > now:
                if self._clock.wait(self._wake, next_at - now):
                    self._wake.clear()
                    next_at = None  # the rate changed: redraw from now
                continue
            # Hand out every arrival that is due; a late clock (busy hub) releases several at once,
            # each keeping its planned time, so the lag shows.
            while next_at <= now:
                self._release(next_at)
                next_at += self._rng.expovariate(self._rate)

    def _release(self, planned: float) -> None:
        self.released += 1
        if self._waiters:
            self._count_waiting(-1)
            self._waiters.popleft().set(planned)
            return
        if len(self._backlog) >= self._backlog_limit:
            self._backlog.popleft()
            self.dropped += 1
        self._backlog.append(planned)


@dataclass
class PacerSlot:
    """The run context's pacer slot: one pacer per environment, active only while an open-model
    shape runs."""

    pacer: ArrivalPacer | None = None
    active: bool = False


def pacer_for(environment: Any, clock: Clock = REAL_CLOCK) -> ArrivalPacer:
    """The environment's pacer, created on first use (for the shape side) on `clock`."""
    slot = run_context(environment).ensure(PacerSlot)
    if slot.pacer is None:
        slot.pacer = ArrivalPacer(clock=clock)
    return slot.pacer


def activate(environment: Any, rate: float, clock: Clock = REAL_CLOCK) -> ArrivalPacer:
    pacer = pacer_for(environment, clock)
    run_context(environment).require(PacerSlot).active = True
    pacer.set_rate(rate)
    return pacer


def deactivate(environment: Any) -> None:
    slot = run_context(environment).get(PacerSlot)
    if slot is None:
        return
    slot.active = False
    if slot.pacer is not None:
        slot.pacer.stop()


def get_pacer(environment: Any) -> ArrivalPacer | None:
    """The active pacer for users to wait on, or None when the run is closed-model."""
    slot = run_context(environment).get(PacerSlot)
    return slot.pacer if slot is not None and slot.active else None
