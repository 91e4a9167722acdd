"""Fixtures: copies of the fixed results folders under data/, since a report is written into its folder,
and hand-made request logs."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.outcome import OUTCOME_COLUMNS, Outcome

DATA = Path(__file__).parent / "data"


@pytest.fixture
def results_copy(tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(DATA / name, target)
        return target

    return copy


@pytest.fixture
def request_log(tmp_path: Path) -> Callable[..., Path]:
    """Writes a results folder holding one per-request log, as the suite writes it (header
    OUTCOME_COLUMNS, one Outcome a row), from hand-made Outcome fields; returns the folder.
    `without` drops columns, as a log of an older run lacks them."""

    def write(rows: list[dict[str, Any]], *, without: tuple[str, ...] = (), name: str = "run") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        columns = [column for column in OUTCOME_COLUMNS if column not in without]
        with (folder / "requests-gen-1.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for index, fields in enumerate(rows):
                start = {"start_time": 1_700_000_000.0 + index, "e2e_ms": 100.0}
                outcome = Outcome(**{"scenario": "s", "model": "m", "transport": "rest", **start, **fields})
                writer.writerow(outcome.as_row())
        return folder

    return write
