"""A headless run of the real locustfile with all three scenario users and --image-mode both."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from reports import llm_analysis, scenario_analysis
from reports.loading import load_results
from tests.e2e.locust_child import quick_emulator_config, run_locust


@pytest.fixture
def locust_run(repo_root: Path, clean_env: dict):
    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_locust(repo_root, clean_env, *args, timeout=timeout)

    return run


def test_all_three_users_with_both_image_modes(locust_run, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Quick answers: enough moderation verdicts in 14 s for precision and recall on a busy machine.
    proc = locust_run(
        "-u", "5", "-r", "5", "-t", "14s", "--results-dir", str(out),
        "--image-mode", "both", "--mix", "moderation=3,vision=1,stream=1",
        "--emulator-config", quick_emulator_config(tmp_path),
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    rows = list(csv.DictReader((out / "locust_stats.csv").open()))
    by_name = {r["Name"]: r for r in rows}
    assert {"moderation", "vision", "stream"} <= set(by_name)
    failures = (out / "locust_failures.csv").read_text(encoding="utf-8")
    assert by_name["Aggregated"]["Failure Count"] == "0", failures + log[-3000:]

    # The scenario figures as the report computes them from the results folder.
    requests = llm_analysis.add_derived(load_results(out).requests)
    moderation = scenario_analysis.moderation(requests).table.set_index("scenario").loc["moderation"]
    assert moderation["answers"] > 0 and moderation["accuracy"] == moderation["accuracy"]  # not NaN
    assert moderation["items_repeated"] > 0 and moderation["consistency"] == moderation["consistency"]
    assert moderation["precision"] == moderation["precision"] and moderation["recall"] == moderation["recall"]
    variants = scenario_analysis.variant_comparison(requests)
    vision = variants[variants["scenario"] == "vision"].set_index("variant")
    raw, optimized = vision.loc["raw"], vision.loc["optimized"]
    assert optimized["request_kb"] < raw["request_kb"]
    # The default model counts an image by its media resolution, whatever its size: the pipeline
    # saves bytes, not tokens or cost, and the report says so.
    assert optimized["prompt_tokens"] == raw["prompt_tokens"]
    assert optimized["cost_per_1k"] == optimized["cost_per_1k"]  # not NaN
    assert optimized["prep_ms"] > 0 == raw["prep_ms"]
    assert raw["items"] > 0 and optimized["items"] > 0
    # Every vision call Locust counted is in the comparison.
    assert raw["requests"] + optimized["requests"] == int(by_name["vision"]["Request Count"])
    html = (out / "report.html").read_text(encoding="utf-8")  # built by the run at its end
    assert '<section id="moderation">' in html and "Vision: raw against optimized images" in html
    assert "Cost / 1,000 items (USD)" in html and "Items judged ≥ 2 times" in html
    assert "saves bytes and upload time, not tokens or cost" in html


def test_a_bad_fixture_file_ends_the_run_with_one_line(locust_run, tmp_path: Path) -> None:
    bad = tmp_path / "posts.jsonl"
    bad.write_text(
        '{"id": "a", "text": "hello", "label": "benign"}\n{"id": "b", "text": "x", "label": "maybe"}\n'
    )
    proc = locust_run("-u", "1", "-t", "5s", "--results-dir", str(tmp_path / "r"), "--posts-file", str(bad))
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{bad}:2: label 'maybe' must be one of benign, violating" in log
    assert "Traceback" not in log
