"""Waiting for events, not for time: the helpers tests use instead of a fixed sleep.

Import it by its full name from any test folder: `from tests.waiting import wait_until`.

- wait_until(condition, timeout, what): poll until the condition holds; the timeout is generous (a
  busy machine only makes the wait longer, it never fails it) and only bounds a broken feature.
- ManualClock: a clock a test advances by hand, for code that takes `clock=` (and `sleep=`).

Under the suite's gevent monkey-patching, time.sleep yields to the hub, so greenlets in the test
process (servers, runners, users) keep running while a test waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02
DEFAULT_TIMEOUT_S = 30.0


def wait_until(condition: Callable[[], T], timeout: float = DEFAULT_TIMEOUT_S, what: str = "") -> T:
    """The condition's first truthy value; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what or 'a condition'}; last value: {value!r}")
        time.sleep(POLL_S)  # why: the poll interval; the condition lives in another process or greenlet


def wait_for_kernel_stamps(timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Until the kernel stamps what a loopback TCP socket receives (users/arrival.py): the first
    socket on a host to ask switches stamping on through deferred kernel work."""
    import socket

    from users import arrival

    arrival.prime()
    with socket.create_server(("127.0.0.1", 0)) as server:
        reader = socket.create_connection(server.getsockname())
        writer, _ = server.accept()
        with reader, writer:
            assert arrival.enable(reader), "SO_TIMESTAMPNS is not available here"

            def stamped() -> bool:
                started = time.perf_counter()
                writer.sendall(b".")
                arrival.recv(reader, 16)
                return arrival.latest(started) is not None

            wait_until(stamped, timeout, "the kernel's receive stamps")


class ManualClock:
    """Seconds that pass only when a test says so; `sleep` advances the clock instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
