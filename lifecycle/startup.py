"""Start-up: the bundled emulator, settings, the results folder and preparation, before any load.

init must return quickly in the web UI (it answers at once; a start waits for preparation in the
/swarm request) and must finish everything in a headless run (Locust starts its run clock as soon
as init returns). Ctrl-C or SIGTERM at any point of it ends the process with one line, nothing
left behind and exit 128+signal.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import greenlet
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

import shapes
from core.options import OptionError
from emulator.launcher import EmulatorProcess, EmulatorStartError
from emulator.profiles import ConfigError, load_profile
from lifecycle import arms_driver, finish, session
from lifecycle.app_service import fill_port, start_app_service
from lifecycle.form import (
    CONFIG_ERRORS,
    check_host,
    install_start_form_check,
    model_served_warning,
    to_bundled_emulator,
)
from lifecycle.reachable import check_reachable
from lifecycle.state import RunState, run_of
from metrics import llm, results, verdict
from metrics.recorder import RequestLog
from metrics.redaction import protect_outputs
from metrics.webui import start_page_notices
from users.images import outside_loop
from users.mix import apply_mix, prepare_scenarios
from users.paid_models import require_prices
from users.policies.runtime import configure_policy
from users.policies.runtime import install as install_policies
from users.preparation import (
    Preparation,
    PreparationFailed,
    WorkerReadiness,
    announce_to_master,
    tell_master_preparation_failed,
)
from users.pricing import PriceTable
from users.settings import GeminiSettings, known_secrets
from users.state import settings_of, use_settings, users_state
from users.transports import prepare_payloads, transport_class
from users.vertex import prepare_vertex

logger = logging.getLogger("gemini_locust")
WEB_START_WAIT_S = 300.0  # a start from the web UI waits this long for workers still preparing


def fail(environment: Environment, message: str, code: int = 2) -> None:
    """A bad option ends the run with one clear line, not a traceback."""
    logger.error("%s", message)
    abandon_start_up(environment, f"start-up failed: {message}")
    sys.exit(code)


def abandon_start_up(environment: Environment, reason: str) -> None:
    """Leave nothing behind: no emulator, no half-prepared work, a closed run.json if one exists."""
    run = run_of(environment)
    users = users_state(environment)
    if users.preparation is not None:
        users.preparation.kill()
    run.stop_services()
    folder = run.folder
    if folder is not None and not run.finished:
        run.finished = True
        folder.ended_at = time.time()
        folder.extra["interrupted"] = reason
        settings = users.settings
        with contextlib.suppress(OSError):
            folder.write_run_json(settings.public() if settings is not None else {})


class _Interrupted(BaseException):
    """SIGTERM during start-up, delivered to the main greenlet like a KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _deliver_to_main(
    run: RunState, main: greenlet.greenlet, signum: int, make: Callable[[], BaseException]
) -> Callable[[], None]:
    """A gevent signal handler that throws `make()` into the main greenlet.

    From the hub, as gevent delivers its own system errors: the exception surfaces where the main
    greenlet waits (init waiting for preparation, Locust waiting for its runner, the finish waiting
    for the report's process), never in whichever greenlet happened to run (gevent would print it
    as a traceback) and never in the middle of plain code such as a held logging lock (a Python
    signal handler raising there left the lock held and start-up deadlocked).
    """

    def handler() -> None:
        run.signal = signum
        gevent.get_hub().loop.run_callback(main.throw, make())

    return handler


@contextlib.contextmanager
def startup_interrupts(environment: Environment) -> Iterator[None]:
    """Ctrl-C or SIGTERM while init runs (emulator, preparation, waiting for workers): one line,
    nothing left behind, exit 128+signal. After init, Ctrl-C still reaches Locust as the
    KeyboardInterrupt it waits for (and reaches the finish, see lifecycle.finish), and Locust's own
    SIGTERM handler takes over."""
    main = greenlet.getcurrent()
    run = run_of(environment)
    gevent.signal_handler(signal.SIGINT, _deliver_to_main(run, main, signal.SIGINT, KeyboardInterrupt))
    sigterm = gevent.signal_handler(
        signal.SIGTERM, _deliver_to_main(run, main, signal.SIGTERM, lambda: _Interrupted(signal.SIGTERM))
    )
    try:
        yield
    except (KeyboardInterrupt, _Interrupted) as exc:
        signum = exc.signum if isinstance(exc, _Interrupted) else signal.SIGINT
        name = signal.Signals(signum).name
        logger.error("%s during start-up: stopped before any load was sent", name)
        abandon_start_up(environment, f"{name} during start-up")
        sys.exit(128 + signum)
    finally:
        # Locust installs its own SIGTERM handler as soon as init returns.
        sigterm.cancel()


