"""Vertex AI from the web UI's start form: the backend, project and location chosen in the browser
reach the run (calls on the Vertex paths of the bundled emulator, signed in with a key made for
the run), and a choice Vertex cannot serve is refused in the form, starting nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.locust_child import quick_emulator_config, read_rows, stop_child
from tests.e2e.test_webui_sessions import _answers, _runner_state, ended, folders_of, free_port, logged_calls
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)


def post_swarm(url: str, fields: dict[str, str]) -> dict[str, Any]:
    form = urllib.parse.urlencode({"user_count": "1", "spawn_rate": "1", "host": "", **fields}).encode()
    with urllib.request.urlopen(url + "swarm", data=form, timeout=120) as reply:
        return json.loads(reply.read())


def test_a_vertex_run_started_from_the_form(
    repo_root: Path, clean_env: dict, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    session = tmp_path / "session"
    port = free_port()
    log_path = tmp_path / "locust.log"
    env = {**clean_env, "NO_GCE_CHECK": "True"}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--web-port", str(port), "--results-dir", str(session),
             "--emulator-config", quick_emulator_config(tmp_path), "--mix", "moderation=1",
             "--stop-timeout", "2"],
            cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        page = browser.new_page()
        wait_until(lambda: proc.poll() is not None or _answers(page, url), 60, "the web UI")
        assert proc.poll() is None, log_path.read_text()[-3000:]

        # Refused in the form: the legacy SDK cannot reach Vertex. Nothing starts.
        refused = post_swarm(url, {"backend": "vertex", "transport": "legacy"})
        assert refused["success"] is False and "cannot reach Vertex AI" in refused["message"], refused
        assert folders_of(session) == [] if session.exists() else True

        form = page.locator("form")
        form.locator('select[name="backend"]').select_option("vertex")
        form.locator('input[name="project"]').fill("web-project")
        form.locator('input[name="location"]').fill("us-central1")
        form.locator('input[name="userCount"]').fill("2")
        form.locator('input[name="spawnRate"]').fill("2")
        form.get_by_role("button", name="Start").click()
        expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=30_000)
        wait_until(lambda: len(folders_of(session)) == 1, 30, "the test's folder")
        (folder,) = folders_of(session)
        wait_until(lambda: logged_calls(folder) >= 3, 90, "calls of the Vertex test")
        page.get_by_role("button", name="Stop").click()
        wait_until(lambda: ended(session, 1), 60, "the test to end")
        wait_until(lambda: _runner_state(url) == "stopped", 60, "Locust's runner to stop")
    finally:
        stop_child(proc)
    output = log_path.read_text()
    assert "Traceback" not in output, output[-3000:]

    run = json.loads((folder / "run.json").read_text())
    assert run["settings"]["backend"] == "vertex"
    assert (run["settings"]["project"], run["settings"]["location"]) == ("web-project", "us-central1")
    calls = [row for path in folder.glob("requests-*.csv") for row in read_rows(path)]
    assert calls and all(row["error_kind"] in ("", "cancelled") for row in calls), calls[:3]
    auth = [row for path in folder.glob("auth-*.csv") for row in read_rows(path)]
    assert [row["event"] for row in auth][:1] == ["refresh"], auth
    stats = json.loads((session / "emulator_stats.json").read_text())  # the session's one emulator
    assert stats["oauth"]["tokens_issued"] >= 1
    # genai's own Vertex path (v1beta1, projects/.../locations/.../publishers/google/models/...).
    assert set(stats["requests_by_route"]) == {"v1beta1/projects.locations.publishers.models.generateContent"}
