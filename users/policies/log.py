"""The policy log, policy-<role>-<hostname>-<pid>.csv (core/results.POLICY_LOG): every change of a
process's client policy (a limit, the master's shared signal, a breaker's state, the limiter's
rates), one row each, written at once (they are rare) in the folder --results-dir names when the
row is written: a worker learns it from the master's spawn message, a web-UI test has its own.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import results as layout
from metrics.health import node_name
from metrics.redaction import redactor_of
from metrics.results import AppendedCsv

MAX_KEPT = 10_000  # rows kept in memory for a reader in the same process (tests, the web UI)


class PolicyLog:
    def __init__(self, environment: Any, role: str, wall_clock: Callable[[], float] = time.time) -> None:
        self.environment = environment
        self.node = node_name(role)
        self.wall_clock = wall_clock
        self.csv = AppendedCsv(
            layout.POLICY_LOG,
            layout.policy_log_name(role, socket.gethostname(), os.getpid()),
            redactor=redactor_of(environment),
        )
        self.rows: list[dict[str, Any]] = []

    def event(self, component: str, event: str, value: float, detail: str = "") -> None:
        row = {
            "timestamp": round(self.wall_clock(), 6),
            "node": self.node,
            "component": component,
            "event": event,
            "value": round(value, 6),
            "detail": detail,
        }
        if len(self.rows) < MAX_KEPT:
            self.rows.append(row)
        folder = self._folder()
        if folder is None:
            return
        self.csv.open(folder)  # reopened in a new test's folder; nothing when already open there
        self.csv.write((row,))

    def _folder(self) -> Path | None:
        options = getattr(self.environment, "parsed_options", None)
        results_dir = getattr(options, "results_dir", None) if options is not None else None
        if not results_dir:
            return None
        folder = Path(results_dir)
        folder.mkdir(parents=True, exist_ok=True)  # a worker on another host has no folder yet
        return folder

    def close(self) -> None:
        self.csv.flush()
        self.csv.close()
