"""The finish: users stopped, final CSVs, run.json and the report, whatever ended the run.

quitting, not test_stop: in distributed runs the workers' last reports arrive after test_stop. A
second Ctrl-C while this runs keeps what is written and says how to rebuild the report. A web-UI
session finishes each test at its own end instead (lifecycle/session.py); here only the quit: a
test still running is finished the same way, and the reports still being built are waited for.

What ends a run early also lives here: a worker that refuses to start once the test has begun
(on_worker_refused, exit 2) and the bundled emulator's death (on_emulator_death, exit 6) each stop
the run with one line and go into run.json, from which the report says what happened. A test that
ran and measured nothing exits 5 (metrics/verdict.py has every code).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner

import shapes
from core.results import EMULATOR_STATS_JSON, iso_time
from lifecycle import session
from lifecycle.app_service import record_model_calls
from lifecycle.report_child import build_report_in_child
from lifecycle.state import run_of
from metrics import llm, results, verdict
from users.state import users_state
from users.vertex import close_vertex

logger = logging.getLogger("gemini_locust")


def on_test_stop(environment: Environment, **_: Any) -> None:
    run = run_of(environment)
    if run.session is None and run.folder is not None and run.folder.extra.get("runs"):
        run.folder.extra["runs"][-1]["end"] = time.time()


def on_quitting(environment: Environment, **_: Any) -> None:
    # quitting, not test_stop: in distributed runs the workers' last reports arrive after test_stop.
    run = run_of(environment)
    if run.finished:
        return
    run.finished = True
    users_state(environment).quitting = True
    close_vertex(environment)  # no token renewal once the process quits
    runner = environment.runner
    local_or_master = runner is not None and not isinstance(runner, WorkerRunner)
    # Spawning or running: nothing of ours or Locust's (--run-time, the budget, the last worker
    # quitting) began stopping it, which leaves a master "stopping" until its workers answer.
    mid_run = _test_running(environment)
    # A Ctrl-C that lands as the run starts (runner still in init, its start already scheduled) is
    # an interrupt too: the users Locust spawns after it make no call (users.state.quitting).
    interrupt: int | None = None
    if local_or_master and ((mid_run and not run.stopped_by_suite) or run.signal is not None):
        interrupt = run.signal or signal.SIGTERM  # SIGINT is recorded by our handler; SIGTERM is Locust's
    if run.session is not None:
        session.quit_session(environment, mid_run, interrupt)
        return
    if mid_run:
        # Ctrl-C or SIGTERM mid-run (on any node): Locust fires quitting before it stops the users.
        # Stop them first, so nothing calls the emulator after it is gone, the calls they cut off
        # are logged as cancelled before the request log closes, and the final files are final.
        runner.stop()
    if interrupt is not None:
        signum = interrupt
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
        run.stop_services()
        return
    try:
        finish(environment, folder)
    except KeyboardInterrupt:
        # A second Ctrl-C while the final files or the report are written: keep what is written.
        run.stop_services()
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
    try:
        record_model_calls(environment, folder)  # an app run's model calls, before the emulator goes
        if run.emulator is not None:
            died = run.emulator.exit_description()
            if died is None:
                folder.save_json(EMULATOR_STATS_JSON, run.emulator.stats)
            elif "emulator_died" not in folder.extra:
                # It died as the run ended, before its watcher could say so.
                _record_emulator_death(environment, died)
    finally:
        run.stop_services()
    measured = environment.stats.total.num_requests > 0
    tested = bool(folder.extra.get("runs"))
    if tested and not measured:
        # The SLO verdict (llm.finalize) comes after: a failing gate still says 3.
        environment.process_exit_code = verdict.exit_code(
            environment.process_exit_code, nothing_measured=True
        )
    llm.finalize(environment, folder)
    folder.write_run_json(users_state(environment).settings.public())
    if not measured:
        if not tested or run.signal is not None or folder.extra.get("interrupted"):
            logger.warning("no requests were made: no report written (results in %s)", folder.folder)
            return
        # The test ran and measured nothing: the report says why (refused workers, a dead emulator).
        logger.error("nothing was measured: not one call completed (exit %s)", environment.process_exit_code)
    logger.info("writing the report (Ctrl-C skips it; python -m reports %s rebuilds it)", folder.folder)
    run.report = build_report_in_child(folder.folder)


def _test_running(environment: Environment) -> bool:
    runner = environment.runner
    return runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING)


def stop_run(environment: Environment) -> None:
    """End the test as --run-time would: a headless run quits (the finish follows), the web UI
    stops the test and stays up. Call from its own greenlet: stopping kills the runner's greenlets."""
    runner = environment.runner
    if runner is None:
        return
    run_of(environment).stopped_by_suite = True
    if getattr(environment.parsed_options, "headless", False) or environment.web_ui is None:
        runner.quit()
    else:
        runner.stop()


def _stop_when_running(environment: Environment) -> None:
    """Stop the test now, or as soon as it starts (a failure found before the start)."""
    if _test_running(environment):
        gevent.spawn(stop_run, environment)
        return

    def on_start(**_: Any) -> None:
        environment.events.test_start.remove_listener(on_start)
        gevent.spawn(stop_run, environment)

    environment.events.test_start.add_listener(on_start)


def on_worker_refused(environment: Environment, worker: str, reason: str) -> None:
    """The master heard that a worker could not prepare its requests (users.preparation
    WorkerReadiness, which logged the reason). Recorded for run.json and the report; once the test
    runs (the master's options reached the worker with the spawn message), the run stops here and
    exits 2. Before that, the wait for the workers raises instead (lifecycle/startup.py)."""
    run = run_of(environment)
    if run.folder is not None:
        refused = run.folder.extra.setdefault("refused_workers", [])
        refused.append({"worker": worker, "reason": reason, "at": iso_time(time.time())})
    if run.finished or not _test_running(environment):
        return
    logger.error("stopping the run: worker %s refused to start", worker)
    environment.process_exit_code = verdict.exit_code(environment.process_exit_code, start_up_failed=True)
    gevent.spawn(stop_run, environment)


def _record_emulator_death(environment: Environment, how: str) -> None:
    run = run_of(environment)
    emulator = run.emulator
    if run.folder is not None:
        run.folder.extra["emulator_died"] = {
            "at": iso_time(time.time()),
            "how": how,
            "pid": emulator.pid if emulator is not None else None,
        }
    environment.process_exit_code = verdict.exit_code(environment.process_exit_code, run_broken=True)


def on_emulator_death(environment: Environment, how: str) -> None:
    """The bundled emulator ended by itself (emulator.launcher EmulatorProcess.watch): one line,
    run.json's emulator_died, exit 6, and the test stops at once (or as it starts, when the emulator
    died before it). A death before the emulator was ready is start-up's to report (exit 2)."""
    run = run_of(environment)
    emulator = run.emulator
    if emulator is None or not emulator.ready or run.finished:
        return
    logger.error(
        "the bundled emulator (pid %s) died: %s; stopping the run (calls in flight failed)",
        emulator.pid,
        how,
    )
    _record_emulator_death(environment, how)
    _stop_when_running(environment)


def announce_report(environment: Environment) -> None:
    """Print the report's path; called from Locust's quit event, after its own closing tables, so
    the path is the last thing a user sees."""
    run = run_of(environment)
    if run.report is not None:
        print(f"Report: {run.report.resolve()}", flush=True)
