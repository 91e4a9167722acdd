"""llm_stats.csv and llm_stats_history.csv: rewritten / appended every second, finally once more.

llm_stats.csv is replaced atomically (write a temporary file, rename), so a reader or a killed run
never sees half a file; llm_stats_history.csv gets one set of rows a second (one per scenario and
model plus the Aggregated row), flushed at once. Its writer, AppendedCsv, also writes health.csv
(metrics/health.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
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


class AppendedCsv:
    """A CSV file of the results folder that grows while the run goes (llm_stats_history.csv,
    health.csv): the header once, also when a later run opens the same folder, and every write
    flushed at once so a killed run keeps what it wrote. Rows are sequences in column order or
    mappings by column name (missing keys and None become empty cells)."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._writer: Any = None

    def open(self, folder: Path) -> None:
        if self._file is not None and self.path == folder / self.name:
            return
        self.close()
        self.path = folder / self.name
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")
        if is_new:
            self._writer.writerow(self.columns)
            self._file.flush()

    def write(self, rows: Sequence[Sequence[Any] | Mapping[str, Any]]) -> None:
        if self._writer is None or self._file is None or not rows:
            return
        self._writer.writerows(
            [row.get(name) for name in self.columns] if isinstance(row, Mapping) else row for row in rows
        )
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class HistoryLog(AppendedCsv):
    """llm_stats_history.csv: one set of rows a second."""

    def __init__(self) -> None:
        super().__init__(HISTORY_FILE, LLM_HISTORY_COLUMNS)
