"""The time the shapes read and wait on, behind one small object so tests can drive it by hand.

Everything in shapes/ that reads the time or waits for it goes through a Clock: the pacer's Poisson
clock and the schedule lag of its users, a shape's run time and stage boundaries, the end of the
stage log, the fallback start time of a sample. Each environment has one (`shapes.runtime.use_clock`);
by default it is REAL_CLOCK: the wall clock, perf_counter and gevent, exactly what the code read before.

ManualClock is for tests: its time moves only when advance() is called, which wakes every greenlet
sleeping on it in the order of their deadlines, each at its own deadline, and lets it run until it
blocks again. A test thus replays seconds of Poisson arrivals and service times in milliseconds, and
whatever a busy machine does to real time cannot change what it sees.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol

import gevent
from gevent.event import Event


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time, epoch seconds: for times that are recorded or compared across processes."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back: for elapsed time."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block this greenlet for `seconds`."""
        ...

    def wait(self, event: Event, timeout: float | None = None) -> bool:
        """Block until `event` is set (True) or `timeout` seconds passed (False); None waits forever."""
        ...


class RealClock:
    """The real thing: time.time, time.perf_counter (Locust's own shape clock) and gevent."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)

    def wait(self, event: Event, timeout: float | None = None) -> bool:
        return bool(event.wait(timeout))


REAL_CLOCK = RealClock()


class ManualClock:
    """A clock that moves only when told to; now() and monotonic() read the same manual time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, Event]] = []  # (deadline, order of arrival, wake-up)
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.wait(Event(), seconds)

    def wait(self, event: Event, timeout: float | None = None) -> bool:
        if event.is_set():
            return True
        if timeout is None:
            return bool(event.wait())
        if timeout <= 0:
            gevent.sleep(0)  # a zero wait still lets other greenlets run, as gevent's does
            return event.is_set()
        timer = Event()
        heapq.heappush(self._timers, (self._now + timeout, next(self._order), timer))
        gevent.wait([event, timer], count=1)
        return event.is_set()

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking each sleeper at its deadline, earliest first.

        Returns once every greenlet that could run has run and blocked again: the state is then that
        of the moment now() + seconds, whatever the machine's speed.
        """
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        target = self._now + seconds
        gevent.idle()  # greenlets made ready before the call reach their waits at the current time
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            timer.set()
            gevent.idle()
        self._now = target
