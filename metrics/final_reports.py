"""Every worker's last report reaches the master before the master counts the run.

Locust's master, when a headless run ends, tells its workers to quit and then waits half a second
for their last reports. A worker first lets its users finish (up to --stop-timeout) and only then
reports: on a busy machine, or with calls in flight, that report comes too late and the calls in it
vanish from the master's stats, Locust's and the LLM ones alike (seen: 27 counted of 67 served).

So when a test stops (test_stopping, before Locust sends stop or quit), the master asks every
connected worker to stop its users and report now (MSG_FLUSH), and waits until each has answered
(MSG_FLUSHED, sent after its report on the same connection, so the report is merged first), at
most --stop-timeout plus FLUSH_MARGIN_S. A worker that leaves meanwhile (it quit, or Locust marked
it missing) is waited for no longer. A worker that does not answer in time is named in the log: its
last calls may be missing, and the lost-worker tracking (metrics/distributed.py) says how many.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gevent.event import Event
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

logger = logging.getLogger(__name__)

MSG_FLUSH = "gemini_flush"  # master -> workers: stop your users and send your report now
MSG_FLUSHED = "gemini_flushed"  # worker -> master: done (after the report, on the same socket)
FLUSH_MARGIN_S = 15.0  # beyond --stop-timeout: a busy machine is slow to stop and serialize
RECHECK_S = 0.5  # how often the wait looks again for workers that left (Locust has no event for it)


def install(environment: Environment) -> None:
    """Wire the handshake on a master or a worker; nothing to do in a local run."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _MasterSide(environment)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(MSG_FLUSH, lambda msg, **_: _flush_worker(environment), concurrent=True)


def _flush_worker(environment: Environment) -> None:
    runner: Any = environment.runner
    runner.stop()  # users finish their calls within --stop-timeout, then stop
    # What Locust's worker sends every 3 s (its own stats, ours, health): fired and sent now.
    data: dict[str, Any] = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
    runner.send_message("stats", data)
    runner.send_message(MSG_FLUSHED)


class _MasterSide:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.flushed: set[str] = set()
        self.changed = Event()
        runner: Any = environment.runner
        runner.register_message(MSG_FLUSHED, self._on_flushed, concurrent=True)
        environment.events.test_stopping.add_listener(self._on_test_stopping)

    def _on_flushed(self, msg: Any, **_: Any) -> None:
        self.flushed.add(msg.node_id)
        self.changed.set()

    def _connected(self) -> set[str]:
        runner: Any = self.environment.runner
        return {node.id for node in runner.clients.all if node.state != STATE_MISSING}

    def _on_test_stopping(self, **_: Any) -> None:
        runner: Any = self.environment.runner
        waiting = self._connected()
        if not waiting:
            return
        self.flushed.clear()
        runner.send_message(MSG_FLUSH)
        timeout = float(self.environment.stop_timeout or 0.0) + FLUSH_MARGIN_S
        deadline = time.monotonic() + timeout
        while True:
            waiting &= self._connected()  # a worker that quit or went missing will not answer
            if waiting <= self.flushed:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                late = ", ".join(sorted(waiting - self.flushed))
                logger.warning(
                    "no final report from %s within %.0f s: its last calls may be missing", late, timeout
                )
                return
            self.changed.clear()
            self.changed.wait(min(remaining, RECHECK_S))
