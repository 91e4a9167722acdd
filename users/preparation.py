"""Getting a process ready to send load, before the run clock starts and off the event loop.

Preparing means importing the chosen transport's SDK (about a second) and building every active
scenario's requests (images resized and encoded, bodies built). It takes seconds the first time and
well under one once the image cache (users/images.py) is warm. Nothing of it may happen inside the
measured window, and none of it may stall the event loop, or the web UI would not answer.

- One `Preparation` per process. init starts it in the background: the web UI answers at once.
  A headless run waits for it before Locust starts its run clock; a start from the web UI waits for
  it in the /swarm request; a later test_start (the form may have changed options) prepares again
  only what changed.
- A worker prepares from its own command line at init and tells the master when it is done, or why
  it could not (`MESSAGE_PREPARED`). The master (`WorkerReadiness`) starts no test until every
  connected worker has said so, and stops a run whose worker could not prepare with that worker's
  one-line reason. A worker that fails later, when the master's options arrive with the spawn
  message, sends its reason the same way (`tell_master_preparation_failed`) before it exits, and
  the master's `on_failure` callbacks end the run with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.rpc import Message
from locust.runners import STATE_MISSING

logger = logging.getLogger(__name__)

MESSAGE_PREPARED = "gemini_prepared"  # worker -> master: {"error": str | None}
MESSAGE_ASK_PREPARED = "gemini_ask_prepared"  # master -> workers: say again whether you are ready
PROGRESS_EVERY_S = 5.0


class PreparationFailed(ValueError):
    """Preparation could not finish; the message is one line that says what to fix."""


class Preparation:
    """This process's preparation: run `prepare(environment)` once in a greenlet, wait for it.

    `prepare` does the heavy work and raises a ValueError with a one-line message on bad input;
    `what` tells the web banner and the log what is being prepared right now.
    """

    def __init__(self, environment: Environment, prepare: Callable[[Environment], None]) -> None:
        self.environment = environment
        self._prepare = prepare
        self._done = Event()
        self._greenlet: gevent.Greenlet | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.seconds: float | None = None
        self.on_done: list[Callable[[Preparation], None]] = []

    def start(self) -> None:
        """Begin in the background; calling it again while it runs or after it is done does nothing."""
        if self._greenlet is not None or self.done:
            return
        self.started_at = time.monotonic()
        self._greenlet = gevent.spawn(self._run)

    def fail(self, message: str) -> None:
        """Mark it failed without running it (a check before it could start found the problem)."""
        if self.done:
            return
        self.error = message
        self.seconds = 0.0
        self._done.set()
        for callback in self.on_done:
            callback(self)

    def _run(self) -> None:
        try:
            self._prepare(self.environment)
        except ValueError as exc:  # OptionError, FixtureError, ImageLimitError, PricingError ...
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - anything else still ends in one line, not a hang
            logger.exception("preparing the requests failed")
            self.error = f"preparing the requests failed: {type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.monotonic() - (self.started_at or time.monotonic())
            self._done.set()
        for callback in self.on_done:
            callback(self)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def ready(self) -> bool:
        return self.done and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (without blocking the event loop) until done; True when ready, False on timeout.

        Raises PreparationFailed with the one-line reason when preparing failed."""
        self.start()
        if not self._done.wait(timeout):
            return False
        if self.error is not None:
            raise PreparationFailed(self.error)
        return True

    def wait_logging_progress(self) -> None:
        """wait(), with a line every few seconds so a long first preparation is not mistaken for a hang."""
        while not self.wait(PROGRESS_EVERY_S):
            elapsed = time.monotonic() - (self.started_at or time.monotonic())
            logger.info("still preparing requests (%.0f s so far; the next start reuses them)", elapsed)

    def describe(self) -> str:
        """For the web UI: what the start form should say about preparation."""
        if self.error is not None:
            return f"Preparing requests failed: {self.error}"
        if self.done:
            return ""
        elapsed = time.monotonic() - (self.started_at or time.monotonic())
        return (
            f"Preparing requests (images resized, bodies built) for {elapsed:.0f} s: a start waits until "
            "they are ready."
        )

    def kill(self) -> None:
        if self._greenlet is not None and not self._greenlet.dead:
            self._greenlet.kill(block=False)


