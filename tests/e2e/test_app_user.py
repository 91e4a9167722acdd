"""The app user against services that misbehave: nothing listening, answers that are not JSON.

Real Locust runs (headless, the bundled emulator as the model host), each against a small stub
service in this process on loopback: every failure gets its error kind and one-line message, the
run exits 1 (calls failed), no traceback reaches the console, and calls whose request id never
reached the model are counted as unattributed.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.locust_child import LocustRun
from tests.e2e.services import QuietHandler, loopback_server


class HalfJsonHandler(QuietHandler):
    """Answers every other request with JSON holding a verdict, the others with an HTML page, and
    remembers the request ids it was sent."""

    counter = itertools.count()
    seen_ids: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen_ids.append(self.headers.get("x-request-id", ""))
        if next(self.counter) % 2:
            body, kind = b"<html>service busy</html>", "text/html"
        else:
            body, kind = json.dumps({"verdict": "ok", "confidence": 0.9}).encode(), "application/json"
        self._send(200, kind, body)


@pytest.fixture
def half_json_service() -> Iterator[str]:
    with loopback_server(HalfJsonHandler) as server:
        yield f"http://127.0.0.1:{server.server_port}/moderate"


def closed_port() -> int:
    """A loopback port nothing listens on (bound and closed: the kernel refuses connections to it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_app(repo_root: Path, env: dict, out: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "locust", "--headless", "-u", "2", "-r", "2", "-t", "4s",
        "--mix", "app=1", "--app-url", url, "--results-dir", str(out), *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=180)


def logged(out: Path) -> list[dict[str, str]]:
    return [row for path in out.glob("requests-*.csv") for row in csv.DictReader(path.open())]


def test_unreachable_service_is_a_connection_error(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    port = closed_port()
    out = tmp_path / "run"
    proc = run_app(repo_root, clean_env, out, f"http://127.0.0.1:{port}/moderate")
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console[-3000:]
    assert "Traceback" not in console
    assert f"nothing answers at 127.0.0.1:{port} now" in console  # said once, at start-up
    rows = [row for row in logged(out) if row["error_kind"] != "cancelled"]
    assert rows and {row["error_kind"] for row in rows} == {"connection"}
    assert all(row["error_message"].startswith(f"the app at 127.0.0.1:{port}: ") for row in rows)
    assert all(row["request_id"].startswith("app-") for row in rows)
    assert len({row["request_id"] for row in rows}) == len(rows)  # one id per call
    assert (out / "report.html").exists()


def test_non_json_answers_are_invalid_responses_and_unattributed(
    repo_root: Path, tmp_path: Path, clean_env: dict, half_json_service: str
) -> None:
    HalfJsonHandler.seen_ids.clear()
    out = tmp_path / "run"
    proc = run_app(repo_root, clean_env, out, half_json_service, "--app-expect-json", "verdict")
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console[-3000:]
    assert "Traceback" not in console
    rows = [row for row in logged(out) if row["error_kind"] != "cancelled"]
    kinds = Counter(row["error_kind"] for row in rows)
    assert set(kinds) == {"", "invalid_response"} and min(kinds.values()) >= 2, kinds
    for row in rows:
        if row["error_kind"]:
            assert row["error_message"] == "the app's answer is not JSON: '<html>service busy</html>'"
            assert row["http_status"] == "200"
        else:
            assert row["verdict"] == "ok"
    # The service saw each call's id, in the default header.
    assert {row["request_id"] for row in rows} <= set(HalfJsonHandler.seen_ids)
    # It made no model call: every call is unattributed, and the report says how many.
    with (out / "model_calls.csv").open() as handle:
        assert list(csv.DictReader(handle)) == []
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["attribution"]["records"] == 0 and run_json["attribution"].get("error") is None
    report = (out / "report.html").read_text()
    assert f"{len(rows):,} of {len(rows):,} app calls (100.0%) have no model call" in report


# ---- --app-command: the suite starts the service, and stops it -----------------------------------


def started_pid(console: str) -> int:
    match = re.search(r"started your service \(pid (\d+)\)", console)
    assert match, console[-3000:]
    return int(match.group(1))


def example_service(pool: int) -> str:
    """--app-command for the example service, on the port the suite picks."""
    return f"{sys.executable} -m examples.moderation_service --port {{port}} --pool {pool}"


def assert_gone(pid: int) -> None:
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid


def test_the_example_service_run_by_the_suite_is_split_between_app_and_model(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "run"
    service = example_service(pool=2)
    proc = run_app(
        repo_root, clean_env, out, "http://127.0.0.1:{port}/moderate",
        "--app-command", service, "--app-expect-json", "verdict", "--emulator-profile", "fast",
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-3000:]
    assert "Traceback" not in console
    assert_gone(started_pid(console))
    answered = [row for row in logged(out) if row["error_kind"] == ""]
    assert len(answered) >= 4
    assert {row["verdict"] for row in answered} <= {"benign", "violating"}
    with (out / "model_calls.csv").open() as handle:
        records = {row["request_id"]: row for row in csv.DictReader(handle)}
    for row in answered:  # every answered call reached the model under its own id, once
        record = records[row["request_id"]]
        assert record["calls"] == "1" and record["status"] == "200"
        assert float(record["first_received"]) >= float(row["start_time"])
        assert float(record["model_ms"]) <= float(row["e2e_ms"])
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["options"]["app_url"].startswith("http://127.0.0.1:")  # {port} filled
    assert "{port}" not in run_json["options"]["app_url"]
    report = (out / "report.html").read_text()
    cut = sum(row["error_kind"] == "cancelled" and row["request_id"] not in records for row in logged(out))
    assert f"All {len(logged(out)) - cut:,} app calls were matched with their model calls" in report
    assert "listening on http://127.0.0.1:" in (out / "app-service.log").read_text()


def test_the_service_output_keeps_no_key(
    repo_root: Path, tmp_path: Path, clean_env: dict, start_emulator: Any
) -> None:
    emulator = start_emulator()
    key = "AIzaSy" + "Qx7talkativeServiceKey0123456789"
    out = tmp_path / "run"
    service = f"{sys.executable} tests/e2e/services/talkative.py {{port}}"
    proc = run_app(
        repo_root, clean_env, out, "http://127.0.0.1:{port}/moderate",
        "--app-command", service, "--host", emulator.url, "--api-key", key,
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-3000:]
    log = (out / "app-service.log").read_text()
    assert f"for {emulator.url}" in log  # the service was told where the model is
    assert "starting with key" in log and key not in log
    for path in out.iterdir():
        if path.is_file():
            assert key[8:24] not in path.read_text(errors="replace"), path.name
    assert key[8:24] not in console


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--app-command", f"{sys.executable} -c \"print('boom'); raise SystemExit(3)\" {{port}}"),
         "--app-command exited with code 3 before it listened on 127.0.0.1:"),
        (("--mix", "moderation=1"), "--app-url is given but --mix does not run the app user: add app=1 to --mix"),
        (("--app-command", "no-such-command-here {port}"), "--app-command: cannot run 'no-such-command-here'"),
    ],
)  # fmt: skip
def test_a_service_that_cannot_start_stops_start_up_in_one_line(
    repo_root: Path, tmp_path: Path, clean_env: dict, extra: tuple[str, ...], message: str
) -> None:
    proc = run_app(repo_root, clean_env, tmp_path / "run", "http://127.0.0.1:{port}/moderate", *extra)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    assert message in console
    assert "Traceback" not in console
    if "boom" in extra[-1]:
        assert "boom" in console  # its last words, so the user sees why


