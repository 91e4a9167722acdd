"""A scenario and a shape added from outside the suite's packages, each one module, run through the
real `locust` command against the bundled emulator (issue 12's done-when)."""

from __future__ import annotations

import glob
import json
import subprocess
from pathlib import Path

import pandas as pd

from tests.e2e.locust_child import quick_emulator_config, run_locust

PLUGINS = "locustfile.py,tests/e2e/plugins/toy_scenario.py,tests/e2e/plugins/toy_shape.py"


def locust(repo_root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return run_locust(repo_root, env, "-f", PLUGINS, *args, timeout=150)


def test_a_toy_scenario_and_a_toy_shape_run_from_their_own_modules(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "toy"
    proc = locust(
        repo_root, clean_env, "--mix", "toy=2,moderation=1", "--toy-words", "5",
        "--shape", "sawtooth", "--tooth-users", "3", "--tooth", "3s", "--teeth", "2",
        # Quick answers: calls end well within a 3-s tooth on a busy machine (this is not about latency).
        "--emulator-config", quick_emulator_config(tmp_path), "--results-dir", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["shape"]["name"] == "sawtooth" and run["shape"]["params"]["teeth"] == 2
    assert [stage["name"] for stage in run["stages"]] == ["tooth-1", "tooth-2"]
    calls = pd.concat(pd.read_csv(f) for f in glob.glob(str(out / "requests-*.csv")))
    toy = calls[calls["scenario"] == "toy"]
    assert len(toy) > 0 and set(calls["scenario"]) <= {"toy", "moderation"}
    assert set(toy["item_id"]) <= {f"toy-{n}" for n in range(4)}
    # every toy call answered; only the calls cut off by the end of the run are cancelled
    assert set(toy["error_kind"].dropna()) <= {"cancelled"}, toy["error_kind"].value_counts()
    assert toy["error_kind"].isna().sum() > 0
    assert set(calls["stage"].dropna()) <= {"tooth-1", "tooth-2"}


def test_a_plugins_own_options_are_checked_like_the_suites(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    bad_words = locust(
        repo_root, clean_env, "--mix", "toy=1", "--toy-words", "many", "-t", "2s",
        "--results-dir", str(tmp_path / "words"),
    )  # fmt: skip
    assert bad_words.returncode == 2
    assert "--toy-words 'many' is not a whole number" in bad_words.stderr
    bad_shape = locust(
        repo_root, clean_env, "--mix", "toy=1", "--shape", "sawtooth", "--tooth", "3s",
        "--results-dir", str(tmp_path / "shape"),
    )  # fmt: skip
    assert bad_shape.returncode == 2
    assert "--tooth-users is required for --shape sawtooth" in bad_shape.stderr
    assert "Traceback" not in bad_words.stderr + bad_shape.stderr
