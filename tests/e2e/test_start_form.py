"""The start form grouped by concern, in real Chromium: groups with short labels and the help on
hover, a shape's own fields only for that shape (users and ramp-up hidden while a shape drives the
users), the grouped form still submitting what was typed, and the current stage during a shaped run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.locust_child import quick_emulator_config, stop_child
from tests.e2e.test_webui_startup import free_port, wait_for_page
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

USERS = "Number of users (peak concurrency)"
SPAWN_RATE = "Ramp up (users started/second)"


@pytest.fixture
def web_ui(repo_root: Path, clean_env: dict, tmp_path: Path) -> Iterator[str]:
    """A Locust web UI on loopback over the bundled emulator (quick answers, text calls only)."""
    quick = quick_emulator_config(tmp_path)
    port = free_port()
    log = (tmp_path / "locust.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "--web-port", str(port), "--results-dir", str(tmp_path / "run"),
         "--mix", "moderation=1", "--emulator-config", quick, "--stop-timeout", "2"],
        cwd=repo_root, env=clean_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_page(url, proc)
        yield url
    finally:
        try:
            stop_child(proc, signal.SIGTERM)
        finally:
            log.close()
    text = (tmp_path / "locust.log").read_text()
    assert "Traceback" not in text, text[-3000:]


def open_form(browser: Any, url: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(url)
    expect(page.get_by_role("heading", name="Gemini", exact=True)).to_be_visible()
    return page


def test_the_grouped_form_hides_what_the_shape_does_not_use_and_starts_the_run_it_shows(
    web_ui: str, browser: Any, tmp_path: Path
) -> None:
    """One web UI for both halves: a Locust start-up and shutdown take most of this test's time."""
    page = open_form(browser, web_ui)
    check_layout(page)
    page.reload()
    check_run(page, web_ui)
    assert page.errors == []
    # The run's own record has the values typed into the grouped form.
    typed = {"shape": "ramp", "peak_users": "2", "hold": "2m", "max_output_tokens": 300}
    wait_until(lambda: typed.items() <= run_options(tmp_path / "run").items(), what=f"run.json with {typed}")


def run_options(results: Path) -> dict[str, Any]:
    for path in results.glob("**/run.json"):
        try:
            return json.loads(path.read_text(encoding="utf-8")).get("options") or {}
        except ValueError:
            pass  # being written: read it again on the next poll
    return {}


def check_layout(page: Any) -> None:
    """Groups in order, short labels, the help on hover, and only the chosen shape's fields."""
    from playwright.sync_api import expect

    groups = ("Gemini", "Scenarios", "Load shape", "Budget and SLOs")
    tops = [page.get_by_role("heading", name=g, exact=True).bounding_box()["y"] for g in groups]
    assert tops == sorted(tops), f"groups out of order: {dict(zip(groups, tops, strict=True))}"
    gemini_top, scenarios_top = tops[0], tops[1]
    model_top = page.get_by_label("Model", exact=True).bounding_box()["y"]
    assert gemini_top < model_top < scenarios_top, "Model is not under the Gemini heading"

    # Short labels, every one: no help text squeezed into a label.
    labels = page.locator("[data-gemini-option] label").all_inner_texts()
    assert len(labels) >= 30 and all(len(text) <= 30 for text in labels), labels
    # The whole argparse help is on hover (the field's title), not cut short.
    budget = page.get_by_label("Max cost (USD)", exact=True)
    budget.hover()
    help_text = page.evaluate("templateArgs.extra_options.max_cost.help_text")
    assert "required for any host that is not loopback" in help_text
    expect(page.locator("[data-gemini-option='max_cost']")).to_have_attribute("title", help_text)
    expect(budget).to_have_attribute("title", help_text)

    users, spawn_rate = page.get_by_label(USERS), page.get_by_label(SPAWN_RATE)
    shape = page.get_by_label("Load shape", exact=True)
    ramp_fields = [
        page.get_by_label(name, exact=True) for name in ("Peak users", "Ramp-up time", "Hold time")
    ]
    spike_field = page.get_by_label("Baseline users", exact=True)
    capacity_field = page.get_by_label("Start rate (/s)", exact=True)
    stage_classes = page.get_by_label("Stage classes", exact=True)

    # No shape: Locust's own users and ramp-up; no shape's fields.
    expect(users).to_be_visible()
    expect(spawn_rate).to_be_visible()
    for hidden in (*ramp_fields, spike_field, capacity_field, stage_classes):
        expect(hidden).to_be_hidden()

    shape.select_option("ramp")
    expect(users).to_be_hidden()
    expect(spawn_rate).to_be_hidden()
    for field in (*ramp_fields, stage_classes):
        expect(field).to_be_visible()
    expect(spike_field).to_be_hidden()
    expect(capacity_field).to_be_hidden()

    shape.select_option("capacity")  # steps of rate: no stage classes, no ramp
    expect(capacity_field).to_be_visible()
    expect(page.get_by_label("Step duration", exact=True)).to_be_visible()
    expect(stage_classes).to_be_hidden()
    expect(ramp_fields[0]).to_be_hidden()

    # A re-render of the whole app (the theme switch) keeps the layout.
    page.locator("header button").last.click()
    shape.select_option("none")
    expect(users).to_be_visible()
    expect(capacity_field).to_be_hidden()
    expect(page.get_by_label("Max cost (USD)", exact=True)).to_be_visible()


def check_run(page: Any, url: str) -> None:
    """The grouped form submits what was typed; the run is that ramp, and its stage is shown."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Load shape", exact=True)).to_be_visible()
    page.get_by_label("Load shape", exact=True).select_option("ramp")
    page.get_by_label("Peak users", exact=True).fill("2")
    page.get_by_label("Ramp-up time", exact=True).fill("1s")
    page.get_by_label("Hold time", exact=True).fill("2m")
    page.get_by_label("Max output tokens", exact=True).fill("300")
    with page.expect_request(lambda r: r.url.endswith("/swarm") and r.method == "POST") as sent:
        page.get_by_role("button", name="Start").click()
    form = dict(pair.split("=", 1) for pair in sent.value.post_data.split("&"))
    # What was typed, under the options' own names; the hidden users field is still sent, unchanged.
    assert {k: form.get(k) for k in ("shape", "peak_users", "ramp_up", "hold", "max_output_tokens")} == {
        "shape": "ramp", "peak_users": "2", "ramp_up": "1s", "hold": "2m", "max_output_tokens": "300",
    }  # fmt: skip
    assert form.get("user_count") == "1"

    # The run is the form's ramp: its stage shows, and it holds the 2 peak users typed in.
    stage = page.locator("#gemini-stage")
    expect(stage).to_have_text("Stage: hold (ramp)", timeout=30_000)
    assert page.request.get(url + "gemini/stage").json() == {"shape": "ramp", "stage": "hold"}
    wait_until(
        lambda: page.request.get(url + "stats/requests").json()["user_count"] == 2,
        what="the form's 2 peak users running",
    )
    page.get_by_role("button", name="Stop").click()
    expect(stage).to_be_hidden(timeout=30_000)
