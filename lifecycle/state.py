"""What one Locust process holds for its run: its emulator, results folder, request log, and in a
web-UI session the session's folder and its tests.

Kept in the environment's run context (core/context.py), like every room's per-run state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from core.context import run_context
from emulator.launcher import EmulatorProcess
from lifecycle.app_service import AppService
from metrics import results
from metrics.recorder import RequestLog
from users.preparation import WorkerReadiness


@dataclass
class SessionTest:
    """One test started from the web UI: its own numbered folder (lifecycle/session.py)."""

    number: int
    folder: results.RunFolder
    started: float
    shape: dict[str, Any] | None  # shapes.shape_info when it started: the form's choice
    interrupted: str | None = None  # set when the quit cut it short
    reporter: gevent.Greenlet | None = None  # builds its report after it ended

    __test__ = False  # not a pytest class, whatever imports it


@dataclass
class Session:
    """A web-UI session: results/<session>/, one folder per test in it."""

    folder: Path
    tests: list[SessionTest] = field(default_factory=list)
    current: SessionTest | None = None  # the test running now
    measured: bool = False  # some test measured a call


@dataclass
class RunState:
    """This process's part of the run: its emulator, results folder and request log."""

    emulator: EmulatorProcess | None = None
    app: AppService | None = None  # the user's service, when --app-command started it
    readiness: WorkerReadiness | None = None
    # Headless: the run's folder. Web-UI session: the running test's folder (None between tests).
    folder: results.RunFolder | None = None
    session: Session | None = None  # a web-UI session (master or the only process)
    request_log: RequestLog | None = None
    report: Path | None = None
    finished: bool = False
    signal: int | None = None  # the interrupt that ended the run, when our handler saw one
    stopped_by_suite: bool = False  # the suite ended the test itself (a refusal, a death): no interrupt

    def stop_services(self) -> None:
        """The user's service first (it calls the emulator), then the bundled emulator."""
        if self.app is not None:
            self.app.stop()
            self.app = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def run_of(environment: Any) -> RunState:
    return run_context(environment).ensure(RunState)
