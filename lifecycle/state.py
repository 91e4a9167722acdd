"""What one Locust process holds for its run: its emulator, results folder, request log."""

from __future__ import annotations

from pathlib import Path

from locust.env import Environment

from emulator.launcher import EmulatorProcess
from metrics import results
from metrics.recorder import RequestLog
from users.preparation import WorkerReadiness


class RunState:
    """This process's part of the run: its emulator, results folder and request log."""

    environment: Environment | None = None
    emulator: EmulatorProcess | None = None
    readiness: WorkerReadiness | None = None
    folder: results.RunFolder | None = None
    request_log: RequestLog | None = None
    report: Path | None = None
    finished = False
    signal: int | None = None  # the interrupt that ended the run, when our handler saw one


run = RunState()


def stop_emulator() -> None:
    if run.emulator is not None:
        run.emulator.stop()
        run.emulator = None
