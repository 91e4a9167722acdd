"""Runs that break never claim success: a dead emulator and a test that measured nothing each exit
non-zero, with one line on the console, a field in run.json and a line in the report.

Through the real `locust --headless` command against the bundled emulator on loopback; each case
waits for an event of the run (the first logged call), never for a fixed time.
"""

from __future__ import annotations

import json
from pathlib import Path

from metrics.verdict import NOTHING_MEASURED_EXIT_CODE, RUN_BROKEN_EXIT_CODE
from tests.e2e.locust_child import LocustRun, emulators_of
from tests.waiting import wait_until


def test_a_killed_emulator_stops_the_run_at_once_and_exits_6(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # -t far beyond the test: only the emulator's death can end this run in time.
    run = LocustRun(
        repo_root, clean_env, out, "-u", "2", "-r", "2", "-t", "600s", "--emulator-profile", "fast"
    )
    try:
        run.wait_for(run.logged_a_call, "a logged call")
        (emulator,) = wait_until(lambda: emulators_of(run.proc.pid), 10, "the bundled emulator")
        emulator.kill()
        code = run.wait(timeout=120)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    output = run.output()
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
    run = LocustRun(repo_root, clean_env, out, "-u", "0", "-r", "1", "-t", "1s", "--emulator-profile", "fast")
    code = run.wait(timeout=120)
    output = run.output()
    assert code == NOTHING_MEASURED_EXIT_CODE, output[-4000:]
    assert "nothing was measured: not one call completed" in output
    assert "Traceback" not in output
    assert json.loads((out / "run.json").read_text())["llm"]["requests"] == 0
    assert "No call completed: nothing was measured." in (out / "report.html").read_text()
