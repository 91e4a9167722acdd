"""The architecture contract (pyproject.toml, [tool.importlinter]) holds, and it can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = (
    "core",
    "users",
    "metrics",
    "shapes",
    "emulator",
    "fixtures",
    "reports",
    "benchmarks",
    "lifecycle",
    "examples",
)
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def copy_of_the_suite(repo_root: Path, tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(repo_root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo_root / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_suite_keeps_its_layers(copy_of_the_suite: Path) -> None:
    proc = lint_imports(copy_of_the_suite)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("core/quantiles.py", "users.base"),
        ("shapes/runtime.py", "metrics.llm"),
        ("reports/html.py", "fixtures"),
        ("examples/moderation_service/app.py", "core.quantiles"),
    ],
    ids=[
        "core-imports-users",
        "shapes-imports-metrics",
        "reports-imports-fixtures",
        "examples-import-the-suite",
    ],
)
def test_an_upward_import_breaks_the_contract(copy_of_the_suite: Path, module: str, forbidden: str) -> None:
    path = copy_of_the_suite / module
    path.write_text(path.read_text() + f"\nimport {forbidden}  # an upward import\n")
    proc = lint_imports(copy_of_the_suite)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "BROKEN" in proc.stdout and forbidden.split(".")[0] in proc.stdout
