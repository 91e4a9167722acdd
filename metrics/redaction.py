"""The run's secrets kept out of every output: one Redactor per run, used by every writer.

`protect_outputs` (called by start-up once the settings are known, again when the web UI's form
brings another key) adds the run's secrets to the run's Redactor (core.secrets, kept in the run
context) and to the process's log redaction. The writers take that Redactor: the results folder's
CSV writers (`metrics.results.AppendedCsv`, Locust's own CSVs through `RedactedRows`), and the
failure Locust counts for each failed call (its failures table, CSV and web UI). The report runs
in its own process without the key: it reads these files, and hides key-shaped strings itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.context import run_context
from core.secrets import Redactor, install_log_redaction


def redactor_of(environment: Any) -> Redactor:
    """The run's Redactor: until the settings are known it hides key-shaped strings only."""
    return run_context(environment).ensure(Redactor)


def protect_outputs(environment: Any, secrets: Iterable[str]) -> Redactor:
    """From now on no output of this run or log line of this process shows these secrets."""
    secrets = tuple(secrets)
    redactor = redactor_of(environment)
    redactor.add(*secrets)
    install_log_redaction(secrets)
    return redactor


class RedactedRows:
    """A csv writer whose text cells pass through a Redactor (Locust's CSV writers write through
    one: they hold failure and exception messages)."""

    def __init__(self, writer: Any, redactor: Redactor) -> None:
        self._writer = writer
        self._redactor = redactor

    def writerow(self, row: Iterable[Any]) -> Any:
        clean = self._redactor
        return self._writer.writerow([clean(cell) if isinstance(cell, str) else cell for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
