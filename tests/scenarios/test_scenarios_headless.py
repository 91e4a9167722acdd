"""A headless run of the real locustfile with all three scenario users and --image-mode both."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from users.mix import scenario_summaries


def _wired(repo_root: Path) -> bool:
    text = (repo_root / "locustfile.py").read_text()
    return all(
        name in text for name in ("VisionUser", "StreamingUser", "add_scenario_arguments", "apply_mix")
    )


@pytest.fixture
def locust_run(repo_root: Path, clean_env: dict):
    if not _wired(repo_root):
        pytest.skip("locustfile.py does not expose the scenario users and options yet")

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "locust", "--headless", *args],
            cwd=repo_root,
            env=clean_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def test_all_three_users_with_both_image_modes(locust_run, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = locust_run(
        "-u", "5", "-r", "5", "-t", "14s", "--results-dir", str(out),
        "--image-mode", "both", "--mix", "moderation=3,vision=1,stream=1",
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    rows = list(csv.DictReader((out / "locust_stats.csv").open()))
    by_name = {r["Name"]: r for r in rows}
    assert {"moderation", "vision", "stream"} <= set(by_name)
    assert by_name["Aggregated"]["Failure Count"] == "0", log[-3000:]

    summary = scenario_summaries(out)
    moderation = summary["moderation"]
    assert moderation["judged"] > 0 and moderation["accuracy"] is not None
    assert moderation["repeated_items"] > 0 and moderation["consistency"] is not None
    raw, optimized = summary["vision"]["raw"], summary["vision"]["optimized"]
    assert optimized["mean_request_bytes"] < raw["mean_request_bytes"]
    assert optimized["mean_prompt_tokens"] < raw["mean_prompt_tokens"]
    assert optimized["cost_per_1000_images_usd"] < raw["cost_per_1000_images_usd"]
    assert optimized["mean_prep_ms"] > 0 == raw["mean_prep_ms"]
    saved = out / "scenarios.json"
    if saved.exists():  # written by the locustfile at the end of a run
        assert json.loads(saved.read_text())["vision"]["raw"]["calls"] == raw["calls"]


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
