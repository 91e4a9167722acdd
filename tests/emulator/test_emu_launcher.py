"""EmulatorProcess: start, health, stats, stop, and no orphans even when the parent is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from emulator.launcher import EmulatorProcess, EmulatorStartError
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_start_health_stats_stop() -> None:
    emu = EmulatorProcess(time_scale=0.01)
    url = emu.start()
    assert url.startswith("http://127.0.0.1:") and emu.url == url
    with urllib.request.urlopen(url + "/healthz") as reply:
        assert reply.status == 200 and b'"ok"' in reply.read()
    assert emu.stats()["requests_total"] == 0
    pid = emu.pid
    emu.stop()
    emu.stop()  # idempotent
    assert pid is not None and not _alive(pid)


def test_bad_profile_raises_with_stderr_tail() -> None:
    with pytest.raises(EmulatorStartError, match="unknown emulator profile 'nope'"):
        EmulatorProcess(profile="nope").start(timeout=10)


def test_child_dies_when_parent_is_killed(tmp_path) -> None:
    # A parent that starts an emulator under gevent (like a Locust worker), prints the child's pid,
    # then waits to be SIGKILLed: the emulator must go away by itself.
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            from gevent import monkey; monkey.patch_all()
            import sys, time
            from emulator.launcher import EmulatorProcess
            emu = EmulatorProcess(time_scale=0.01)
            emu.start()
            emu.stats()
            print(emu.pid, flush=True)
            time.sleep(60)  # why: a parent that lives until the test SIGKILLs it; nothing to wait for
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_until(lambda: not _alive(child_pid), what=f"the orphaned emulator {child_pid} to exit")


def test_cli_bad_config_is_one_line(tmp_path) -> None:
    missing = tmp_path / "nope.json"
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "--port", "0", "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "nope.json: file not found" in done.stderr


def test_workers_share_port_stats_and_faults() -> None:
    import psutil
    from emu_http import FLASH, call, call_json, text_request

    emu = EmulatorProcess(profile="fast", time_scale=0.0, workers=2)
    emu.start()
    try:
        workers = psutil.Process(emu.pid).children()
        assert len(workers) == 2
        for i in range(20):
            assert call(emu.url, FLASH + ":generateContent", text_request(f"w{i}"))[0] == 200

        def merged_stats() -> dict | None:
            stats = emu.stats()
            return stats if stats["requests_total"] == 20 else None

        # Each worker publishes its counters every 0.25 s: wait until both shares are in the merge.
        stats = wait_until(merged_stats, what="both workers' counters in the merged stats")
        assert stats["workers"] == 2 and stats["responses_by_status"] == {"200": 20}
        emu.set_faults({"server_503": 1.0})

        def both_workers_inject() -> bool:
            # Each new connection goes to either worker (SO_REUSEPORT): 20 answers in a row with
            # the new rate have come from both but for a chance of 2**-19.
            return all(
                call_json(emu.url, "/emulator/faults", key=None)[1]["rates"]["server_503"] == 1.0
                for _ in range(20)
            )

        wait_until(both_workers_inject, what="the fault change to reach the other worker")
        statuses = {call(emu.url, FLASH + ":generateContent", text_request(f"f{i}"))[0] for i in range(10)}
        assert statuses == {503}
    finally:
        emu.stop()
    wait_until(lambda: not any(_alive(w.pid) for w in workers), what="the workers to exit")


def test_benchmark_dispatcher_and_smoke() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"], capture_output=True, text=True, timeout=20, cwd=REPO
    )
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "emulator",
            "--seconds",
            "1",
            "--connections",
            "8",
            "--greenlets",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # A smoke test of the benchmark's plumbing, not a measurement: every phase answered something
    # and nothing failed. How fast is the benchmark's own business (python -m benchmarks emulator).
    assert summary["emulator_rps"] > 0 and summary["emulator_chunks_per_s"] > 0, summary
    assert summary["http_transport_rps"] > 0 and summary["headroom_vs_http_transport"] > 0, summary
    assert summary["emulator_cpu_ms_per_request"] > 0 and summary["client_cpu_ms_per_request"] > 0, summary
    assert summary["emulator_workers"] == 1 and "non-200 answers" not in done.stdout, done.stdout