def announce_to_master(environment: Environment, preparation: Preparation) -> None:
    """On a worker: tell the master when preparation is done (and again whenever it asks)."""
    runner: Any = environment.runner

    def send(*_: Any, **__: Any) -> None:
        if preparation.done:
            runner.send_message(MESSAGE_PREPARED, {"error": preparation.error})

    runner.register_message(MESSAGE_ASK_PREPARED, send, concurrent=True)
    preparation.on_done.append(lambda _: send())


def tell_master_preparation_failed(environment: Environment, message: str) -> None:
    """On a worker whose preparation for a test failed (the master's options, which arrive with
    the spawn message, asked for something this worker cannot do): send the one-line reason to
    the master before the worker exits, so the master prints it and ends the run; then say "quit"
    as Locust's worker does when it shuts down, so the master counts on it no longer (rather than
    waiting for its heartbeat to lapse). The master reads both in order (_on_prepared is not
    concurrent)."""
    runner: Any = environment.runner
    try:
        runner.send_message(MESSAGE_PREPARED, {"error": message})
        runner.client.send(Message("quit", None, runner.client_id))
    except Exception:  # noqa: BLE001 - no master to tell: the worker still exits with its own line
        logger.debug("could not tell the master why this worker stops", exc_info=True)


class WorkerReadiness:
    """On the master: which connected workers have prepared their requests, and who failed to."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.prepared: set[str] = set()
        self.failures: dict[str, str] = {}
        # Called with (worker id, one-line reason) for each failure, also after the test started.
        self.on_failure: list[Callable[[str, str], None]] = []
        self._changed = Event()
        runner: Any = environment.runner
        # In order with Locust's own messages: a refusal is handled before the same worker's "quit".
        runner.register_message(MESSAGE_PREPARED, self._on_prepared, concurrent=False)
        # Workers that finished before this handler existed say so again when asked.
        runner.send_message(MESSAGE_ASK_PREPARED)

    def _on_prepared(self, msg: Any, **_: Any) -> None:
        error = (msg.data or {}).get("error")
        if error:
            self.failures[msg.node_id] = str(error)
            self.prepared.discard(msg.node_id)
            logger.error("worker %s could not prepare its requests: %s", msg.node_id, error)
        else:
            self.prepared.add(msg.node_id)
        self._changed.set()
        if error:
            for callback in self.on_failure:
                callback(msg.node_id, str(error))

    def connected(self) -> list[str]:
        clients = self.environment.runner.clients  # type: ignore[union-attr]
        return [node.id for node in clients.all if node.state != STATE_MISSING]

    def first_failure(self) -> str | None:
        for node, error in self.failures.items():
            return f"worker {node} could not prepare its requests: {error}"
        return None

    def waiting_for(self) -> list[str]:
        return [node for node in self.connected() if node not in self.prepared]

    def wait(self, expected: int, timeout: float | None = None) -> bool:
        """Until at least `expected` workers are connected and every connected worker is prepared.

        True when so; False on timeout. Raises PreparationFailed with the first worker's reason."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_note = time.monotonic()
        while True:
            failure = self.first_failure()
            if failure:
                raise PreparationFailed(failure)
            connected = self.connected()
            if len(connected) >= expected and not self.waiting_for():
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if now - last_note >= PROGRESS_EVERY_S:
                last_note = now
                logger.info(
                    "waiting for workers to prepare their requests: %d of %d ready",
                    len([n for n in connected if n in self.prepared]),
                    max(expected, len(connected)),
                )
            self._changed.clear()
            # why: wake on a worker's message, or re-check connections (Locust has no event for a
            # worker joining) a few times a second.
            self._changed.wait(0.25 if deadline is None else max(0.0, min(0.25, deadline - now)))
