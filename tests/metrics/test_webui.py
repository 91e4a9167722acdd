"""The web UI in a real browser: the start form's options, the LLM tab's live rows, the CSV, loopback."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil
from llm_helpers import FAST, NOT_LOOPBACK, free_port, locust_cmd, read_rows

from core.catalogue import default_model
from tests.e2e.locust_child import quick_emulator_config, stop_child
from tests.waiting import wait_until


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    def listening() -> bool:
        assert proc.poll() is None, "locust exited before its web UI came up"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout, f"Locust's web UI on port {port}")


def listening_addresses(pid: int, port: int) -> set[str]:
    process = psutil.Process(pid)
    return {
        c.laddr.ip
        for c in process.net_connections(kind="inet")
        if c.status == "LISTEN" and c.laddr.port == port
    }


def test_llm_tab_shows_live_rows_in_a_real_browser(
    repo_root: Path, clean_env: dict, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    out = tmp_path / "run"
    port = free_port()
    log_path = tmp_path / "locust.log"
    with log_path.open("w") as log:
        # No --web-host: the suite's default must bind loopback only.
        proc = subprocess.Popen(
            locust_cmd("--web-port", str(port), "--results-dir", str(out), *FAST),
            cwd=repo_root,
            env=clean_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(port, proc)
        assert listening_addresses(proc.pid, port) == {"127.0.0.1"}
        url = f"http://127.0.0.1:{port}/"
        page = browser.new_page()
        page.goto(url)
        form = page.locator("form")
        for label in ("Max Cost", "Slo", "Model", "Transport", "Mix", "Shape"):
            expect(form.get_by_text(label, exact=False).first).to_be_attached()

        # Off loopback without a budget the form's own error comes back and nothing starts.
        refused = page.request.post(
            url + "swarm", form={"user_count": "1", "spawn_rate": "1", "host": NOT_LOOPBACK}
        )
        assert refused.json()["success"] is False and "--max-cost" in refused.json()["message"]
        # A bad Gemini option typed in the form is answered in the form, before anything runs.
        refused = page.request.post(
            url + "swarm", form={"user_count": "1", "spawn_rate": "1", "max_output_tokens": "-5"}
        )
        assert refused.json()["success"] is False and "--max-output-tokens" in refused.json()["message"]
        refused = page.request.post(
            url + "swarm", form={"user_count": "1", "spawn_rate": "1", "mix": "chat=2"}
        )
        assert refused.json()["success"] is False and "--mix" in refused.json()["message"]

        page.get_by_label("Number of users (peak concurrency)").fill("3")
        page.get_by_label("Ramp up (users started/second)").fill("3")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="LLM").click()
        total = page.locator("tr", has_text="Aggregated")
        expect(total).to_be_visible(timeout=30_000)
        expect(page.locator("th", has_text="TTFT p95 ms")).to_be_visible()
        expect(page.locator("th", has_text="Thinking tokens")).to_be_visible()
        calls = total.locator("td").nth(2)
        expect(calls).not_to_have_text("0", timeout=30_000)
        assert int(calls.inner_text().replace(",", "")) > 0
        scenario_row = page.locator("tr", has_text=default_model()).first
        cells = scenario_row.locator("td").all_inner_texts()
        assert cells[0] == default_model() and cells[1] and int(cells[2].replace(",", "")) > 0

        page.get_by_role("tab", name="Download Data").click()
        link = page.get_by_role("link", name="Download LLM stats CSV")
        expect(link).to_be_visible()
        csv_text = page.request.get(url + link.get_attribute("href").removeprefix("./")).text()
        assert csv_text.startswith("model,scenario,requests,")
    finally:
        stop_child(proc, signal.SIGTERM, timeout=30)  # Locust shuts down in order: final files are written
    # A web-UI session writes one folder per test under the session's (issue 16).
    rows = read_rows(next(out.rglob("llm_stats.csv")))
    assert int(rows[-1]["requests"]) > 0, log_path.read_text()[-3000:]


# Charts that must show data: (chart, series) of llm_live.js's SVG paths
LIVE_CHARTS = (("ttft", "p95"), ("tokens", "tokens/s"), ("cost", "USD"))
NO_HORIZONTAL_SCROLL = """() => [document.documentElement, document.querySelector('#gemini-llm-live'),
    document.querySelector('#gemini-llm-live + .MuiTableContainer-root')]
    .every(node => node && node.scrollWidth <= node.clientWidth)"""


def test_llm_tab_shows_live_verdicts_budget_banner_and_charts_at_1366px(
    repo_root: Path, clean_env: dict, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    quick = quick_emulator_config(tmp_path)
    port = free_port()
    log_path = tmp_path / "locust.log"
    args = ("--web-port", str(port), "--results-dir", str(tmp_path / "run"), "--emulator-config", quick)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            locust_cmd(*args, "--slo", "ttft_p95<=1ms,error_rate<=50%", "--stop-timeout", "3"),
            cwd=repo_root,
            env=clean_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(port, proc)
        url = f"http://127.0.0.1:{port}/"
        page = browser.new_page(viewport={"width": 1366, "height": 768})

        def start_test(max_cost: str) -> None:
            # Posted like the start form does; the page is reloaded to follow the new test.
            started = page.request.post(
                url + "swarm", form={"user_count": "4", "spawn_rate": "4", "max_cost": max_cost}
            )
            assert started.json()["success"] is True, started.text()
            page.goto(url + "?tab=llm")
            page.get_by_role("tab", name="LLM").click()

        def live_state() -> str:
            return page.request.get(url + "gemini/llm/live").json()["state"]

        # 1. No budget: the failing gate with its value, and the charts filling while the run goes.
        start_test("0")
        failing = page.locator('#gemini-llm-live [data-gate="ttft_p95<=1ms"]')
        expect(failing).to_have_attribute("data-passed", "false", timeout=30_000)
        expect(failing).to_contain_text(re.compile(r"FAIL ttft_p95<=1ms · now [\d,]+ ms"), timeout=30_000)
        expect(page.locator('#gemini-llm-live [data-gate="error_rate<=50%"]')).to_contain_text("PASS")
        for chart, series in LIVE_CHARTS:  # the panel is redrawn at each poll: find the path anew
            path = f'#gemini-llm-live figure[data-chart="{chart}"] path[data-series="{series}"]'
            page.wait_for_function(
                "s => Number(document.querySelector(s)?.dataset.points) >= 3", arg=path, timeout=30_000
            )
            assert page.locator(path).get_attribute("d").count("L") >= 2  # a line, not a lone point
        assert live_state() == "running"
        assert page.evaluate(NO_HORIZONTAL_SCROLL), "the LLM tab scrolls sideways at 1,366 px"
        expect(page.locator("#gemini-budget-banner")).to_be_hidden()

        page.request.post(url + "stop")
        wait_until(lambda: live_state() == "stopped", 30, "the first test to stop")
        # 2. A budget of one call's cost: it stops the test and the banner says so, next to the gate.
        start_test("0.0001")
        banner = page.locator("#gemini-budget-banner")
        expect(banner).to_be_visible(timeout=30_000)
        expect(banner).to_contain_text("The cost budget stopped this test")
        expect(banner).to_contain_text("--max-cost 0.0001 USD")
        expect(page.locator("#gemini-llm-live [data-budget=reached]")).to_contain_text("of 0.0001 USD spent")
        expect(failing).to_contain_text("FAIL", timeout=30_000)
        wait_until(lambda: live_state() == "stopped", 30, "the budget to stop the test")
        page.reload()
        # It stays until the next test starts (which clears it: test_webui_live.py; each test here
        # costs a report at the end).
        expect(banner).to_be_visible()
    finally:
        stop_child(proc, signal.SIGTERM, timeout=30)