def configure(environment: Environment) -> None:
    """Settings, prices and the scenario mix from the options (quick); raises CONFIG_ERRORS."""
    options = environment.parsed_options
    check_host(environment.host)
    bundled_emulator = to_bundled_emulator(options, environment.host)
    settings = GeminiSettings.from_options(options, emulator=bundled_emulator)
    protect_outputs(environment, settings.secrets())  # the web UI's form may bring another key
    notice = settings.model_notice()
    if notice:
        logger.warning("%s", notice)
    prices = PriceTable.load(
        getattr(options, "pricing", "") or None, vertex_location=settings.vertex_location
    )
    if not bundled_emulator:
        # The budget fails closed: a model with no price would cost real money --max-cost never sees.
        require_prices(options, prices, settings.model)
    use_settings(environment, settings, prices)
    configure_policy(environment, options)
    apply_mix(environment)


def _import_what_calls_need(transport: str) -> None:
    # The SDK takes about a second to import and jsonschema (answer checks) a fifth of one: in a
    # thread, neither stalls the web UI nor lands inside the first measured call.
    transport_class(transport)
    importlib.import_module("jsonschema.validators")


def prepare(environment: Environment) -> None:
    """The slow part, off the event loop: the SDK imported, every scenario's requests built once."""
    sends_calls = not isinstance(environment.runner, MasterRunner)  # the master sends no requests
    transport = settings_of(environment).transport
    if sends_calls:
        outside_loop(_import_what_calls_need, transport)
        _sign_in(environment)
    prepare_scenarios(environment)
    if sends_calls:
        # Each request encoded for the transport now, not on its first call inside the load.
        specs = [spec for specs in users_state(environment).specs.values() for spec in specs]
        outside_loop(prepare_payloads, transport, specs)


def _sign_in(environment: Environment) -> None:
    """Vertex AI: this process's first token, before any load (users/vertex.py). A worker signs in
    once the master's options (and host) arrive with the first spawn message."""
    if not environment.host:
        return
    bundled = to_bundled_emulator(environment.parsed_options, environment.host)
    run = run_of(environment)
    if bundled and run.emulator is not None and settings_of(environment).backend == "vertex":
        try:
            run.emulator.wait_ready()  # its token endpoint signs this process in
        except EmulatorStartError as exc:
            raise PreparationFailed(f"the bundled emulator did not start: {exc}") from None
    prepare_vertex(environment, bundled_emulator=bundled)


def wait_until_ready(environment: Environment) -> None:
    """Emulator up, requests prepared, every expected worker prepared; raises on any failure."""
    run = run_of(environment)
    if run.emulator is not None:
        run.emulator.wait_ready()
    preparation = users_state(environment).preparation
    if preparation is not None:
        preparation.wait_logging_progress()
    if run.readiness is None:
        return
    options = environment.parsed_options
    if options.headless:
        # As long as Locust itself waits for --expect-workers (--expect-workers-max-wait, else forever).
        expected = int(getattr(options, "expect_workers", 1) or 1)
        timeout = float(getattr(options, "expect_workers_max_wait", 0) or 0) or None
    else:
        # The web UI starts with whoever is connected (Locust refuses a start with none).
        expected, timeout = 0, WEB_START_WAIT_S
    if not run.readiness.wait(expected, timeout=timeout):
        waiting = ", ".join(run.readiness.waiting_for()) or f"{expected} workers to connect"
        raise PreparationFailed(
            f"still waiting for workers to prepare their requests after {timeout:.0f} s: {waiting}"
        )


