"""A web-UI session: one folder, run.json, request log and report per test, and an index page.

The web UI can start many tests in one process. Each gets results/<session>/<nn>-<start time>/
(core/results.py's layout), a complete results folder of its own, so nothing of one test (options,
shape, stages, SLO verdicts, budget, start and end) leaks into another's files or report:

- begin_test (test_start, from lifecycle/startup.py): the folder is made and --results-dir points
  at it, so Locust's CSVs, the LLM files, and every process's request log (workers learn it with the
  spawn message) are this test's own; the options the form submitted are frozen for its run.json.
- end_test (test_stop): by then the workers' last reports are in (metrics/final_reports.py waits
  for each at test_stopping, before Locust's test_stop), so the test's numbers are final. Its CSVs,
  LLM summary, verdict and run.json are written at once, with no wait that could let a new test
  clear the stats first; the report is built afterwards in a greenlet of its own, then the index.
- quit_session (quitting, from lifecycle/finish.py): a test still running is ended the same way,
  the reports still being built are awaited (a second Ctrl-C stops them and says how to rebuild
  them), and the index is written last.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment

import shapes
from core.results import EMULATOR_STATS_JSON, SESSION_INDEX_HTML, numbered_test_folder, write_atomically
from lifecycle import app_service
from lifecycle.report_child import build_report_in_child
from lifecycle.state import Session, SessionTest, run_of
from metrics import llm, results, verdict
from metrics.session_index import write_session_index
from users.state import users_state

logger = logging.getLogger("gemini_locust")


def is_web_session(environment: Environment) -> bool:
    """A web UI that can start several tests (master or only process; never a headless run)."""
    return environment.web_ui is not None and not getattr(environment.parsed_options, "headless", False)


def open_session(environment: Environment, folder: Path) -> Session:
    """The session's folder, made (an earlier run or session in it set aside) with an empty index;
    each test's end is wired. Raises OSError when the folder cannot be written."""
    results.set_aside_previous_run(folder)
    folder.mkdir(parents=True, exist_ok=True)
    session = Session(folder)
    write_session_index(folder)
    # At init, after shapes and metrics wired theirs: by then the stage log is closed at the stop.
    environment.events.test_stop.add_listener(lambda **_: end_test(environment))
    return session


def begin_test(environment: Environment) -> None:
    """A test starts: its own numbered folder, which --results-dir names while it runs."""
    run = run_of(environment)
    session = run.session
    if session is None:
        return
    if session.current is not None:  # its test_stop never came (a master that was still stopping)
        end_test(environment)
    now = time.time()
    number = len(session.tests) + 1
    path = session.folder / numbered_test_folder(number, now)
    environment.parsed_options.results_dir = str(path)
    try:
        folder = results.RunFolder(environment, path)
    except OSError as exc:
        logger.error("test %d: cannot write %s (%s): the test was stopped", number, path, exc.strerror or exc)
        gevent.spawn_later(0, environment.runner.stop)
        return
    folder.started_at = now
    folder.freeze_options()
    folder.extra.update(emulator=run.emulator is not None, runs=[{"start": now, "end": None}])
    test = SessionTest(number, folder, now, shapes.shape_info(environment))
    session.tests.append(test)
    session.current = test
    run.folder = folder
    run.stopped_by_suite = False  # what stopped the previous test says nothing about this one
    folder.start_csv_writer()
    if run.request_log is not None:
        run.request_log.new_test()
    logger.info("test %d: results in %s", number, path)


def options_applied(environment: Environment) -> None:
    """The test's options are applied: its run.json says so from its start."""
    run = run_of(environment)
    if run.session is not None and run.session.current is not None and run.folder is not None:
        _write_run_json(environment, run.folder)


def _settings_now(environment: Environment) -> dict[str, Any]:
    settings = users_state(environment).settings
    return settings.public() if settings is not None else {}


def _write_run_json(
    environment: Environment, folder: results.RunFolder, public_settings: dict[str, Any] | None = None
) -> None:
    try:
        folder.write_run_json(_settings_now(environment) if public_settings is None else public_settings)
    except OSError as exc:
        logger.error("could not write %s: %s", folder.folder, exc)


