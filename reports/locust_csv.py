"""Locust's CSVs under any --csv prefix: `locust --csv out/run1` writes run1_stats.csv,
run1_stats_history.csv, run1_failures.csv and run1_exceptions.csv; the suite's own runs use
core.results.LOCUST_CSV_PREFIX. The columns are core.results' LOCUST_* contract whatever the prefix."""

from __future__ import annotations

from pathlib import Path

from core.results import (
    LLM_HISTORY,
    LLM_STATS,
    LOCUST_CSV_PREFIX,
    LOCUST_HISTORY,
    LOCUST_STATS,
    CsvFile,
)
from reports.errors import ReportInputError

STATS_SUFFIX = LOCUST_STATS.name.removeprefix(LOCUST_CSV_PREFIX)  # _stats.csv
HISTORY_SUFFIX = LOCUST_HISTORY.name.removeprefix(LOCUST_CSV_PREFIX)  # _stats_history.csv
# The suite's LLM stats end in _stats.csv too, but they are not Locust's.
_NOT_LOCUST = frozenset({LLM_STATS.name, LLM_HISTORY.name})


def locust_file_name(spec: CsvFile, prefix: str) -> str:
    """PREFIX_stats.csv and its siblings: `spec` is one of core.results' LOCUST_* files."""
    return prefix + spec.name.removeprefix(LOCUST_CSV_PREFIX)


def locust_prefixes(folder: Path) -> list[str]:
    """The --csv prefixes of the Locust runs in a folder: every PREFIX_stats.csv (or, when a killed
    run left only that, PREFIX_stats_history.csv), sorted."""
    found = set()
    for path in folder.iterdir():
        name = path.name
        if name in _NOT_LOCUST or not path.is_file():
            continue
        for suffix in (STATS_SUFFIX, HISTORY_SUFFIX):
            if name.endswith(suffix) and len(name) > len(suffix):
                found.add(name.removesuffix(suffix))
    return sorted(found)


def choose_prefix(folder: Path, prefix: str | None) -> str:
    """The prefix to read: the one asked for (it must exist), else the folder's only one; a folder
    with several runs and no choice is a ReportInputError listing them."""
    found = locust_prefixes(folder)
    if prefix is not None:
        if prefix not in found:
            listed = ", ".join(found) if found else "none"
            raise ReportInputError(
                f"no {prefix}{STATS_SUFFIX} in {folder} (Locust CSV prefixes found there: {listed})"
            )
        return prefix
    if len(found) > 1:
        raise ReportInputError(
            f"{folder} holds the CSVs of {len(found)} Locust runs (prefixes {', '.join(found)}): "
            "pick one with --prefix NAME"
        )
    return found[0] if found else LOCUST_CSV_PREFIX
