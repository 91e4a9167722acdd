"""The walking skeleton end to end: real Locust, real SDK, the bundled emulator, the HTML report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.catalogue import default_model

FAKE_KEY = "AIzaSyFAKE-e2e-test-key-0123456789abcdef"


def emulator_processes() -> set[int]:
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "-m" in cmdline and "emulator" in cmdline:
            found.add(proc.info["pid"])
    return found


def locust_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "--headless", *args]


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still alive (zombies count as gone) after waiting up to `timeout` for them to end."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return {p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}


def aggregated_row(stats_csv: Path) -> dict[str, str]:
    rows = list(csv.DictReader(stats_csv.open()))
    return next(r for r in rows if r["Name"] == "Aggregated")


def test_headless_run_writes_results_and_report(
    repo_root: Path, tmp_path: Path, clean_env: dict, browser
) -> None:
    before = emulator_processes()
    out = tmp_path / "run"
    proc = subprocess.run(
        locust_cmd("-u", "5", "-r", "5", "-t", "10s", "--results-dir", str(out), "--api-key", FAKE_KEY),
        cwd=repo_root,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]

    total = aggregated_row(out / "locust_stats.csv")
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    names = {r["Name"] for r in csv.DictReader((out / "locust_stats.csv").open())}
    assert "moderation" in names

    history = list(csv.DictReader((out / "locust_stats_history.csv").open()))
    assert len(history) >= 5 and max(int(r["User Count"]) for r in history) == 5

    logs = list(out.glob("requests-*.csv"))
    assert len(logs) == 1
    logged = list(csv.DictReader(logs[0].open()))
    assert len(logged) == int(total["Request Count"])
    assert all(r["model"] == default_model() for r in logged)
    assert {r["scenario"] for r in logged} <= {"moderation", "vision", "stream"}
    # Calls in flight when -t ended (--stop-timeout 0) are logged as cancelled, with no answer.
    answered = [r for r in logged if r["error_kind"] != "cancelled"]
    assert answered and all(int(r["prompt_tokens"]) > 0 for r in answered), "tokens come from usageMetadata"
    assert all(r["attempts"] == "1" for r in logged if r["error_kind"] == "cancelled")

    run = json.loads((out / "run.json").read_text())
    assert run["host"].startswith("http://127.0.0.1:")
    assert run["started_at"] and run["ended_at"]
    assert "locust" in run["versions"]
    # Each option's default beside its value, so the report can tell the ones the user set.
    defaults = run["option_defaults"]
    assert set(defaults) == set(run["options"])
    assert (run["options"]["num_users"], defaults["num_users"]) == (5, None)
    assert run["options"]["mix"] == defaults["mix"], "--mix was not given"
    assert "api_key" not in defaults
    assert (out / "emulator_stats.json").exists()

    report = out / "report.html"
    assert report.exists() and report.stat().st_size > 10_000
    assert f"Report: {report.resolve()}" in proc.stdout

    # The report of a real run opens offline with every chart drawn.
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))

    def offline_only(route) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            problems.append(route.request.url)
            route.abort()

    page.route("**/*", offline_only)
    page.goto(report.as_uri(), wait_until="load")
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert problems == [] and len(widths) >= 6 and all(w > 0 for w in widths), (problems, widths)
    assert "moderation" in page.inner_text("body")
    # The options given on the command line are the open "Options you set"; the rest are folded.
    chosen = page.locator("h3", has_text="Options you set").locator("xpath=following-sibling::dl[1]")
    given = chosen.locator("dt").all_inner_texts()
    assert {"num_users", "spawn_rate", "run_time", "results_dir"} <= set(given) and "mix" not in given, given

    # The key was sent (to the loopback emulator) but is written nowhere.
    for path in out.rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(errors="replace"), path
    assert FAKE_KEY not in log

    assert not wait_gone(emulator_processes() - before), "an emulator process was left behind"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--max-output-tokens", "-3"), ("--max-output-tokens", "at least 0")),
        (("--thinking-budget", "512"), ("--thinking-budget", "takes --thinking-level")),
        (("--model", "gemini-2.0-flash"), ("shut down on 2026-06-01", "--model gemini-3.5-flash-lite")),
        # A non-loopback address that stays on this machine: the run must refuse before any traffic.
        (("--host", "http://0.0.0.0:9"), ("GEMINI_API_KEY",)),
        (("--host", "generativelanguage.googleapis.com", "--api-key", FAKE_KEY), ("not an http(s) URL",)),
        (("--results-dir", "{file}/sub"), ("--results-dir", "cannot write there")),
        (("--mix", "chat=1"), ("--mix", "no scenario named 'chat'")),
        (("--emulator-seed", "x7"), ("--emulator-seed 'x7' is not a whole number",)),
    ],
    ids=["option", "thinking", "retired-model", "no-key", "host", "results-dir", "mix", "emulator-seed"],
)
def test_bad_input_at_start_gives_one_clear_line(
    repo_root: Path, clean_env: dict, tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    args = tuple(arg.replace("{file}", str(a_file)) for arg in args)
    if "--results-dir" not in args:
        args = (*args, "--results-dir", str(tmp_path / "r"))
    proc = subprocess.run(
        locust_cmd("-t", "5s", *args),
        cwd=repo_root,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert all(fragment in proc.stderr for fragment in fragments), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert FAKE_KEY not in proc.stderr + proc.stdout


@pytest.mark.parametrize("transport", ["genai", "legacy", "http"])
def test_each_transport_runs_a_clean_headless_test(
    repo_root: Path, tmp_path: Path, clean_env: dict, transport: str
) -> None:
    out = tmp_path / transport
    proc = subprocess.run(
        locust_cmd(
            "-u", "4", "-r", "4", "-t", "6s", "--transport", transport, "--mix", "moderation=1,stream=1",
            "--results-dir", str(out),
        ),
        cwd=repo_root, env=clean_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    total = aggregated_row(out / "locust_stats.csv")
    assert int(total["Request Count"]) > 0 and int(total["Failure Count"]) == 0
    logged = list(csv.DictReader(next(out.glob("requests-*.csv")).open()))
    assert {r["transport"] for r in logged} == {transport}
    streamed = [r for r in logged if r["scenario"] == "stream" and not r["error_kind"]]
    assert streamed and all(float(r["ttft_ms"]) > 0 and int(r["output_tokens"]) > 0 for r in streamed)
