"""llm_stats.csv and llm_stats_history.csv: rewritten / appended every second, finally once more.

llm_stats.csv is replaced atomically (write a temporary file, rename), so a reader or a killed run
never sees half a file; llm_stats_history.csv gets one set of rows a second (one per scenario and
model plus the Aggregated row), flushed at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from metrics.llm_stats import LLM_HISTORY_COLUMNS, LLM_STATS_COLUMNS

STATS_FILE = "llm_stats.csv"
HISTORY_FILE = "llm_stats_history.csv"


def stats_csv_text(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LLM_STATS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_stats_csv(folder: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = folder / STATS_FILE
    tmp = folder / (STATS_FILE + ".tmp")
    tmp.write_text(stats_csv_text(rows), encoding="utf-8")
    tmp.replace(path)
    return path


class HistoryLog:
    def __init__(self) -> None:
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._writer: csv.DictWriter | None = None

    def open(self, folder: Path) -> None:
        if self._file is not None and self.path == folder / HISTORY_FILE:
            return
        self.close()
        self.path = folder / HISTORY_FILE
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(
            self._file, fieldnames=LLM_HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n"
        )
        if is_new:
            self._writer.writeheader()
            self._file.flush()

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self._writer is None or self._file is None or not rows:
            return
        self._writer.writerows(rows)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None
