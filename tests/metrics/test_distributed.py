"""Distributed runs: LLM stats merged on the master equal Locust's count and the emulator's."""

from __future__ import annotations

import contextlib
import html
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from llm_helpers import (
    FAST,
    emulator_served,
    free_port,
    llm_requests,
    locust_cmd,
    locust_requests,
    own_master_port,
    read_rows,
    run_json,
)
from PIL import Image

from metrics.verdict import RUN_BROKEN_EXIT_CODE, START_UP_EXIT_CODE
from tests.waiting import wait_until


def report_warnings(folder: Path) -> list[str]:
    """The warning lines at the top of report.html, as text."""
    page = (folder / "report.html").read_text()
    found = re.findall(r'<p class="warning" role="alert">Warning: (.*?)</p>', page, flags=re.S)
    return [html.unescape(text) for text in found]


def test_processes_2_merge_exactly(run_headless, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, log = run_headless(
        out, "--processes", "2", *own_master_port(), "-u", "6", "-r", "6", "-t", "5s", *FAST
    )
    assert proc.returncode == 0, log[-3000:]
    served = emulator_served(out)
    assert served > 0
    assert llm_requests(out) == locust_requests(out) == served
    logs = list(out.glob("requests-*.csv"))
    assert len(logs) == 2 and sum(len(read_rows(p)) for p in logs) == served
    nodes = {row["node"].split("-")[0] for row in read_rows(out / "health.csv")}
    assert nodes == {"master", "worker"}, "workers' health samples reach the master's health.csv"
    assert run_json(out)["lost_workers"] == []


@contextlib.contextmanager
def master_and_workers(
    repo_root: Path, env: dict, out: Path, run_time: str, workers: int = 2
) -> Iterator[tuple[subprocess.Popen, list[subprocess.Popen]]]:
    """Start a headless master and its workers; their output goes to files (a full pipe would block)."""
    port = free_port()
    logs = out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def popen(cmd: list[str], name: str) -> subprocess.Popen:
        with (logs / name).open("w") as log:
            return subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT)

    master = popen(
        locust_cmd(
            "--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", str(workers), "-u", "6", "-r", "6", "-t", run_time, "--results-dir", str(out),
            *FAST,
        ),
        "master.log",
    )  # fmt: skip
    started = [master]
    try:
        for index in range(workers):
            worker = locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
            started.append(popen(worker, f"worker-{index}.log"))
        yield master, started[1:]
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def calls_logged(folder: Path, pattern: str) -> int:
    return sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in folder.glob(pattern))


def reached_master_since(folder: Path, node: str, since: float) -> bool:
    """A health sample of `node` taken after `since` is in the master's health.csv: the report that
    carried it (and the calls made before it) reached the master."""
    path = folder / "health.csv"
    return path.exists() and any(
        row["node"] == node and float(row["timestamp"]) >= since for row in read_rows(path)
    )