def _end_start_up_in_background(environment: Environment, message: str) -> None:
    """Web UI and workers: init did not wait, so a start-up failure found later ends the process
    here, with one line and exit 2."""
    logger.error("%s", message)
    abandon_start_up(environment, f"start-up failed: {message}")
    environment.process_exit_code = verdict.exit_code(environment.process_exit_code, start_up_failed=True)
    if environment.web_ui is not None:
        environment.web_ui.stop()
    if environment.runner is not None:
        environment.runner.quit()


def _on_preparation_failed_in_background(environment: Environment, preparation: Preparation) -> None:
    if preparation.error is not None:
        _end_start_up_in_background(environment, preparation.error)


def on_init(environment: Environment, **_: Any) -> None:
    if environment.parsed_options is None:
        return
    if arms_driver.is_driver(environment):
        arms_driver.drive(environment)  # runs one child per arm and exits: nothing starts here
    # Locust's quit event carries no environment: the report's path is announced from here.
    environment.events.quit.add_listener(lambda **_: finish.announce_report(environment))
    with startup_interrupts(environment):
        start_up(environment)


def start_up(environment: Environment) -> None:
    options = environment.parsed_options
    run = run_of(environment)
    # Before anything can print: no log line, CSV or report of this run shows a key it knows of.
    protect_outputs(environment, known_secrets(str(getattr(options, "api_key", "") or "")))
    try:
        # On every node: workers take part in open-model pacing and capacity sampling.
        shapes.setup(environment)
    except OptionError as exc:
        fail(environment, str(exc))
    install_start_form_check(environment, lambda: wait_until_ready(environment))
    install_policies(environment)  # before llm: its signal stops before the workers are told to stop
    llm.install(environment)
    preparation = Preparation(environment, prepare)
    users_state(environment).preparation = preparation
    if isinstance(environment.runner, WorkerRunner):
        # Prepared from this worker's own command line, before the master starts the test; the
        # master's options arrive with the first spawn message and are applied in on_test_start.
        announce_to_master(environment, preparation)
        preparation.on_done.append(lambda done: _on_preparation_failed_in_background(environment, done))
        try:
            users_state(environment).settings = GeminiSettings.from_options(options, emulator=True)
        except CONFIG_ERRORS as exc:
            preparation.fail(str(exc))
        preparation.start()
        return
    if not environment.host:
        try:
            # Checked here, so a bad file is one line now rather than the emulator's traceback later.
            load_profile(options.emulator_profile or None, options.emulator_config or None)
        except ConfigError as exc:
            fail(environment, f"--emulator-profile/--emulator-config: {exc}")
        seed = str(getattr(options, "emulator_seed", "") or "").strip()
        if seed and not seed.isdigit():
            fail(environment, f"--emulator-seed {seed!r} is not a whole number >= 0 (e.g. --emulator-seed 7)")
        run.emulator = EmulatorProcess(
            profile=options.emulator_profile or None,
            config=options.emulator_config or None,
            seed=int(seed) if seed else None,
        )
        # The URL is final at once (the port is bound here); readiness is awaited before any load.
        environment.host = run.emulator.launch()
        # Its death mid-run stops the run with one line at once (exit 6), not a run of refusals.
        run.emulator.watch(lambda how: finish.on_emulator_death(environment, how))
        # Custom attributes of parsed_options reach the workers with the spawn message.
        options.emulator_url = environment.host
        logger.info("no --host given: using the bundled Gemini emulator at %s", environment.host)
    try:
        configure(environment)
    except CONFIG_ERRORS as exc:
        fail(environment, str(exc))
    message = llm.check_options(environment)  # the cost budget rule and --slo
    if message:
        fail(environment, message)
    if run.emulator is None and not isinstance(environment.runner, MasterRunner):
        # A host given by the user, after the budget rule (nothing is sent to a host it refuses):
        # one connect finds a wrong or down host now, not as a run of "connection refused". The
        # master sends no calls, and its workers may sit in another network.
        try:
            check_reachable(environment.host)
            settings = settings_of(environment)
            warning = model_served_warning(environment.host, settings)
        except OptionError as exc:
            fail(environment, str(exc))
        if warning:
            logger.warning("%s", warning)
    folder = Path(options.results_dir) if options.results_dir else results.default_results_dir()
    options.results_dir = str(folder)
    try:
        if session.is_web_session(environment):
            # Several tests, one folder each (lifecycle/session.py), made as each starts.
            run.session = session.open_session(environment, folder)
        else:
            run.folder = results.RunFolder(environment, folder)
    except OSError as exc:
        fail(environment, f"--results-dir {folder}: cannot write there ({exc.strerror or exc})")
    try:
        # The user's own service (--app-command), once the folder for its output exists.
        where = run.session.folder if run.session is not None else folder
        run.app = start_app_service(environment, where)
    except OptionError as exc:
        fail(environment, str(exc))
    if run.folder is not None:
        run.folder.extra["emulator"] = run.emulator is not None
        run.folder.start_csv_writer()
    if not isinstance(environment.runner, MasterRunner):
        run.request_log = RequestLog(environment)
    else:
        run.readiness = WorkerReadiness(environment)
        run.readiness.on_failure.append(
            lambda node, reason: finish.on_worker_refused(environment, node, reason)
        )
    if run.folder is not None:
        run.folder.write_run_json(settings_of(environment).public())
    preparation.start()
    if options.headless:
        # Everything is ready before Locust starts its run clock (-t) once init returns.
        try:
            wait_until_ready(environment)
        except CONFIG_ERRORS as exc:
            fail(environment, str(exc))
        except EmulatorStartError as exc:
            fail(environment, f"the bundled emulator did not start: {exc}")
    else:
        start_page_notices(environment).append(preparation.describe)
        preparation.on_done.append(lambda done: _on_preparation_failed_in_background(environment, done))
        if run.emulator is not None:
            gevent.spawn(_await_emulator_in_background, environment)


