"""The free-tier profile with --retries 3, end to end: the run's -t ends while the users back off
from their 429s, and the results still account for every request the emulator served.

The emulator's free tier allows 10 requests a minute: each of the 10 users' first call is answered,
its second gets a 429 whose RetryInfo asks to wait most of a minute, so at the end of the run every
user is backing off. Those calls are recorded as `cancelled` (not failures), each with its 429
attempt; the client's attempts equal the emulator's count, and the report says so. The answers
are made quick and tail-free (the realistic profile's slow path can take longer than the 8 s run),
so every first call is answered before the stop: the quota, not latency, is under test.
(The fault x transport x retries matrix itself runs in-process: tests/transports/test_transport_fault_matrix.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.locust_child import quick_emulator_config, read_rows, run_locust

USERS = 10  # the free tier's requests per minute for the default Flash: one answered call per user
FAKE_KEY = "AIzaSyFAKE-fault-matrix-key-0123456789ab"


def test_free_tier_with_retries_reports_the_429_attempts_and_the_cancelled_calls(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "run"
    quick = quick_emulator_config(tmp_path)
    proc = run_locust(
        repo_root, clean_env, "-u", str(USERS), "-r", str(USERS), "-t", "8s",
        "--emulator-profile", "free-tier", "--emulator-config", quick,
        "--retries", "3", "--mix", "moderation=1",
        "--results-dir", str(out), "--api-key", FAKE_KEY,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]

    emulator = json.loads((out / "emulator_stats.json").read_text())
    served = sum(
        n for route, n in emulator["requests_by_route"].items() if "generatecontent" in route.lower()
    )
    statuses = emulator["responses_by_status"]
    assert statuses.get("429", 0) >= USERS, statuses  # the scene: every user was rate-limited

    [log_file] = out.glob("requests-*.csv")
    rows = read_rows(log_file)
    kinds = [row["error_kind"] for row in rows]
    cancelled = [row for row in rows if row["error_kind"] == "cancelled"]
    # Every user was backing off (or, on a slow machine, waiting for an answer) when the run ended.
    assert len(cancelled) == USERS, kinds
    assert set(kinds) <= {"", "cancelled"}, "with retries, the 429s are attempts, not failed calls"
    assert kinds.count("") == statuses.get("200", 0)
    attempt_kinds = [kind for row in rows for kind in row["attempt_kinds"].split(";") if kind]
    assert attempt_kinds.count("rate_limited") == statuses["429"], "every 429 is an attempt on the record"
    assert sum(int(row["attempts"]) for row in rows) == served, "client attempts == emulator requests"

    llm = next(row for row in read_rows(out / "llm_stats.csv") if row["scenario"] == "Aggregated")
    assert (int(llm["cancelled"]), int(llm["failures"]), int(llm["attempts"])) == (USERS, 0, served)

    report = (out / "report.html").read_text()
    assert "Cancelled at stop" in report and f"{USERS:,} cancelled at the stop" in report
    assert f"{served:,} attempts sent ({statuses['429']:,} rate-limited)" in report
    assert FAKE_KEY not in report
