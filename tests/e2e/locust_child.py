"""A headless `locust` child for the end-to-end tests: its output read line by line (so a test can
wait for a line, and a full pipe never blocks it), the emulators it started, and its request logs.

    from tests.e2e.locust_child import LocustRun, calls_logged, emulators_of
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


def run_locust(
    repo_root: Path, env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`locust --headless ARGS` in the repository, run to its end, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "locust", "--headless", *args],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV of the results folder (a per-request log), one dict a row."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def calls_logged(folder: Path) -> int:
    """Calls in the request logs of a results folder (their data lines)."""
    return sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in folder.glob("requests-*.csv"))


# Quick, tail-free answers from the bundled emulator: for runs that test something other than
# latency and need many calls in a few seconds on a busy machine (the realistic profile takes ~3 s a
# call, some far longer).
QUICK_EMULATOR = {
    "model_defaults": {"ttft_median_ms": 100, "ttft_tail_share": 0, "output_tokens_per_s": 5000}
}


def quick_emulator_config(folder: Path) -> str:
    """The path of a QUICK_EMULATOR --emulator-config file written into `folder`."""
    path = folder / "quick-emulator.json"
    path.write_text(json.dumps(QUICK_EMULATOR))
    return str(path)


def stop_child(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60) -> None:
    """Ask a Locust child to quit with `sig` (it then writes its final files), waiting up to
    `timeout` s before killing it; nothing to do when it has already ended."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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

    def __init__(self, repo_root: Path, env: dict, out: Path, *args: str) -> None:
        self.out = out
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--headless", "--results-dir", str(out), *args],
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
        return calls_logged(self.out) > 0

    def _note_emulators(self) -> None:
        for proc in emulators_of(self.proc.pid):
            self.emulators[proc.pid] = proc

    def signal_and_wait(self, sig: signal.Signals, timeout: float = 90) -> int:
        self._note_emulators()
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 90) -> int:
        """The exit code; a child still running after `timeout` is killed (and the wait raises)."""
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