def test_ctrl_c_while_waiting_for_the_service_leaves_nothing_running(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    # A service that never listens: the run waits for it, and Ctrl-C lands in that wait.
    never = f"{sys.executable} -c \"import time; print('warming up', flush=True); time.sleep(600)\" {{port}}"  # why: the service's sleep, not the test's
    run = LocustRun(
        repo_root, clean_env, tmp_path / "run", "-u", "1", "-r", "1", "-t", "30s", "--mix", "app=1",
        "--app-url", "http://127.0.0.1:{port}/moderate", "--app-command", never,
    )  # fmt: skip
    run.wait_for(run.printed("started your service"), "the service to be started")
    code = run.signal_and_wait(signal.SIGINT)
    console = run.output()
    assert code == 130, console[-3000:]
    assert "Traceback" not in console
    assert_gone(started_pid(console))
    assert not run.leftover_emulators()


def test_workers_call_the_service_the_master_started(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "run"
    service = example_service(pool=4)
    proc = run_app(
        repo_root, clean_env, out, "http://127.0.0.1:{port}/moderate", "--processes", "2",
        "--app-command", service, "--emulator-profile", "fast",
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-3000:]
    assert console.count("started your service") == 1  # by the master alone
    logs = list(out.glob("requests-*.csv"))
    assert len(logs) == 2  # both workers called it, through the URL the master filled in
    with (out / "model_calls.csv").open() as handle:
        records = {row["request_id"] for row in csv.DictReader(handle)}
    for path in logs:
        answered = [row for row in csv.DictReader(path.open()) if row["error_kind"] == ""]
        assert answered and {row["request_id"] for row in answered} <= records, path.name
