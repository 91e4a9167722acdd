"""llm_stats.csv and llm_stats_history.csv: rewritten / appended every second, finally once more.

llm_stats.csv is replaced atomically, so a reader or a killed run never sees half a file;
llm_stats_history.csv gets one set of rows a second (one per scenario and model plus the Aggregated
row), flushed at once. Names and columns are core/results.py's LLM_STATS and LLM_HISTORY.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.results import LLM_HISTORY, LLM_STATS, write_atomically
from metrics.results import AppendedCsv

# The names the web UI's download buttons give the files.
STATS_FILE = LLM_STATS.name
HISTORY_FILE = LLM_HISTORY.name


def stats_csv_text(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LLM_STATS.columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_stats_csv(folder: Path, rows: Iterable[dict[str, Any]]) -> Path:
    return write_atomically(folder / LLM_STATS.name, stats_csv_text(rows))


class HistoryLog(AppendedCsv):
    """llm_stats_history.csv: one set of rows a second."""

    def __init__(self) -> None:
        super().__init__(LLM_HISTORY)