def end_test(environment: Environment) -> None:
    """The running test has stopped: its files, summary, verdict and run.json now; its report in a
    greenlet of its own. Nothing here waits, so a test started meanwhile cannot clear these stats."""
    run = run_of(environment)
    session = run.session
    test = session.current if session is not None else None
    if session is None or test is None:
        return  # Locust fires test_stop also when it quits with no test running
    session.current = None
    run.folder = None
    folder = test.folder
    now = time.time()
    folder.ended_at = now
    folder.extra["runs"] = [{"start": test.started, "end": now}]
    shaped = test.shape is not None
    folder.extra.update(
        shape=test.shape,
        # The stage log is the shape runtime's, reset only when a shape starts: a test without a
        # shape must not inherit the previous test's stages.
        stages=shapes.stage_log(environment) if shaped else [],
        capacity=shapes.capacity_result(environment) if shaped else None,
    )
    if test.interrupted:
        folder.extra["interrupted"] = test.interrupted
    measured = environment.stats.total.num_requests > 0
    session.measured = session.measured or measured
    try:
        folder.write_final_csvs()
        if run.request_log is not None:
            run.request_log.close()
        llm.end_test(environment, folder)
        _keep_health_warnings_of(folder, test.started, now)
    finally:
        _write_run_json(environment, folder)
    _write_index(session)
    if not measured and test.interrupted:
        logger.warning(
            "test %d measured nothing: no report written (results in %s)", test.number, folder.folder
        )
        return
    # The settings of this test, not of one the form starts while its model calls are fetched.
    test.reporter = gevent.spawn(
        _attribute_and_report, environment, session, test, _settings_now(environment)
    )


def _attribute_and_report(
    environment: Environment, session: Session, test: SessionTest, public_settings: dict[str, Any]
) -> None:
    """An app test's model calls (asked of the model host: it yields, so not in end_test), then
    its report."""
    if app_service.ran_app(test.folder.options or {}):
        app_service.record_model_calls(environment, test.folder)
        _write_run_json(environment, test.folder, public_settings)
    _build_report(session, test)


def _keep_health_warnings_of(folder: results.RunFolder, start: float, end: float) -> None:
    """The session's health detector keeps every warning so far: this test shows only its own."""
    warnings = folder.extra.get("health_warnings") or []
    folder.extra["health_warnings"] = [w for w in warnings if w["end"] >= start and w["start"] <= end]


def _build_report(session: Session, test: SessionTest) -> None:
    path = test.folder.folder
    logger.info("test %d: writing its report (python -m reports %s rebuilds it)", test.number, path)
    report = build_report_in_child(path, background=True)
    if report is not None:
        logger.info("test %d: report %s", test.number, report.resolve())
    _write_index(session)


def _write_index(session: Session) -> None:
    try:
        write_session_index(session.folder)
    except OSError as exc:
        logger.error("could not write %s: %s", session.folder / SESSION_INDEX_HTML, exc)


def quit_session(environment: Environment, mid_run: bool, interrupt: int | None) -> None:
    """Locust quits: a test still running is ended like any other (marked interrupted when a signal
    ended it), the reports being built are awaited, then the emulator's counters and the index."""
    run = run_of(environment)
    session = run.session
    assert session is not None
    name = signal.Signals(interrupt).name if interrupt is not None else None
    if session.current is not None and name is not None and mid_run:
        session.current.interrupted = f"{name} during the run"
    if mid_run:
        # Stopping fires test_stop, which ends the test (end_test) with its final numbers.
        environment.runner.stop()  # type: ignore[union-attr]
    end_test(environment)  # a test whose stop did not fire test_stop (a master still stopping)
    if name is not None and not session.measured:
        logger.error("%s before any call completed: nothing was measured", name)
        environment.process_exit_code = verdict.exit_code(
            environment.process_exit_code, interrupted_by=interrupt
        )
    elif session.tests and not session.measured:
        environment.process_exit_code = verdict.exit_code(
            environment.process_exit_code, nothing_measured=True
        )
    _await_reports(session)
    _save_emulator_stats(environment, session.folder)
    run.stop_services()
    llm.finalize(environment, None, summarize=False)  # each test was summarized at its end
    if run.request_log is not None:
        run.request_log.close()
    _write_index(session)
    run.report = session.folder / SESSION_INDEX_HTML


def _await_reports(session: Session) -> None:
    """Wait for the reports still being built; a Ctrl-C stops them, keeping every other file."""
    pending = [test for test in session.tests if test.reporter is not None and not test.reporter.dead]
    try:
        gevent.joinall([test.reporter for test in pending if test.reporter is not None])
    except KeyboardInterrupt:
        for test in pending:
            if test.reporter is not None and not test.reporter.dead:
                test.reporter.kill(block=True)  # its child process is killed with it
                logger.error(
                    "Ctrl-C while finishing: test %d's report not written; rebuild it with: "
                    "python -m reports %s",
                    test.number,
                    test.folder.folder,
                )


def _save_emulator_stats(environment: Environment, folder: Path) -> None:
    """The bundled emulator's counters over the whole session, beside the index."""
    emulator = run_of(environment).emulator
    if emulator is None or emulator.exit_description() is not None:
        return
    try:
        stats: Any = emulator.stats()
        write_atomically(folder / EMULATOR_STATS_JSON, json.dumps(stats, indent=2))
    except Exception as exc:  # noqa: BLE001 - a missing side file must not lose the session
        logger.warning("could not save %s: %s", EMULATOR_STATS_JSON, exc)
