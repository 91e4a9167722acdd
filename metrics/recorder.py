"""Outcome → one Locust request event, and the per-request log that keeps every Outcome field."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment

from core import results as results_layout
from core.outcome import Outcome
from metrics.redaction import redactor_of
from metrics.results import AppendedCsv

FLUSH_INTERVAL_S = 1.0  # a killed run loses at most this much of its request log


class OutcomeFailure(Exception):
    """What Locust's failure table shows: the error kind first, so rows group by kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


def record_outcome(environment: Environment, outcome: Outcome) -> None:
    """One request event per logical call: request_type is the model, name is the scenario.

    A cancelled call (its user killed at the stop, mid-call) is recorded too, from the dying user's
    greenlet, so its attempts are counted: neither a failure nor timed (response_time None, which
    Locust counts as a request without a time), since it measured the stop rather than the API.
    """
    exception = (
        # Redacted again here: this message reaches Locust's failures table, CSV and web UI.
        OutcomeFailure(outcome.error_kind, redactor_of(environment)(outcome.error_message))
        if outcome.failed
        else None
    )
    environment.events.request.fire(
        request_type=outcome.model,
        name=outcome.scenario,
        response_time=None if outcome.cancelled else outcome.e2e_ms,
        response_length=outcome.response_bytes,
        exception=exception,
        context={"outcome": outcome},
        start_time=outcome.start_time,
        url=None,
    )


def request_log_name() -> str:
    """This process's request log: requests-<hostname>-<pid>.csv."""
    return results_layout.request_log_name(socket.gethostname(), os.getpid())


class RequestLog:
    """Appends every Outcome of this process to its request log in the results folder, opened at
    the first Outcome (a worker learns the folder from the master's spawn message).

    In a web-UI session each test has its own folder: new_test() makes the next Outcome open the
    log in the folder --results-dir names then, so each test's folder holds only its own calls."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        # Flushed on a timer rather than per row: this file is written on every request.
        self.csv = AppendedCsv(
            results_layout.REQUEST_LOG,
            request_log_name(),
            flush_each_write=False,
            redactor=redactor_of(environment),
        )
        self._flusher: gevent.Greenlet | None = None
        self.rows = 0
        self.closed = False
        environment.events.request.add_listener(self._on_request)
        # The calls cut off at the stop are logged before test_stop: on disk before the master
        # (told by final_reports, after this process's test_stop) counts and reads the test.
        environment.events.test_stop.add_listener(lambda **_: self.csv.flush())

    @property
    def path(self) -> Path | None:
        return self.csv.path

    def _open(self) -> None:
        results_dir = getattr(self.environment.parsed_options, "results_dir", None)
        if not results_dir:
            raise RuntimeError("the results folder is not set: --results-dir was not resolved")
        folder = Path(results_dir)
        folder.mkdir(parents=True, exist_ok=True)  # a worker on another host has no folder yet
        self.csv.open(folder)
        self._flusher = gevent.spawn(self._flush_forever)

    def _on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        outcome = (context or {}).get("outcome")
        if not isinstance(outcome, Outcome) or self.closed:
            return  # after close() a late call is dropped, not written to a reopened file
        if not self.csv.is_open:
            self._open()
        self.csv.write((outcome.as_row(),))
        self.rows += 1

    def _flush_forever(self) -> None:
        while self.csv.is_open:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.csv.flush()

    def new_test(self) -> None:
        """A test starts: its calls go to the request log in the results folder named now."""
        self.close()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.csv.flush()
        self.csv.close()
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