def test_master_and_two_workers_on_loopback_merge_exactly(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with master_and_workers(repo_root, clean_env, out, "5s") as (master, workers):
        master.wait(timeout=60)
        for worker in workers:
            worker.wait(timeout=20)
    output = (tmp_path / "logs" / "master.log").read_text()
    assert master.returncode == 0, output[-3000:]
    served = emulator_served(out)
    assert served > 0
    assert llm_requests(out) == locust_requests(out) == served
    assert len(list(out.glob("requests-*.csv"))) == 2
    assert run_json(out)["lost_workers"] == []


def test_a_killed_worker_is_reported_and_the_master_finishes(
    repo_root: Path, clean_env: dict, tmp_path
) -> None:
    out = tmp_path / "run"
    with master_and_workers(repo_root, clean_env, out, "20s") as (master, workers):
        victim = workers[0]
        victim_log = f"requests-{socket.gethostname()}-{victim.pid}.csv"
        wait_until(lambda: calls_logged(out, victim_log) >= 3, 90, "3 calls in the victim's log")
        since = time.time()
        node = f"worker-{socket.gethostname()}-{victim.pid}"
        # At least one report with calls in it reached the master; then die mid-run.
        wait_until(lambda: reached_master_since(out, node, since), 90, "a report from the victim")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        master.wait(timeout=60)
        workers[1].wait(timeout=20)
    output = (tmp_path / "logs" / "master.log").read_text()
    # The rest of the run went without the victim's load: the run broke, whatever else it measured.
    assert master.returncode == RUN_BROKEN_EXIT_CODE, output[-3000:]
    assert "was lost" in output and "never reached the master" in output
    assert "Traceback" not in output
    for name in ("llm_stats.csv", "locust_stats.csv", "run.json", "report.html", "emulator_stats.json"):
        assert (out / name).exists(), name

    run = run_json(out)
    (lost,) = run["lost_workers"]
    assert lost["node"] == f"worker-{socket.gethostname()}-{victim.pid}"
    assert lost["request_log"] == victim_log
    assert lost["last_report_at"] and lost["lost_window_s"] > 0
    assert lost["reported_requests"] > 0 and lost["logged_requests"] > 0
    assert (lost["users"], lost["total_users"]) == (3, 6), "the load it carried: 3 of the 6 users"
    # Locust marks it missing after ~3 s without a heartbeat; when that happened before the end, it is
    # the end of the lost window.
    assert lost["missing_at"] is None or "went missing" in output

    # What the master merged is what Locust merged; the emulator also served the calls that were lost.
    merged = llm_requests(out)
    assert merged == locust_requests(out)
    assert merged + lost["unreported_requests"] <= emulator_served(out)

    # The report says which worker, when, with what load, and what never reached the master.
    (line,) = [w for w in report_warnings(out) if "was lost" in w]
    assert f"Worker {lost['node']} (3 of 6 users) was lost" in line and "into the run" in line, line
    if lost["unreported_requests"]:
        assert f"{lost['unreported_requests']:,} calls in its request log ({victim_log})" in line, line
    else:
        assert "every call in its request log reached the master" in line, line


def test_a_worker_that_cannot_prepare_stops_the_master_with_its_reason(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    port = free_port()
    missing = tmp_path / "no-such-folder"
    master = subprocess.Popen(
        locust_cmd(
            "--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", "1", "-u", "2", "-r", "2", "-t", "30s", "--results-dir", str(out), *FAST,
        ),
        cwd=repo_root, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # The worker's own command line points at images that do not exist: its preparation fails.
    worker = subprocess.Popen(
        locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--images-dir", str(missing)),
        cwd=repo_root, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        master_out, _ = master.communicate(timeout=120)
        worker_out, _ = worker.communicate(timeout=60)
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert master.returncode == 2, master_out[-3000:]
    assert "could not prepare its requests" in master_out and str(missing) in master_out, master_out[-3000:]
    assert worker.returncode == 2, worker_out[-3000:]
    assert "Traceback" not in master_out + worker_out
    assert not list(out.glob("requests-*.csv")) or all(
        len(p.read_bytes().splitlines()) <= 1 for p in out.glob("requests-*.csv")
    )


def test_calls_in_flight_at_the_end_reach_the_master(run_headless, tmp_path: Path) -> None:
    # Default-profile calls take about a second, so at -t every user is mid-call and each worker
    # reports only after they finish: far later than the half second Locust's master waits.
    out = tmp_path / "run"
    proc, log = run_headless(
        out, "--processes", "2", *own_master_port(), "-u", "4", "-r", "4", "-t", "4s",
        "--stop-timeout", "20", "--mix", "moderation=1", timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, log[-3000:]
    served = emulator_served(out)
    assert served > 0
    assert llm_requests(out) == locust_requests(out) == served


def test_workers_that_refuse_the_masters_options_stop_the_run_with_their_reason(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    # The master's --images-dir is relative and exists only where the master runs (as on another
    # host): every worker prepares its own command line at init, then refuses when the master's
    # options arrive with the spawn message.
    out = tmp_path / "run"
    master_dir, worker_dir = tmp_path / "master", tmp_path / "worker"
    (master_dir / "imgs").mkdir(parents=True)
    worker_dir.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(master_dir / "imgs" / "red.png")
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()

    def popen(cmd: list[str], cwd: Path, name: str) -> subprocess.Popen:
        with (logs / name).open("w") as log:
            return subprocess.Popen(cmd, cwd=cwd, env=clean_env, stdout=log, stderr=subprocess.STDOUT)

    master = popen(
        locust_cmd(
            "--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", "2", "-u", "4", "-r", "4", "-t", "600s", "--results-dir", str(out),
            "--mix", "vision=1", "--images-dir", "imgs", *FAST,
        ),
        master_dir, "master.log",
    )  # fmt: skip
    worker_cmd = locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port))
    workers = [popen(worker_cmd, worker_dir, f"worker-{index}.log") for index in range(2)]
    try:
        master.wait(timeout=120)  # -t 600s: only the refusal can end this run in time
        for worker in workers:
            worker.wait(timeout=30)
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = (logs / "master.log").read_text()
    assert master.returncode == START_UP_EXIT_CODE, output[-3000:]
    # Each worker's one-line reason reached the master and is printed there.
    reason = "imgs: not a folder"
    assert output.count(f"could not prepare its requests: {reason}") == 2, output[-3000:]
    assert "refused to start" in output
    for index, worker in enumerate(workers):
        worker_output = (logs / f"worker-{index}.log").read_text()
        assert worker.returncode == START_UP_EXIT_CODE and reason in worker_output, worker_output[-2000:]
    assert "Traceback" not in output

    run = run_json(out)
    refused = run["refused_workers"]
    assert len(refused) == 2 and all(reason in item["reason"] for item in refused), refused
    assert run["lost_workers"] == [], "a worker that refused is not reported as lost"
    lines = [w for w in report_warnings(out) if "refused to start" in w]
    assert len(lines) == 2 and all(reason in line for line in lines), lines
