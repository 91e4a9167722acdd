"""The `--compare` driver: one child Locust per arm, one after the other, then the comparison report.

A headless run given --compare becomes this driver at init, before anything starts: no emulator,
no stats, no results of its own but the comparison. Each arm is the same command line with the
arm's value and its own results folder (lifecycle/arms.py), run to its end with its output printed
under its label, so progress shows on long work. Ctrl-C or SIGTERM goes to the running arm (in its
own process group, so the terminal's Ctrl-C reaches it once, through the driver) and no later arm
starts; the comparison covers the arms that ran. An arm that exits 2 (an option it refused, a
start-up failure) stops the rest: the others would compare against nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import gevent
from locust import argument_parser
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from core.options import OptionError
from emulator.profiles import ConfigError, load_profile
from lifecycle import arms
from lifecycle.form import CONFIG_ERRORS, check_start
from lifecycle.report_child import PROJECT_ROOT
from metrics import results, verdict
from metrics.redaction import protect_outputs
from users.mix import check_scenario_inputs
from users.settings import known_secrets

logger = logging.getLogger("gemini_locust")
BUNDLED_EMULATOR_PLACEHOLDER = "http://127.0.0.1"  # checks only: each arm starts its own emulator
API_KEY_VARIABLE = "GEMINI_API_KEY"


@dataclass
class Driver:
    environment: Environment
    arms: list[arms.Arm]
    parser: argparse.ArgumentParser
    results_dir: Path
    codes: dict[int, int] = field(default_factory=dict)  # arm number -> exit code
    interrupted_by: int | None = None
    child: subprocess.Popen | None = None

    def forward(self, signum: int) -> None:
        """A signal for the driver: the running child gets it, and no later arm starts."""
        self.interrupted_by = self.interrupted_by or signum
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signum)


def is_driver(environment: Environment) -> bool:
    """Whether this process was asked to compare (a bad --compare is the driver's to refuse)."""
    options = environment.parsed_options
    if options is None:
        return False
    return bool(
        str(getattr(options, "compare", "") or "").strip() or getattr(options, "compare_policies", "")
    )


def _refuse(message: str) -> NoReturn:
    logger.error("%s", message)
    sys.exit(verdict.START_UP_EXIT_CODE)


def drive(environment: Environment) -> NoReturn:
    """Run the comparison and exit with its code (lifecycle.arms.exit_code_of_comparison)."""
    options = environment.parsed_options
    redactor = protect_outputs(environment, known_secrets(str(getattr(options, "api_key", "") or "")))
    runner = environment.runner
    if isinstance(runner, MasterRunner | WorkerRunner) or options.master or options.worker:
        _refuse(
            f"{arms.COMPARE} runs each arm as one headless process: drop --master/--worker/--processes "
            "(an arm cannot be distributed)"
        )
    if not options.headless:
        _refuse(f"{arms.COMPARE} is headless only: add --headless (the web UI runs one test at a time)")
    if not options.run_time and not str(getattr(options, "shape", "") or "").strip():
        _refuse(f"{arms.COMPARE} runs each arm to its end: give -t/--run-time (e.g. -t 60s) or a --shape")
    parser = argument_parser.get_parser()
    try:
        planned = arms.plan_arms(arms.requested(options), parser)
        for arm in planned:
            check_arm(environment, arm)
    except OptionError as exc:
        _refuse(str(exc))
    folder = Path(options.results_dir) if options.results_dir else results.default_results_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _refuse(f"--results-dir {folder}: cannot write there ({exc.strerror or exc})")
    driver = Driver(environment, planned, parser, folder)
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, driver.forward, signum)
    for arm in planned:
        if driver.interrupted_by is not None:
            break
        code = run_arm(driver, arm, redactor)
        driver.codes[arm.number] = code
        if code == verdict.START_UP_EXIT_CODE:
            logger.error(
                "compare: arm %s refused to start (exit 2): the remaining arms are not run", arm.label
            )
            break
    ran = [arm for arm in planned if arm.number in driver.codes]
    report = build_comparison(driver, ran)
    code = arms.exit_code_of_comparison(list(driver.codes.values()), driver.interrupted_by)
    for arm in planned:
        state = f"exit {driver.codes[arm.number]}" if arm.number in driver.codes else "not run"
        logger.info("compare: arm %s: %s (%s)", arm.label, state, folder / arm.folder_name)
    if report is not None:
        print(f"Report: {report.resolve()}", flush=True)
    logger.info("compare: exit code %d (0 only when every arm's code is 0)", code)
    sys.exit(code)


