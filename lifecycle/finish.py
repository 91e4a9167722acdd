"""The finish: users stopped, final CSVs, run.json and the report, whatever ended the run.

quitting, not test_stop: in distributed runs the workers' last reports arrive after test_stop. A
second Ctrl-C while this runs keeps what is written and says how to rebuild the report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED, WorkerRunner

import shapes
from core.results import EMULATOR_STATS_JSON
from lifecycle.state import run_of
from metrics import llm, results, verdict
from users.state import users_state

logger = logging.getLogger("gemini_locust")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def on_test_stop(environment: Environment, **_: Any) -> None:
    run = run_of(environment)
    if run.folder is not None and run.folder.extra.get("runs"):
        run.folder.extra["runs"][-1]["end"] = time.time()


def on_quitting(environment: Environment, **_: Any) -> None:
    # quitting, not test_stop: in distributed runs the workers' last reports arrive after test_stop.
    run = run_of(environment)
    if run.finished:
        return
    run.finished = True
    users_state(environment).quitting = True
    runner = environment.runner
    local_or_master = runner is not None and not isinstance(runner, WorkerRunner)
    mid_run = local_or_master and runner.state not in (STATE_INIT, STATE_STOPPED)
    if mid_run:
        # Ctrl-C or SIGTERM mid-run: Locust fires quitting before it stops the users. Stop them
        # first, so nothing calls the emulator after it is gone and the final files are final.
        runner.stop()
    # A Ctrl-C that lands as the run starts (runner still in init, its start already scheduled) is
    # an interrupt too: the users Locust spawns after it make no call (users.state.quitting).
    if mid_run or (local_or_master and run.signal is not None):
        signum = run.signal or signal.SIGTERM  # SIGINT is recorded by our handler; SIGTERM is Locust's
        name = signal.Signals(signum).name
        if run.folder is not None:
            run.folder.extra["interrupted"] = f"{name} during the run"
        if environment.stats.total.num_requests == 0:
            # Nothing was measured: the exit code must not say the run went well.
            logger.error("%s before any call completed: nothing was measured", name)
            environment.process_exit_code = verdict.exit_code(
                environment.process_exit_code, interrupted_by=signum
            )
    if run.request_log is not None:
        run.request_log.close()
    folder = run.folder
    if folder is None:
        run.stop_emulator()
        return
    try:
        finish(environment, folder)
    except KeyboardInterrupt:
        # A second Ctrl-C while the final files or the report are written: keep what is written.
        run.stop_emulator()
        folder.ended_at = folder.ended_at or time.time()
        earlier = folder.extra.get("interrupted")
        folder.extra["interrupted"] = (
            f"{earlier}; SIGINT while finishing" if earlier else "SIGINT while finishing"
        )
        settings = users_state(environment).settings
        with contextlib.suppress(OSError):
            folder.write_run_json(settings.public() if settings is not None else {})
        logger.error(
            "Ctrl-C while finishing: report.html not written; rebuild it with: python -m reports %s",
            folder.folder,
        )


def finish(environment: Environment, folder: results.RunFolder) -> None:
    run = run_of(environment)
    folder.ended_at = time.time()
    folder.write_final_csvs()
    folder.extra.update(
        shape=shapes.shape_info(environment),
        stages=shapes.stage_log(environment),
        capacity=shapes.capacity_result(environment),
    )
    if run.emulator is not None:
        folder.save_json(EMULATOR_STATS_JSON, run.emulator.stats)
    run.stop_emulator()
    llm.finalize(environment, folder)
    folder.write_run_json(users_state(environment).settings.public())
    if environment.stats.total.num_requests == 0:
        logger.warning("no requests were made: no report written (results in %s)", folder.folder)
        return
    logger.info("writing the report (Ctrl-C skips it; python -m reports %s rebuilds it)", folder.folder)
    run.report = build_report_in_child(folder.folder)


def build_report_in_child(folder: Path) -> Path | None:
    """`python -m reports FOLDER` in its own process and session, which the main greenlet waits
    for cooperatively: a Ctrl-C (delivered to the main greenlet) stops the wait and the child at
    once, and the terminal's Ctrl-C never reaches the child itself. The report path, or None."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "reports", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = child.communicate()
    except BaseException:
        child.kill()
        child.wait()
        raise
    for line in err.splitlines():
        if line.startswith("warning: "):
            logger.warning("report: %s", line.removeprefix("warning: "))
        elif line.strip():
            logger.error("report not written: %s", line.removeprefix("error: "))
    lines = out.strip().splitlines()
    if child.returncode != 0 or not lines:
        return None
    return Path(lines[-1])


def announce_report(environment: Environment) -> None:
    """Print the report's path; called from Locust's quit event, after its own closing tables, so
    the path is the last thing a user sees."""
    run = run_of(environment)
    if run.report is not None:
        print(f"Report: {run.report.resolve()}", flush=True)
