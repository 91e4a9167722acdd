"""What Locust loads: the Gemini user classes, the suite's options and its lifecycle listeners.

With no --host, the run goes to the bundled emulator, started here on a free loopback port and
stopped when Locust quits. Everything else lives in users/, metrics/, reports/ and emulator/.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner, WorkerRunner

import shapes
from emulator.launcher import EmulatorProcess
from fixtures.loading import FixtureError
from metrics import llm, results
from metrics.recorder import RequestLog
from users.images import ImageLimitError
from users.mix import apply_mix, parse_mix, prepare_scenarios
from users.moderation import TextModerationUser
from users.pricing import PriceTable, PricingError
from users.scenario_options import ScenarioSettings, add_scenario_arguments
from users.settings import GeminiSettings, OptionError
from users.settings import add_arguments as add_gemini_arguments
from users.streaming import StreamingUser
from users.transports import transport_class
from users.vision import VisionUser

__all__ = ["StreamingUser", "TextModerationUser", "VisionUser"]

logger = logging.getLogger("gemini_locust")
# One INFO line per HTTP request from the SDKs' clients would drown Locust's own output.
for _chatty in ("httpx", "httpx2", "google_genai", "google_genai.models"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)


class _Run:
    """This process's part of the run: its emulator, results folder and request log."""

    emulator: EmulatorProcess | None = None
    folder: results.RunFolder | None = None
    request_log: RequestLog | None = None
    report: Path | None = None
    finished = False


run = _Run()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    # The web UI (and its start form, which can carry an API key) listens on loopback unless the
    # user asks otherwise with --web-host.
    # Likewise the master's port for workers: multi-host runs pass --master-bind-host 0.0.0.0.
    parser.set_defaults(web_host="127.0.0.1", master_bind_host="127.0.0.1")
    add_gemini_arguments(parser)
    add_scenario_arguments(parser)
    shapes.add_shape_arguments(parser)
    llm.add_arguments(parser)
    results.add_arguments(parser)
    # Start-up options only: the emulator starts before the web UI, so they stay off its form.
    parser.add_argument(
        "--emulator-profile",
        default="",
        help="bundled emulator profile (default: default)",
        include_in_web_ui=False,
    )
    parser.add_argument(
        "--emulator-config",
        default="",
        help="JSON file that tunes the bundled emulator",
        include_in_web_ui=False,
    )


def _fail(message: str) -> None:
    """A bad option ends the run with one clear line, not a traceback."""
    logger.error("%s", message)
    _stop_emulator()
    sys.exit(2)


# What a bad option, fixture or price file raises: each carries one line naming what to fix.
CONFIG_ERRORS = (OptionError, PricingError, FixtureError, ImageLimitError)


