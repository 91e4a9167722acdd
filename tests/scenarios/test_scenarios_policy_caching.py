"""A moderation run with the bundled long policy (--policy-file) against the bundled emulator: the
repeated system prompt meets implicit caching, and the report shows the cached tokens and a lower
cost per call than the same calls at the full input price."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.options import OptionError
from reports import caching, llm_analysis
from reports.loading import load_results
from tests.e2e.locust_child import run_locust
from users.moderation import INSTRUCTION, POLICY_FILE, system_instruction
from users.pricing import PriceTable
from users.scenario_options import ScenarioSettings

POLICY = "fixtures/data/moderation_policy.md"


def test_long_policy_is_cached_and_cheaper(repo_root: Path, clean_env: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "emulator.json"
    config.write_text('{"caching": {"implicit_hit_probability": 1}}')
    proc = run_locust(
        repo_root, clean_env,
        "-u", "3", "-r", "3", "-t", "6s", "--results-dir", str(out), "--mix", "moderation=1",
        "--policy-file", POLICY, "--emulator-profile", "fast", "--emulator-config", str(config),
        timeout=120,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]

    requests = llm_analysis.add_derived(load_results(out).requests)
    table = caching.caching_figures(requests).set_index("scenario")
    moderation = table.loc["moderation"]
    # Every call after the first of the policy prefix hits (probability 1): most of the prompt.
    assert moderation["cached_calls"] >= moderation["calls"] - 3 > 0  # a first call per user may miss
    assert 0.5 < moderation["cached_share"] < 1
    assert moderation["cost_per_call"] < moderation["full_cost_per_call"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Context caching and cost" in html and "Cost per call without caching (USD)" in html


def test_a_bad_policy_file_is_one_line(repo_root: Path, clean_env: dict, tmp_path: Path) -> None:
    missing = tmp_path / "nope.md"
    proc = run_locust(
        repo_root, clean_env, "-u", "1", "-t", "3s", "--results-dir", str(tmp_path / "r"),
        "--mix", "moderation=1", "--policy-file", str(missing), timeout=60,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 2, log[-2000:]
    assert f"--policy-file {missing}: file not found: give a text file with your policy" in log
    assert "Traceback" not in log


def test_cached_saving_is_what_full_price_input_would_add() -> None:
    prices = PriceTable.load(day=date(2026, 11, 29))  # 3.8 Flash: 0.75 input, 0.075 cached, per 1M
    saving = prices.cached_saving("gemini-3.8-flash", 10_000, 8_000)
    assert saving == pytest.approx(8_000 * (0.75 - 0.075) / 1_000_000)
    with_cache = prices.cost("gemini-3.8-flash", 10_000, 100, 0, 8_000).total
    assert with_cache + saving == pytest.approx(prices.cost("gemini-3.8-flash", 10_000, 100, 0).total)
    assert prices.cached_saving("gemini-3.8-flash", 10_000, None) == 0.0


def test_policy_file_becomes_the_system_instruction(tmp_path: Path) -> None:
    def settings(path: Path) -> ScenarioSettings:
        return ScenarioSettings(extra=((POLICY_FILE.flag, str(path)),))

    policy = tmp_path / "policy.md"
    policy.write_text("# Our policy\nNo spam.\n")
    instruction = system_instruction(settings(policy))
    assert instruction.startswith("# Our policy\nNo spam.") and instruction.endswith(INSTRUCTION)
    assert system_instruction(ScenarioSettings()) == INSTRUCTION
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(OptionError, match="the file is empty"):
        system_instruction(settings(empty))
    with pytest.raises(OptionError, match="is a folder"):
        system_instruction(settings(tmp_path))
