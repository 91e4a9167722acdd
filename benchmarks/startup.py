"""Start-up: how soon the web UI answers and how soon a headless run starts its clock.

`python -m benchmarks startup [--rounds N]` starts, in alternation on the same machine:
- `locust` with the suite (default mix, vision included, after one warm-up start that fills the
  prepared-image cache) and with a bare locustfile of one no-op user (the baseline: Locust alone);
  each until GET / answers 200, then Ctrl-C;
- a headless suite run, until Locust prints "Run time limit set" (the run clock starts), then Ctrl-C.

A shared, noisy machine moves every absolute figure, so the comparison that matters is the ratio of
the suite to the bare baseline, taken in the same rounds. Ends with one JSON line: web_ui_s,
web_ui_baseline_s, web_ui_ratio, headless_clock_s (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUST = [sys.executable, "-m", "locust"]
BARE_LOCUSTFILE = """
from locust import User, task


class Idle(User):
    @task
    def nothing(self):
        pass
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def time_to_web_ui(extra: list[str], folder: Path, timeout: float = 120) -> float:
    """Seconds from the command to the first 200 on /."""
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [*LOCUST, "--web-port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        while time.monotonic() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as reply:
                    if reply.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.01)  # poll: nothing announces that a socket accepts
        raise RuntimeError(f"the web UI did not answer within {timeout} s")
    finally:
        _stop(proc)


def time_to_run_clock(folder: Path, timeout: float = 180) -> float:
    """Seconds from a headless command to Locust starting its run clock (-t)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [*LOCUST, "--headless", "-u", "4", "-r", "4", "-t", "60s", "--results-dir", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Run time limit set" in line:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
        raise RuntimeError("the headless run never started its clock")
    finally:
        _stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements of each (default 5)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        work = Path(tmp)
        bare = work / "bare_locustfile.py"
        bare.write_text(BARE_LOCUSTFILE)
        suite_args = ["--results-dir", str(work / "suite")]
        time_to_web_ui(suite_args, work)  # warm-up: fills the prepared-image cache, as a first start does
        suite, baseline, headless = [], [], []
        for index in range(args.rounds):
            suite.append(time_to_web_ui(suite_args, work))
            baseline.append(time_to_web_ui(["-f", str(bare)], work))
            headless.append(time_to_run_clock(work / f"headless-{index}"))
            print(
                f"round {index + 1}: web UI suite {suite[-1]:.2f} s, bare Locust {baseline[-1]:.2f} s; "
                f"headless run clock after {headless[-1]:.2f} s",
                flush=True,
            )
    figures = {
        "web_ui_s": round(statistics.median(suite), 3),
        "web_ui_baseline_s": round(statistics.median(baseline), 3),
        "web_ui_ratio": round(statistics.median(s / b for s, b in zip(suite, baseline, strict=True)), 3),
        "headless_clock_s": round(statistics.median(headless), 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
