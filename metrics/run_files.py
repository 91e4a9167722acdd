"""The LLM files of the results folder, written by the process that holds the whole run's stats.

llm_stats.csv is rewritten and llm_stats_history.csv appended every second while the run goes, and
once more at the end; health.csv gets each health sample as it arrives. The folder is
--results-dir, read at each write: start-up resolves it after the metrics are installed, and a
web-UI session points it at each test's own folder when that test starts. A folder whose files were
closed (its test ended) is never written again: between two tests of a session, nothing is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from metrics.health import HealthLog
from metrics.llm_files import HistoryLog, write_stats_csv
from metrics.llm_stats import LlmStats

logger = logging.getLogger(__name__)


class LlmFiles:
    def __init__(self, options: Any) -> None:
        self.options = options
        self.history = HistoryLog()
        self.health_log = HealthLog()
        self.closed_folder: Path | None = None  # the folder of the test that ended last

    def folder(self) -> Path | None:
        """The results folder once it exists; None before (or without) one."""
        results_dir = getattr(self.options, "results_dir", None)
        if not results_dir:
            return None
        path = Path(results_dir)
        return path if path.is_dir() else None

    def writable_folder(self) -> Path | None:
        """The folder the running test writes to; None before one exists or once it was closed."""
        folder = self.folder()
        return None if folder is None or folder == self.closed_folder else folder

    def tick(self, stats: LlmStats, user_count: int, now: float) -> None:
        """The once-a-second write; a full disk is logged, never raised into the run."""
        folder = self.writable_folder()
        if folder is None:
            return
        try:
            # The per-second counters only feed the history's "current" rates: keep the last ones.
            stats.prune(now)
            self.write_stats(folder, stats, user_count, now)
        except OSError as exc:
            logger.warning("could not write the LLM stats files: %s", exc)

    def write_stats(self, folder: Path, stats: LlmStats, user_count: int, now: float) -> None:
        write_stats_csv(folder, stats.rows())
        if stats.total.counts["requests"]:
            self.history.open(folder)
            self.history.write(stats.history_rows(now, user_count))

    def write_health(self, row: tuple[float, str, float, float]) -> None:
        folder = self.writable_folder()
        if folder is not None:
            self.health_log.open(folder)
            self.health_log.write([row])

    def close(self, folder: Path | None = None) -> None:
        """The end of a test: `folder` (default: the current one) is written no more."""
        self.closed_folder = folder if folder is not None else self.folder()
        self.history.close()
        self.health_log.close()