def check_arm(environment: Environment, arm: arms.Arm) -> None:
    """What a start checks, with this arm's value, before any arm runs; raises OptionError."""
    options = argparse.Namespace(**vars(environment.parsed_options))
    setattr(options, arm.dest, arm.parsed)
    # The checks of a start to the bundled emulator when no --host is given; with a host, the checks
    # of that host (reachable, the model served, its price) like each arm's own start-up.
    options.host = environment.host or BUNDLED_EMULATOR_PLACEHOLDER
    options.emulator_url = None if environment.host else options.host
    try:
        check_start(environment, options)
        # The scenarios' own checks too (they read fixture files: fine here, before any arm, but
        # not in the web UI's start, which must answer at once).
        check_scenario_inputs(environment, options)
        if not environment.host:
            load_profile(options.emulator_profile or None, options.emulator_config or None)
    except CONFIG_ERRORS as exc:
        raise OptionError(f"{arms.COMPARE} {arm.flag}={arm.value}: {exc}") from None
    except ConfigError as exc:
        message = f"--emulator-profile/--emulator-config: {exc}"
        raise OptionError(f"{arms.COMPARE} {arm.flag}={arm.value}: {message}") from None


def _child_environment(environment: Environment) -> tuple[dict[str, str], tuple[str, ...]]:
    """The arm's environment variables, and the options to leave off its command line: with a
    --host, a key given as --api-key travels in the environment, never on a command line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    key = str(getattr(environment.parsed_options, "api_key", "") or "")
    if key and environment.host:
        env[API_KEY_VARIABLE] = key
        return env, ("--api-key",)
    return env, ()


def run_arm(driver: Driver, arm: arms.Arm, redactor: Any) -> int:
    """One arm run to its end, its output printed under its label; its exit code."""
    folder = driver.results_dir / arm.folder_name
    env, drop = _child_environment(driver.environment)
    argv = arms.child_argv(sys.argv[1:], driver.parser, arm, folder, drop=drop)
    logger.info(
        "compare: arm %d/%d %s=%s starting: locust %s",
        arm.number, len(driver.arms), arm.flag, arm.value, redactor(" ".join(argv)),
    )  # fmt: skip
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "locust", *argv],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", env=env, process_group=0,
    )  # fmt: skip
    driver.child = child
    try:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(f"[{arm.label}] {redactor(line.rstrip())}\n")
            sys.stdout.flush()
        code = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        driver.child = None
    logger.info(
        "compare: arm %s ended with exit %d after %.0f s", arm.label, code, time.monotonic() - started
    )
    return code


def build_comparison(driver: Driver, ran: list[arms.Arm]) -> Path | None:
    """`python -m reports arms` over the arms' folders, in its own process; the report's path."""
    folders = [driver.results_dir / arm.folder_name for arm in ran]
    folders = [folder for folder in folders if folder.is_dir()]
    if not folders:
        logger.error("compare: no arm wrote a results folder: no comparison report")
        return None
    output = driver.results_dir / "report.html"
    command = [
        sys.executable, "-m", "reports", "arms", *map(str, folders), "--flag", driver.arms[0].flag,
        "-o", str(output),
    ]  # fmt: skip
    env, _ = _child_environment(driver.environment)
    env.pop(API_KEY_VARIABLE, None)  # the report is built without the key
    child = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, process_group=0,
    )  # fmt: skip
    driver.child = child
    try:
        out, err = child.communicate()
    finally:
        driver.child = None
    for line in err.splitlines():
        if line.strip():
            logger.warning("comparison report: %s", line.removeprefix("warning: ").removeprefix("error: "))
    if child.returncode != 0 or not out.strip():
        return None
    return Path(out.strip().splitlines()[-1])
