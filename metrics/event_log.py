"""A process's event log: a CSV of the results folder, one row per event, written at once (events
are rare), in the folder --results-dir names when the row is written (a worker learns it from the
master's spawn message, a web-UI test has its own). The client policy's log and the auth log are
two of them."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from core.results import CsvFile, process_log_name
from metrics.health import node_name
from metrics.redaction import redactor_of
from metrics.results import AppendedCsv

MAX_KEPT = 10_000  # rows kept in memory for a reader in the same process (tests, the web UI)


class EventLog:
    """`spec`'s file of this process (<kind>-<role>-<hostname>-<pid>.csv); `node` names the
    process in its rows, as health.csv does."""

    def __init__(self, environment: Any, spec: CsvFile, role: str) -> None:
        self.environment = environment
        self.node = node_name(role)
        name = process_log_name(spec.name, role, socket.gethostname(), os.getpid())
        self.csv = AppendedCsv(spec, name, redactor=redactor_of(environment))
        self.rows: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
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
