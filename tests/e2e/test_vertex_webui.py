"""Vertex AI from the web UI's start form: the backend, project and location chosen in the browser
reach the run (calls on the Vertex paths of the bundled emulator, signed in with a key made for
the run), and a choice Vertex cannot serve is refused in the form, starting nothing."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.locust_child import read_rows, stop_child
from tests.e2e.test_webui_sessions import (
    _runner_state,
    ended,
    folders_of,
    logged_calls,
    opened_web_ui,
    start_quick_web_ui,
)
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
    log_path = tmp_path / "locust.log"
    proc, url = start_quick_web_ui(repo_root, {**clean_env, "NO_GCE_CHECK": "True"}, session, log_path)
    try:
        page = opened_web_ui(browser, proc, url, log_path)

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
