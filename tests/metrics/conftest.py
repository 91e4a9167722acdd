"""Fixtures for the metrics tests; the helpers they use live in llm_helpers.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from llm_helpers import locust_cmd


@pytest.fixture
def run_headless(repo_root: Path, clean_env: dict[str, str]):
    """Run a headless test to the end; returns (CompletedProcess, combined output)."""

    def run(folder: Path, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, str]:
        proc = subprocess.run(
            locust_cmd("--headless", "--results-dir", str(folder), *args),
            cwd=repo_root,
            env=clean_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return proc, proc.stdout + proc.stderr

    return run
