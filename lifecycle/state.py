"""What one Locust process holds for its run: its emulator, results folder, request log.

Kept in the environment's run context (core/context.py), like every room's per-run state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.context import run_context
from emulator.launcher import EmulatorProcess
from metrics import results
from metrics.recorder import RequestLog
from users.preparation import WorkerReadiness


@dataclass
class RunState:
    """This process's part of the run: its emulator, results folder and request log."""

    emulator: EmulatorProcess | None = None
    readiness: WorkerReadiness | None = None
    folder: results.RunFolder | None = None
    request_log: RequestLog | None = None
    report: Path | None = None
    finished: bool = False
    signal: int | None = None  # the interrupt that ended the run, when our handler saw one
    stopped_by_suite: bool = False  # the suite ended the test itself (a refusal, a death): no interrupt

    def stop_emulator(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def run_of(environment: Any) -> RunState:
    return run_context(environment).ensure(RunState)
