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
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

START_UP_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def emulators_of(pid: int) -> list[psutil.Process]:
    """The bundled emulators this Locust process started (they carry --parent-pid <its pid>)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if (
            "emulator" in cmdline
            and "--parent-pid" in cmdline
            and cmdline[cmdline.index("--parent-pid") + 1] == str(pid)
        ):
            found.append(proc)
    return found


class LocustRun:
    """A headless Locust child whose output is read line by line, so a test can wait for a line."""

    def __init__(self, repo_root: Path, env: dict, out: Path) -> None:
        self.out = out
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--headless", "-u", "4", "-r", "4", "-t", "60s",
             "--results-dir", str(out)],
            cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.emulators: dict[int, psutil.Process] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not condition():
                self._note_emulators()
                if self.proc.poll() is not None:
                    raise AssertionError(f"Locust exited before {what}:\n{self.output()[-3000:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout} s:\n{self.output()[-3000:]}")
                # why: wake on each new output line; a logged call is a file, not a line, so also
                # look again a few times a second.
                self._seen.wait(min(remaining, 0.2))

    def printed(self, fragment: str) -> Callable[[], bool]:
        return lambda: any(fragment in line for line in self.lines)

    def logged_a_call(self) -> bool:
        return any(len(p.read_bytes().splitlines()) > 1 for p in self.out.glob("requests-*.csv"))

    def _note_emulators(self) -> None:
        for proc in emulators_of(self.proc.pid):
            self.emulators[proc.pid] = proc

    def signal_and_wait(self, sig: signal.Signals, timeout: float = 90) -> int:
        self._note_emulators()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return code

    def output(self) -> str:
        return "".join(self.lines)

    def leftover_emulators(self, timeout: float = 10) -> list[int]:
        _, alive = psutil.wait_procs(list(self.emulators.values()), timeout=timeout)
        return [p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def check_clean_exit(run: LocustRun, code: int, sig: signal.Signals) -> None:
    output = run.output()
    assert "Traceback" not in output, output[-4000:]
    assert not run.leftover_emulators(), f"emulator left after {sig.name}:\n{output[-2000:]}"
    assert not emulators_of(run.proc.pid)
    calls = sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in run.out.glob("requests-*.csv"))
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
    run = LocustRun(repo_root, clean_env, tmp_path / "run")
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
    run = LocustRun(repo_root, clean_env, tmp_path / "run")
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
    run = LocustRun(repo_root, clean_env, tmp_path / "run")
    run.wait_for(run.logged_a_call, "logged call")
    run.signal_and_wait(signal.SIGKILL)
    assert run.emulators, "the emulator was never seen"
    assert not run.leftover_emulators(), "the emulator outlived a SIGKILLed Locust"


@pytest.mark.parametrize("after_s", [0.5, 1.5, 3.0])
def test_ctrl_c_at_an_arbitrary_moment_exits_cleanly(
    repo_root: Path, tmp_path: Path, clean_env: dict, after_s: float
) -> None:
    run = LocustRun(repo_root, clean_env, tmp_path / "run")
    delay = max(0.0, after_s - (time.monotonic() - run.started))
    time.sleep(delay)  # why: an arbitrary moment is under test; any phase must exit cleanly
    code = run.signal_and_wait(signal.SIGINT)
    check_clean_exit(run, code, signal.SIGINT)
