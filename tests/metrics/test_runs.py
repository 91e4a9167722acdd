"""Real Locust runs against the bundled emulator: LLM files, SLO exit codes, the budget, one process."""

from __future__ import annotations

import csv
import datetime as dt
import signal
import subprocess
import time
from pathlib import Path

import pytest
from llm_helpers import (
    FAKE_KEY,
    FAST,
    NOT_LOOPBACK,
    emulator_served,
    llm_requests,
    locust_cmd,
    locust_requests,
    read_rows,
    run_json,
)

from emulator.launcher import EmulatorProcess


def test_local_run_writes_llm_stats_history_and_health(run_headless, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, log = run_headless(
        out, "-u", "4", "-r", "4", "-t", "4s", *FAST, "--slo", "e2e_p99<=10s,error_rate<=100%"
    )
    assert proc.returncode == 0, log[-3000:]
    assert "all 2 SLO gates passed" in proc.stdout

    served = emulator_served(out)
    assert served > 0
    assert llm_requests(out) == locust_requests(out) == served

    rows = read_rows(out / "llm_stats.csv")
    assert rows[-1]["scenario"] == "Aggregated"
    per_key = {(r["model"], r["scenario"]): int(r["requests"]) for r in rows[:-1]}
    locust_per_key = {
        (r["Type"], r["Name"]): int(r["Request Count"])
        for r in read_rows(out / "locust_stats.csv")
        if r["Name"] != "Aggregated"
    }
    assert per_key == locust_per_key, "split by scenario and model exactly as Locust's Type/Name"
    logged = [row for path in out.glob("requests-*.csv") for row in read_rows(path)]
    for row in rows[:-1]:
        mine = [r for r in logged if (r["model"], r["scenario"]) == (row["model"], row["scenario"])]
        assert int(row["output_tokens"]) == sum(int(r["output_tokens"] or 0) for r in mine)
        assert int(row["prompt_tokens"]) == sum(int(r["prompt_tokens"] or 0) for r in mine) > 0
        assert float(row["cost_usd"]) == pytest.approx(sum(float(r["cost_usd"]) for r in mine), abs=2e-9)
        assert float(row["e2e_p50_ms"]) > 0
        streamed = [r for r in mine if r["ttft_ms"]]
        assert bool(row["ttft_p50_ms"]) == bool(streamed), f"TTFT of {row['scenario']}"

    history = read_rows(out / "llm_stats_history.csv")
    assert len({r["timestamp"] for r in history}) >= 2
    assert {r["scenario"] for r in history} == {r["scenario"] for r in rows}
    assert int(history[-1]["requests"]) == llm_requests(out)

    samples = read_rows(out / "health.csv")
    assert len(samples) >= 3 and all(r["node"].startswith("local-") for r in samples)
    assert all(float(r["cpu_percent"]) >= 0 and float(r["loop_lag_ms"]) >= 0 for r in samples)

    run = run_json(out)
    assert run["llm"]["requests"] == served
    assert [g["passed"] for g in run["slo"]] == [True, True]
    assert run["health_warnings"] == [] or all("node" in w for w in run["health_warnings"])


def test_a_failing_slo_prints_the_table_and_exits_3(run_headless, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, log = run_headless(
        out, "-u", "2", "-r", "2", "-t", "3s", *FAST, "--slo", "e2e_p95<=0.01ms,rps>=0.1"
    )
    assert proc.returncode == 3, log[-3000:]
    assert "1 of 2 SLO gates failed" in proc.stdout
    table = proc.stdout[proc.stdout.index("SLO ") :]
    assert "e2e_p95<=0.01ms" in table and "FAIL" in table and "PASS" in table
    slo = run_json(out)["slo"]
    assert [(g["expr"], g["passed"]) for g in slo] == [("e2e_p95<=0.01ms", False), ("rps>=0.1", True)]
    assert slo[0]["value"] > 0.01


def test_bad_slo_is_refused_in_one_line(run_headless, tmp_path: Path) -> None:
    proc, log = run_headless(tmp_path / "run", "-t", "3s", "--slo", "p95<=3", timeout=40)
    assert proc.returncode == 2, log[-2000:]
    assert "--slo" in proc.stderr and "unknown metric 'p95'" in proc.stderr
    assert "Traceback" not in log


def test_budget_stops_the_run(run_headless, tmp_path: Path) -> None:
    out = tmp_path / "run"
    budget = 0.01  # a few calls of the emulator's moderation answers at the default model's prices
    # -t far beyond what the budget allows: only the budget can end this run in time.
    proc, log = run_headless(
        out, "-u", "5", "-r", "5", "-t", "600s", *FAST, "--max-cost", str(budget), timeout=300
    )
    assert proc.returncode == 0, log[-3000:]
    assert "cost budget reached" in log

    run = run_json(out)
    ran_for = dt.datetime.fromisoformat(run["ended_at"]) - dt.datetime.fromisoformat(run["started_at"])
    assert ran_for.total_seconds() < 300, f"the run went on for {ran_for}: the budget did not stop it"
    assert run["budget"]["reached"] is True and run["budget"]["max_cost_usd"] == budget
    assert run["budget"]["spent_at_stop_usd"] >= budget
    # Calls in flight when it stopped still count: at most one per user beyond the stop.
    logged = [row for path in out.glob("requests-*.csv") for row in read_rows(path)]
    dearest = max(float(r["cost_usd"]) for r in logged)
    assert run["budget"]["spent_usd"] <= run["budget"]["spent_at_stop_usd"] + 5 * dearest + 1e-9
    assert run["budget"]["spent_usd"] == run["llm"]["cost_usd"]
    assert llm_requests(out) == locust_requests(out) == emulator_served(out)


def test_off_loopback_host_without_budget_refuses_to_start(run_headless, tmp_path: Path) -> None:
    proc, log = run_headless(
        tmp_path / "run", "-t", "3s", "--host", NOT_LOOPBACK, "--api-key", FAKE_KEY, timeout=40
    )
    assert proc.returncode == 2, log[-2000:]
    assert "is not loopback" in proc.stderr and "--max-cost" in proc.stderr
    assert "Traceback" not in log and FAKE_KEY not in log


def wait_for_flushes(folder: Path, count: int, timeout: float = 120) -> float:
    """Wait until the request log has grown `count` times after its header (it is flushed every
    second); returns the monotonic time of the first growth with calls in it."""
    deadline = time.monotonic() + timeout
    sizes: list[int] = []
    first = 0.0
    while len(sizes) < count:
        assert time.monotonic() < deadline, f"the request log grew {len(sizes)} times in {timeout} s"
        logs = list(folder.glob("requests-*.csv"))
        size = sum(p.stat().st_size for p in logs)
        header = sum(len(p.read_bytes().split(b"\n", 1)[0]) + 1 for p in logs)
        if size > header and size > (sizes[-1] if sizes else 0):
            first = first or time.monotonic()
            sizes.append(size)
        time.sleep(0.05)  # why: poll interval; a file growing has no event to wait on
    return first


def test_request_log_of_a_killed_run_loses_at_most_its_last_second(
    repo_root: Path, clean_env: dict, tmp_path
):
    # The emulator runs outside the load test so it survives the kill and can say what it served.
    out = tmp_path / "run"
    users = 5
    with EmulatorProcess(profile="fast") as emulator:
        proc = subprocess.Popen(
            locust_cmd(
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                "30s",
                "--host",
                emulator.url,
                "--api-key",
                FAKE_KEY,
                "--results-dir",
                str(out),
            ),
            cwd=repo_root,
            env=clean_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            first_seen = wait_for_flushes(out, count=2)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            killed_after = time.monotonic() - first_seen
            served = emulator.stats()["requests_total"]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (log_path,) = out.glob("requests-*.csv")
    lines = log_path.read_bytes().split(b"\n")
    complete = [line for line in lines[1:-1] if line]  # the last piece may be a partial line
    rows = list(csv.DictReader(log_path.open(newline="")))
    assert rows and all(r["scenario"] and r["model"] for r in rows[: len(complete)])
    # Calls per second while running, bounded from the emulator's count. The log flushes every
    # second; a busy machine can delay that greenlet, so allow three seconds' worth of calls.
    rate = served / max(killed_after, 1.0)
    lost = served - len(complete)
    assert 0 <= lost <= rate * 3 + users, f"{lost} of {served} calls missing from the log ({rate:.1f}/s)"
    for path in out.rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(errors="replace"), path