def _await_emulator_in_background(environment: Environment) -> None:
    run = run_of(environment)
    try:
        run.emulator.wait_ready()  # type: ignore[union-attr]
    except EmulatorStartError as exc:
        _end_start_up_in_background(environment, f"the bundled emulator did not start: {exc}")


def _prepare_for_this_test(environment: Environment) -> None:
    """After init's preparation: options (the master's, or the web form's) applied, and only what
    they changed prepared again. Raises CONFIG_ERRORS."""
    users_state(environment).preparation.wait_logging_progress()
    configure(environment)
    prepare(environment)


def on_test_start(environment: Environment, **_: Any) -> None:
    run = run_of(environment)
    if isinstance(environment.runner, WorkerRunner):
        # The master's options (and host) arrived with this spawn message: prepare again only what
        # they changed, after the preparation begun at init.
        try:
            _prepare_for_this_test(environment)
        except CONFIG_ERRORS as exc:
            tell_master_preparation_failed(environment, str(exc))  # the master prints it, exits 2
            fail(environment, str(exc))
        if run.request_log is None:
            run.request_log = RequestLog(environment)
        else:
            run.request_log.new_test()  # a web-UI session's next test: its own folder
        return
    fill_port(environment, run.app)  # before the test's options are frozen for its run.json
    if run.session is not None:
        session.begin_test(environment)
    elif run.folder is not None:
        # Workers learn the folder from this process's options with the spawn message.
        environment.parsed_options.results_dir = str(run.folder.folder)
        now = time.time()
        if run.folder.started_at is None:
            run.folder.started_at = now
        run.folder.extra.setdefault("runs", []).append({"start": now, "end": None})
    # The web UI's start form may have changed the options since init. A bad value there stops
    # this run and leaves the UI up; it never exits the process mid-run.
    try:
        _prepare_for_this_test(environment)
    except CONFIG_ERRORS as exc:
        if environment.parsed_options.headless:
            fail(environment, str(exc))
        logger.error("%s: the run was stopped", exc)
        if run.session is not None and run.folder is not None:
            run.folder.extra["interrupted"] = f"stopped at its start: {exc}"
        gevent.spawn_later(0, environment.runner.stop)
        return
    session.options_applied(environment)
