"""One web-UI session, two tests started from the browser's start form: a spike, then fixed users.

Each test must get its own folder (results/<session>/<nn>-<start time>/) whose run.json, request
log, CSVs and report describe that test only, written when it stops; the session's index.html links
both. The emulator answers quickly (QUICK_EMULATOR) so the two tests take seconds.
"""

from __future__ import annotations

import csv
import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.locust_child import quick_emulator_config, stop_child
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

SPIKE = {"baseUsers": "1", "spikeUsers": "3", "spikeAt": "1s", "spikeDuration": "2s", "recovery": "1s"}
SPIKE_SECONDS = 4.0
TEST_FOLDER = re.compile(r"^\d{2}-\d{8}T\d{6}Z$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def folders_of(session: Path) -> list[Path]:
    return sorted(p for p in session.iterdir() if p.is_dir() and TEST_FOLDER.match(p.name))


def run_json(folder: Path) -> dict[str, Any]:
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def logged_calls(folder: Path) -> int:
    return sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in folder.glob("requests-*.csv"))


def locust_total(folder: Path) -> int:
    with (folder / "locust_stats.csv").open(newline="") as handle:
        return next(int(r["Request Count"]) for r in csv.DictReader(handle) if r["Name"] == "Aggregated")


def ended(session: Path, count: int) -> list[Path] | None:
    """The first `count` test folders once each has a finished run.json, else None."""
    folders = folders_of(session)
    done = folders[:count]
    return done if len(done) == count and all(run_json(f).get("ended_at") for f in done) else None


def start_quick_web_ui(
    repo_root: Path, env: dict[str, str], session: Path, log_path: Path
) -> tuple[subprocess.Popen, str]:
    """`locust` with its web UI on a free port, the quick emulator, moderation only: (process, url)."""
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--web-port", str(port), "--results-dir", str(session),
             "--emulator-config", quick_emulator_config(session.parent), "--mix", "moderation=1",
             "--stop-timeout", "2"],
            cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}/"


def opened_web_ui(browser: Any, proc: subprocess.Popen, url: str, log_path: Path) -> Any:
    """A browser page once the web UI answers (the process must still be running)."""
    page = browser.new_page()
    wait_until(lambda: proc.poll() is not None or _answers(page, url), 60, "the web UI")
    assert proc.poll() is None, log_path.read_text()[-3000:]
    return page


def start_from_form(page: Any, shape: str, fields: dict[str, str]) -> None:
    from playwright.sync_api import expect

    form = page.locator("form")
    form.locator('select[name="shape"]').select_option(shape)
    for name, value in fields.items():
        form.locator(f'input[name="{name}"]').fill(value)
    form.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)


def test_two_tests_in_one_session_get_their_own_folders_and_reports(
    repo_root: Path, clean_env: dict, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    session = tmp_path / "session"
    log_path = tmp_path / "locust.log"
    proc, url = start_quick_web_ui(repo_root, clean_env, session, log_path)
    try:
        page = opened_web_ui(browser, proc, url, log_path)

        start_from_form(page, "spike", SPIKE)
        (spike,) = wait_until(lambda: ended(session, 1), 90, "the spike test to end by itself")

        # Locust's page stops polling when one poll lands in the stop's "cleanup" (users finishing
        # their calls): once the runner says "stopped", a reload shows it, as it would for a user.
        wait_until(lambda: _runner_state(url) == "stopped", 60, "Locust's runner to stop")
        page.reload()
        page.get_by_role("button", name="New").click()
        start_from_form(page, "none", {"userCount": "2", "spawnRate": "2"})
        wait_until(lambda: len(folders_of(session)) == 2, 30, "the second test's folder")
        fixed = folders_of(session)[1]
        wait_until(lambda: logged_calls(fixed) >= 5, 60, "calls of the second test")
        page.get_by_role("button", name="Stop").click()
        wait_until(lambda: ended(session, 2), 60, "the second test to end")
        # Each report is written when its test stops, not at quit; the index links both.
        wait_until(lambda: all((f / "report.html").exists() for f in (spike, fixed)), 150, "both reports")
        index = session / "index.html"
        wait_until(lambda: index.read_text().count("report.html") == 2, 30, "an index linking both")
        page.goto(index.as_uri())
        expect(page.locator("tr", has_text=spike.name).get_by_role("link", name="report")).to_be_visible()
        page.locator("tr", has_text=fixed.name).get_by_role("link", name="report").click()
        expect(page).to_have_url(re.compile(re.escape(fixed.name) + "/report.html$"))
    finally:
        stop_child(proc)
    output = log_path.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode in (0, 1), output[-3000:]
    assert folders_of(session) == [spike, fixed]  # the quit made no third folder

    first, second = run_json(spike), run_json(fixed)
    # The spike's own shape, stages and options; its stages inside its own span.
    assert first["shape"]["name"] == "spike" and first["options"]["shape"] == "spike"
    assert [stage["name"] for stage in first["stages"]] == ["baseline", "spike", "recovery"]
    (span,) = first["runs"]
    assert all(span["start"] - 1 <= s["start"] and s["end"] <= span["end"] + 1 for s in first["stages"])
    assert SPIKE_SECONDS - 1 <= span["end"] - span["start"] <= SPIKE_SECONDS + 10
    # The fixed-users test: no shape, no stages, its own options, and it began after the spike ended.
    assert second["shape"] is None and second["stages"] == [] and second["options"]["shape"] == "none"
    assert second["options"]["num_users"] == 2
    (span2,) = second["runs"]
    assert span2["start"] >= span["end"]
    assert second["started_at"] > first["ended_at"]
    for folder, document in ((spike, first), (fixed, second)):
        calls = logged_calls(folder)
        assert calls > 0 and document["llm"]["requests"] == calls == locust_total(folder), folder.name
        start, end = document["runs"][0]["start"], document["runs"][0]["end"]
        with next(folder.glob("requests-*.csv")).open(newline="") as handle:
            starts = [float(row["start_time"]) for row in csv.DictReader(handle)]
        assert start - 1 <= min(starts) and max(starts) <= end + 1, folder.name
    # Each report tells its own test: the spike's stages only in the spike's (no option is named
    # after the spike's first stage, so the name appears only where the stages are shown).
    assert "baseline" in (spike / "report.html").read_text()
    assert "baseline" not in (fixed / "report.html").read_text()
    text = index.read_text()
    assert f'href="{spike.name}/report.html"' in text and f'href="{fixed.name}/report.html"' in text


def _answers(page: Any, url: str) -> bool:
    try:
        page.goto(url)
    except Exception:  # noqa: BLE001 - not listening yet
        return False
    page.wait_for_selector("form")
    return True


def _runner_state(url: str) -> str:
    """The runner's state as the web UI's own poll reads it (/stats/requests)."""
    with urllib.request.urlopen(url + "stats/requests", timeout=10) as reply:
        return str(json.load(reply).get("state", ""))
