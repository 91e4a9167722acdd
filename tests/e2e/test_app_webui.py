"""An app test started from the web UI's form: the example service started by the suite, the
test's own folder with its model calls and a report that splits the time, the service stopped at
the quit. A real browser, a real Locust, the example service and the bundled (quick) emulator."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.locust_child import quick_emulator_config, stop_child
from tests.e2e.test_app_user import assert_gone, example_service, started_pid
from tests.e2e.test_webui_sessions import SPIKE, ended, free_port, opened_web_ui, start_from_form
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)


def test_an_app_test_from_the_form_is_attributed_and_its_service_stopped(
    repo_root: Path, clean_env: dict, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    session = tmp_path / "session"
    log_path = tmp_path / "locust.log"
    service = example_service(pool=2)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "--web-port", str(port := free_port()), "--results-dir",
             str(session), "--emulator-config", quick_emulator_config(tmp_path), "--mix", "app=1",
             "--app-command", service, "--app-url", "http://127.0.0.1:{port}/moderate",
             "--app-expect-json", "verdict", "--stop-timeout", "2"],
            cwd=repo_root, env=clean_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        page = opened_web_ui(browser, proc, f"http://127.0.0.1:{port}/", log_path)
        # The form shows the app's options as given; {port} is the service's when a test starts.
        expect(page.get_by_label("App URL (app)")).to_have_value("http://127.0.0.1:{port}/moderate")
        start_from_form(page, "spike", SPIKE)
        (test,) = wait_until(lambda: ended(session, 1), 90, "the app test to end by itself")
        wait_until(lambda: (test / "report.html").exists(), 150, "its report")
    finally:
        stop_child(proc)
    output = log_path.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode in (0, 1), output[-3000:]
    assert_gone(started_pid(output))

    document = json.loads((test / "run.json").read_text())
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/moderate", document["options"]["app_url"])
    assert document["attribution"]["records"] > 0 and document["attribution"].get("error") is None
    with (test / "model_calls.csv").open() as handle:
        records = {row["request_id"] for row in csv.DictReader(handle)}
    with next(test.glob("requests-*.csv")).open() as handle:
        answered = [row for row in csv.DictReader(handle) if row["error_kind"] == ""]
    assert answered and {row["request_id"] for row in answered} <= records
    report = (test / "report.html").read_text()
    assert "Where the time goes: app or model" in report
    assert "app calls were matched with their model calls" in report
    assert (session / "app-service.log").read_text().count("listening on") == 1