def _check_host(host: str | None) -> None:
    parts = urlsplit(host or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(
            f"--host {host!r} is not an http(s) URL: use e.g. https://generativelanguage.googleapis.com, "
            "or drop --host to use the bundled emulator"
        )


def _configure(environment: Environment) -> None:
    """Settings, prices and every scenario's requests from the options; raises CONFIG_ERRORS."""
    options = environment.parsed_options
    emulator_url = getattr(options, "emulator_url", None)
    _check_host(environment.host)
    environment.gemini_settings = GeminiSettings.from_options(
        options, emulator=bool(emulator_url) and environment.host == emulator_url
    )
    environment.gemini_prices = PriceTable.load(getattr(options, "pricing", "") or None)
    transport_class(environment.gemini_settings.transport)  # import the SDK now, not mid-spawn
    # Weights from --mix, then every scenario's requests built once, before any load.
    apply_mix(environment)
    prepare_scenarios(environment)


def _configure_or_fail(environment: Environment) -> None:
    try:
        _configure(environment)
    except CONFIG_ERRORS as exc:
        _fail(str(exc))


def _start_form_check(environment: Environment) -> Callable[[Mapping[str, str]], str | None]:
    """The web UI's start form: its Gemini and scenario values are checked before the run starts."""

    def check(form: Mapping[str, str]) -> str | None:
        options = argparse.Namespace(**vars(environment.parsed_options))
        for name, value in form.items():
            if hasattr(options, name):
                setattr(options, name, value)
        emulator_url = getattr(options, "emulator_url", None)
        host = form.get("host") or environment.host
        try:
            GeminiSettings.from_options(options, emulator=bool(emulator_url) and host == emulator_url)
            ScenarioSettings.from_options(options)
            parse_mix(str(getattr(options, "mix", "") or ""))
        except OptionError as exc:
            return str(exc)
        return None

    return check


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    try:
        # On every node: workers take part in open-model pacing and capacity sampling.
        shapes.setup(environment)
    except shapes.ShapeOptionError as exc:
        _fail(str(exc))
    environment.start_form_checks = [_start_form_check(environment)]
    llm.install(environment)
    if isinstance(environment.runner, WorkerRunner):
        return  # workers get the master's options with the first spawn message: see _on_test_start
    if not environment.host:
        run.emulator = EmulatorProcess(
            profile=options.emulator_profile or None, config=options.emulator_config or None
        )
        try:
            environment.host = run.emulator.start()
        except Exception as exc:  # noqa: BLE001 - any start failure is reported in one line
            _fail(f"the bundled emulator did not start: {exc}")
        # Custom attributes of parsed_options reach the workers with the spawn message.
        options.emulator_url = environment.host
        logger.info("no --host given: using the bundled Gemini emulator at %s", environment.host)
    _configure_or_fail(environment)
    message = llm.check_options(environment)  # the cost budget rule and --slo
    if message:
        _fail(message)
    folder = Path(options.results_dir) if options.results_dir else results.default_results_dir()
    options.results_dir = str(folder)
    try:
        run.folder = results.RunFolder(environment, folder)
    except OSError as exc:
        _fail(f"--results-dir {folder}: cannot write there ({exc.strerror or exc})")
    run.folder.extra["emulator"] = run.emulator is not None
    run.folder.start_csv_writer()
    if not isinstance(environment.runner, MasterRunner):
        run.request_log = RequestLog(environment)
    run.folder.write_run_json(environment.gemini_settings.public())


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        _configure_or_fail(environment)
        if run.request_log is None:
            run.request_log = RequestLog(environment)
        return
    if run.folder is not None:
        # Workers learn the folder from this process's options with the spawn message.
        environment.parsed_options.results_dir = str(run.folder.folder)
        now = time.time()
        if run.folder.started_at is None:
            run.folder.started_at = now
        # The web UI can start several tests in one process: the report covers the last one.
        run.folder.extra.setdefault("runs", []).append({"start": now, "end": None})
    # The web UI's start form may have changed the options since init. A bad value there stops
    # this run and leaves the UI up; it never exits the process mid-run.
    try:
        _configure(environment)
    except CONFIG_ERRORS as exc:
        if environment.parsed_options.headless:
            _fail(str(exc))
        logger.error("%s: the run was stopped", exc)
        gevent.spawn_later(0, environment.runner.stop)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if run.folder is not None and run.folder.extra.get("runs"):
        run.folder.extra["runs"][-1]["end"] = time.time()


def _stop_emulator() -> None:
    if run.emulator is not None:
        run.emulator.stop()
        run.emulator = None


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    # quitting, not test_stop: in distributed runs the workers' last reports arrive after test_stop.
    if run.finished:
        return
    run.finished = True
    runner = environment.runner
    if (
        runner is not None
        and not isinstance(runner, WorkerRunner)
        and runner.state not in (STATE_INIT, STATE_STOPPED)
    ):
        # Ctrl-C or SIGTERM mid-run: Locust fires quitting before it stops the users. Stop them
        # first, so nothing calls the emulator after it is gone and the final files are final.
        runner.stop()
    if run.request_log is not None:
        run.request_log.close()
    folder = run.folder
    if folder is None:
        _stop_emulator()
        return
    folder.ended_at = time.time()
    folder.write_final_csvs()
    folder.extra.update(
        shape=shapes.shape_info(environment),
        stages=shapes.stage_log(environment),
        capacity=shapes.capacity_result(environment),
    )
    if run.emulator is not None:
        folder.save_json("emulator_stats.json", run.emulator.stats)
    _stop_emulator()
    llm.finalize(environment, folder)
    folder.write_run_json(environment.gemini_settings.public())
    if environment.stats.total.num_requests == 0:
        logger.warning("no requests were made: no report written (results in %s)", folder.folder)
        return
    from reports import ReportInputError, build_report

    try:
        report = build_report(folder.folder)
    except ReportInputError as exc:
        logger.error("report not written: %s", exc)
        return
    run.report = report


@events.quit.add_listener
def _announce_report(**_: Any) -> None:
    # After Locust's own closing tables, so the path is the last thing a user sees.
    if run.report is not None:
        print(f"Report: {run.report.resolve()}", flush=True)
