"""Outcome → one Locust request event, and the per-request log that keeps every Outcome field."""

from __future__ import annotations

import csv
import logging
import os
import socket
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust.env import Environment

from core.outcome import OUTCOME_COLUMNS, Outcome

logger = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 1.0  # a killed run loses at most this much of its request log


class OutcomeFailure(Exception):
    """What Locust's failure table shows: the error kind first, so rows group by kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


def record_outcome(environment: Environment, outcome: Outcome) -> None:
    """One request event per logical call: request_type is the model, name is the scenario."""
    exception = OutcomeFailure(outcome.error_kind, outcome.error_message) if outcome.failed else None
    environment.events.request.fire(
        request_type=outcome.model,
        name=outcome.scenario,
        response_time=outcome.e2e_ms,
        response_length=outcome.response_bytes,
        exception=exception,
        context={"outcome": outcome},
        start_time=outcome.start_time,
        url=None,
    )


def request_log_name() -> str:
    return f"requests-{socket.gethostname()}-{os.getpid()}.csv"


class RequestLog:
    """Appends every Outcome of this process to requests-<host>-<pid>.csv in the results folder."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._writer: csv.DictWriter | None = None
        self._flusher: gevent.Greenlet | None = None
        self.rows = 0
        self.closed = False
        environment.events.request.add_listener(self._on_request)

    def _open(self) -> None:
        results_dir = getattr(self.environment.parsed_options, "results_dir", None)
        if not results_dir:
            raise RuntimeError("the results folder is not set: --results-dir was not resolved")
        self.path = Path(results_dir) / request_log_name()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=OUTCOME_COLUMNS, extrasaction="ignore")
        if is_new:
            self._writer.writeheader()
        self._flusher = gevent.spawn(self._flush_forever)

    def _on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        outcome = (context or {}).get("outcome")
        if not isinstance(outcome, Outcome) or self.closed:
            return  # after close() a late call is dropped, not written to a reopened file
        if self._writer is None:
            self._open()
        assert self._writer is not None
        self._writer.writerow(outcome.as_row())
        self.rows += 1

    def _flush_forever(self) -> None:
        while self._file is not None:
            gevent.sleep(FLUSH_INTERVAL_S)
            if self._file is not None and not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        self.closed = True
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
            self._writer = None
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
