"""A FIFO concurrency gate with a changeable capacity and a hold: what AIMD admits attempts through.

An attempt enters when fewer than `capacity` are in flight and no hold is in force; otherwise it
queues, first come first served. Waiters sleep on their own gevent Event and are woken only when
something changes that could let the head in (a release, a bigger capacity), and the head alone
sleeps out a hold (RetryInfo: the server said when to come back), so nothing polls.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event

Clock = Callable[[], float]


class ConcurrencyGate:
    def __init__(self, capacity: int, clock: Clock, sleep: Callable[[float], object] = gevent.sleep) -> None:
        self.capacity = max(1, capacity)
        self.in_flight = 0
        self.hold_until = 0.0  # on `clock`: no attempt enters before it
        self._clock = clock
        self._sleep = sleep
        self._queue: deque[Event] = deque()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire(self) -> None:
        """Wait for a place (FIFO). A kill while waiting leaves the queue as if it never came."""
        if not self._queue and self.in_flight < self.capacity and self._clock() >= self.hold_until:
            self.in_flight += 1
            return
        waiter = Event()
        self._queue.append(waiter)
        try:
            while True:
                if self._queue[0] is waiter:
                    held_for = self.hold_until - self._clock()
                    if held_for > 0:
                        self._sleep(held_for)
                        continue  # the hold may have grown meanwhile
                    if self.in_flight < self.capacity:
                        break
                waiter.wait()
                waiter.clear()
        except BaseException:
            self._queue.remove(waiter)
            self._wake_head()
            raise
        self._queue.popleft()
        self.in_flight += 1
        self._wake_head()  # the next may fit too

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._wake_head()

    def set_capacity(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._wake_head()

    def hold(self, until: float) -> None:
        """No attempt enters before `until` (on the gate's clock); a shorter hold never cuts a longer."""
        if until > self.hold_until:
            self.hold_until = until
            self._wake_head()

    def _wake_head(self) -> None:
        if self._queue:
            self._queue[0].set()
