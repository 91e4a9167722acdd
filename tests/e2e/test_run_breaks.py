"""Runs that break never claim success: a dead emulator and a test that measured nothing each exit
non-zero, with one line on the console, a field in run.json and a line in the report.

Through the real `locust --headless` command against the bundled emulator on loopback; each case
waits for an event of the run (the first logged call), never for a fixed time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from metrics.verdict import NOTHING_MEASURED_EXIT_CODE, RUN_BROKEN_EXIT_CODE
from tests.waiting import wait_until


def emulators_of(pid: int) -> list[psutil.Process]:
    """The bundled emulators Locust process `pid` started (they carry --parent-pid <pid>)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "--parent-pid" in cmdline and cmdline[cmdline.index("--parent-pid") + 1] == str(pid):
            found.append(proc)
    return found


def calls_logged(folder: Path) -> int:
    return sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in folder.glob("requests-*.csv"))


class Run:
    """A headless Locust child whose output is collected by a thread (a full pipe would block it)."""

    def __init__(self, repo_root: Path, env: dict, out: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--headless", "--results-dir", str(out), *args],
            cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        self.lines.extend(self.proc.stdout)

    def wait(self, timeout: float) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return code, "".join(self.lines)


def test_a_killed_emulator_stops_the_run_at_once_and_exits_6(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # -t far beyond the test: only the emulator's death can end this run in time.
    run = Run(repo_root, clean_env, out, "-u", "2", "-r", "2", "-t", "600s", "--emulator-profile", "fast")
    try:
        wait_until(lambda: calls_logged(out) >= 1 or run.proc.poll() is not None, 90, "a logged call")
        (emulator,) = wait_until(lambda: emulators_of(run.proc.pid), 10, "the bundled emulator")
        emulator.kill()
        code, output = run.wait(timeout=120)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == RUN_BROKEN_EXIT_CODE, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    died_lines = [line for line in output.splitlines() if "the bundled emulator" in line and "died" in line]
    assert len(died_lines) == 1 and "killed by SIGKILL" in died_lines[0], output[-4000:]
    # The death is the one line about it: no refusals logged one by one, no failed stats fetch.
    assert "could not save emulator_stats.json" not in output

    document = json.loads((out / "run.json").read_text())
    died = document["emulator_died"]
    assert died["how"] == "killed by SIGKILL" and died["pid"] == emulator.pid
    assert document["llm"]["requests"] >= 1
    # Stopped at once: the run ended seconds after the death, not at -t.
    assert document["ended_at"] and document.get("interrupted") is None
    assert len(document["runs"]) == 1 and document["runs"][0]["end"] - document["runs"][0]["start"] < 120
    report = (out / "report.html").read_text()
    assert "The bundled emulator died" in report and "killed by SIGKILL" in report


def test_a_test_that_measures_nothing_exits_5_and_says_so(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run = Run(repo_root, clean_env, out, "-u", "0", "-r", "1", "-t", "1s", "--emulator-profile", "fast")
    code, output = run.wait(timeout=120)
    assert code == NOTHING_MEASURED_EXIT_CODE, output[-4000:]
    assert "nothing was measured: not one call completed" in output
    assert "Traceback" not in output
    assert json.loads((out / "run.json").read_text())["llm"]["requests"] == 0
    assert "No call completed: nothing was measured." in (out / "report.html").read_text()
