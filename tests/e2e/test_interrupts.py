"""Ctrl-C and SIGTERM at any moment of a headless run: one line, the right exit code, no traceback,
no emulator left behind, and a results folder that says it was closed.

Each case waits for an event of the run (a line Locust or the suite prints, the first logged call)
and sends the signal then; the timed cases send it a fixed time after the command started, because
an arbitrary moment IS what they test: whichever phase it lands in, the outcome must hold.
"""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.locust_child import LocustRun, calls_logged, emulators_of

START_UP_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
LOAD = ("-u", "4", "-r", "4", "-t", "60s")


def check_clean_exit(run: LocustRun, code: int, sig: signal.Signals) -> None:
    output = run.output()
    assert "Traceback" not in output, output[-4000:]
    assert not run.leftover_emulators(), f"emulator left after {sig.name}:\n{output[-2000:]}"
    assert not emulators_of(run.proc.pid)
    calls = calls_logged(run.out)
    if calls == 0:
        # Nothing was measured: the exit code must not say the run went well.
        assert code == START_UP_CODES[sig], (code, output[-3000:])
    else:
        assert code in (0, 1), (code, output[-3000:])
        assert (run.out / "locust_stats.csv").exists()
    run_json = run.out / "run.json"
    if run.out.exists():
        assert run_json.exists(), sorted(p.name for p in run.out.iterdir())
    if run_json.exists():
        document = json.loads(run_json.read_text())
        assert document["ended_at"], document
        if calls == 0:
            assert document.get("interrupted") or document.get("started_at") is None, document


PHASES = {
    # Locust has loaded the suite and started; the emulator is being launched.
    "start-up": lambda run: run.printed("Starting Locust"),
    # The emulator's URL is known; the SDK is being imported and requests prepared.
    "preparation": lambda run: run.printed("using the bundled Gemini emulator"),
    # Load is flowing: at least one call is in a request log.
    "run": lambda run: run.logged_a_call,
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_signal_at_each_phase_exits_cleanly(
    repo_root: Path, tmp_path: Path, clean_env: dict, phase: str, sig: signal.Signals
) -> None:
    run = LocustRun(repo_root, clean_env, tmp_path / "run", *LOAD)
    run.wait_for(PHASES[phase](run), phase)
    code = run.signal_and_wait(sig)
    check_clean_exit(run, code, sig)
    if phase == "run":
        # Users were stopped before the emulator: no call failed for want of a server.
        logged = [row for path in run.out.glob("requests-*.csv") for row in csv.DictReader(path.open())]
        assert logged and not [row for row in logged if row["error_kind"] == "connection"]


def test_a_second_ctrl_c_while_the_report_is_written_keeps_the_rest(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    run = LocustRun(repo_root, clean_env, tmp_path / "run", *LOAD)
    run.wait_for(run.logged_a_call, "logged call")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(run.printed("writing the report"), "report being written")
    code = run.signal_and_wait(signal.SIGINT)
    output = run.output()
    assert "Traceback" not in output, output[-4000:]
    assert code in (0, 1), (code, output[-3000:])
    assert "rebuild it with: python -m reports" in output
    assert not run.leftover_emulators()
    document = json.loads((run.out / "run.json").read_text())
    assert document["ended_at"] and "SIGINT while finishing" in document["interrupted"], document
    assert (run.out / "locust_stats.csv").exists() and (run.out / "llm_stats.csv").exists()


def test_no_emulator_left_after_a_crash(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    run = LocustRun(repo_root, clean_env, tmp_path / "run", *LOAD)
    run.wait_for(run.logged_a_call, "logged call")
    run.signal_and_wait(signal.SIGKILL)
    assert run.emulators, "the emulator was never seen"
    assert not run.leftover_emulators(), "the emulator outlived a SIGKILLed Locust"


@pytest.mark.parametrize("after_s", [0.5, 1.5, 3.0])
def test_ctrl_c_at_an_arbitrary_moment_exits_cleanly(
    repo_root: Path, tmp_path: Path, clean_env: dict, after_s: float
) -> None:
    run = LocustRun(repo_root, clean_env, tmp_path / "run", *LOAD)
    delay = max(0.0, after_s - (time.monotonic() - run.started))
    time.sleep(delay)  # why: an arbitrary moment is under test; any phase must exit cleanly
    code = run.signal_and_wait(signal.SIGINT)
    check_clean_exit(run, code, signal.SIGINT)
