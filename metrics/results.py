"""The results folder: where a run's CSVs, run.json and report land, and when each is written.

What the folder holds (names, columns, the run.json model) is core/results.py's contract; this module
writes it: RunFolder owns the folder on the master (or the only process), AppendedCsv is the writer
of every CSV that grows while the run goes.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import logging
import platform
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import gevent
from locust import stats as locust_stats
from locust.env import Environment

from core.results import (
    FOLDER_TIME_FORMAT,
    LOCUST_CSV_PREFIX,
    PREVIOUS_RUNS_DIR,
    RUN_JSON,
    SESSION_INDEX_HTML,
    CsvFile,
    ResultsFileError,
    RunInfo,
    iso_time,
    write_atomically,
)
from core.secrets import Redactor
from metrics.redaction import RedactedRows, redactor_of

logger = logging.getLogger(__name__)

SECRET_OPTION_NAMES = frozenset({"api_key", "web_login", "tls_key"})
# Whole words of an option's name, so max_output_tokens stays while api_key or auth_token go.
SECRET_WORDS = re.compile(r"(^|_)(key|secret|password|passwd|token|credentials?)($|_)", re.IGNORECASE)
VERSIONED_PACKAGES = (
    "locust",
    "google-genai",
    "google-generativeai",
    "gevent",
    "pandas",
    "matplotlib",
    "pillow",
    "aiohttp",
    "gemini-locust",
)


# The process's parser (one per process: Locust builds it once), kept to read option defaults from:
# by the time run.json is written every locustfile and plugin has added its options to it.
_parser: Any = None


def add_arguments(parser: Any) -> None:
    global _parser
    _parser = parser
    parser.add_argument(
        "--results-dir",
        default="",
        help="folder for this run's CSVs, run.json and report.html (default: results/<UTC timestamp>/)",
        # Fixed at start-up: the web UI's form would otherwise send it back blank.
        include_in_web_ui=False,
    )


def default_results_dir(now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now(dt.UTC)
    return Path("results") / now.strftime(FOLDER_TIME_FORMAT)


def public_options(options: Any) -> dict[str, Any]:
    """Every option as JSON-safe values, with anything that could hold a secret removed."""
    return _public(vars(options))


def public_option_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """The parser's default of each of these (public) options; empty when no parser was seen (Locust
    used as a library), which the report reads as "not known"."""
    if _parser is None:
        return {}
    return _public({name: _parser.get_default(name) for name in options})


def _public(values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        if name in SECRET_OPTION_NAMES or SECRET_WORDS.search(name):
            continue
        clean[name] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
    return clean


def public_host(host: str | None) -> str | None:
    """The host without any user:password@ part, which a URL can carry."""
    if not host:
        return host
    parts = urlsplit(host)
    if parts.username is None and parts.password is None:
        return host
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def set_aside_previous_run(folder: Path) -> None:
    """A folder that already holds a run (or a web-UI session) keeps it under .previous/<run-id>/:
    nothing lost or mixed."""
    previous = folder / RUN_JSON
    if not previous.exists() and not (folder / SESSION_INDEX_HTML).exists():
        return
    try:
        # Only the id is wanted, from whatever an older version wrote: no validation here.
        old_id = json.loads(previous.read_text()).get("run_id") or "run"
    except (OSError, ValueError, AttributeError):
        old_id = "run" if previous.exists() else "session"
    target = folder / PREVIOUS_RUNS_DIR / f"{old_id}-{dt.datetime.now(dt.UTC):%H%M%S%f}"
    target.mkdir(parents=True)
    for item in folder.iterdir():
        if item.name != PREVIOUS_RUNS_DIR:
            shutil.move(str(item), target / item.name)
    logger.warning("%s held an earlier run: it was moved to %s", folder, target)


class RunFolder:
    """Owns results/<run-id>/ on the master (or the only process): Locust CSVs, run.json, finish."""

    def __init__(self, environment: Environment, folder: Path) -> None:
        self.environment = environment
        self.folder = folder
        self.started_at: float | None = None
        self.ended_at: float | None = None
        # run.json fields other rooms fill (lifecycle: emulator, runs, interrupted, shape, stages,
        # capacity; metrics: llm, slo, budget, lost_workers, health_warnings), by RunInfo field name.
        self.extra: dict[str, Any] = {}
        # None: run.json shows the process's options and host as they stand (freeze_options).
        self.options: dict[str, Any] | None = None
        self.host: str | None = None
        self._csv_greenlet: gevent.Greenlet | None = None
        set_aside_previous_run(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.csv_writer = locust_stats.StatsCSVFileWriter(
            environment,
            locust_stats.PERCENTILES_TO_REPORT,
            str(folder / LOCUST_CSV_PREFIX),
            full_history=True,
        )
        # Locust's CSVs hold failure and exception messages: every row passes the run's Redactor.
        self.redactor = redactor_of(environment)
        writer = self.csv_writer
        for name in ("requests", "stats_history", "failures", "exceptions"):
            attribute = f"{name}_csv_writer"
            setattr(writer, attribute, RedactedRows(getattr(writer, attribute), self.redactor))

    def start_csv_writer(self) -> None:
        self._csv_greenlet = gevent.spawn(self.csv_writer.stats_writer)

    def freeze_options(self) -> None:
        """Keep the options and host as they are now: a test of a web-UI session is described by
        what its start form submitted, even once the next test's form has changed them."""
        self.options = public_options(self.environment.parsed_options)
        self.host = public_host(self.environment.host)

    @property
    def run_id(self) -> str:
        return self.folder.name

    def run_info(self, public_settings: dict[str, Any]) -> RunInfo:
        """run.json as it stands: this folder's own fields plus what other rooms put into `extra`
        (keyed by RunInfo's field names). A value that disagrees with the contract raises
        core.results.ResultsFileError naming the field: a bug to fix."""
        return RunInfo.from_document(self._run_document(public_settings))

    def _run_document(self, public_settings: dict[str, Any]) -> dict[str, Any]:
        env = self.environment
        options = self.options if self.options is not None else public_options(env.parsed_options)
        return {
            "run_id": self.run_id,
            "started_at": iso_time(self.started_at, "seconds"),
            "ended_at": iso_time(self.ended_at, "seconds"),
            "host": self.host if self.options is not None else public_host(env.host),
            "options": options,
            "option_defaults": public_option_defaults(options),
            "settings": public_settings,
            "versions": package_versions(),
            **self.extra,
        }

    def write_run_json(self, public_settings: dict[str, Any]) -> None:
        """run.json, checked against the contract. A disagreement is a bug: it is logged as one line
        naming the field and the document is written as it stands, so a finished run never loses
        its record over it (the report's reader then warns about the same field)."""
        try:
            info = self.run_info(public_settings)
        except ResultsFileError as exc:
            logger.error("run.json does not follow the results contract (a bug, please report it): %s", exc)
            document = self._run_document(public_settings)
            write_atomically(self.folder / RUN_JSON, json.dumps(document, indent=2, default=str) + "\n")
            return
        info.write(self.folder)

    def write_final_csvs(self) -> None:
        """Locust rewrites its CSVs every second; write them once more with the final numbers."""
        writer = self.csv_writer
        if self._csv_greenlet is not None:
            # Not block=True: waiting would let another greenlet run, and a web-UI test started
            # meanwhile clears Locust's stats before this test's last numbers are written. The
            # writer is parked in its sleep (file writes do not yield), so it never runs again.
            self._csv_greenlet.kill(block=False)
            self._csv_greenlet = None
        for handle, rows, start in (
            (writer.requests_csv_filehandle, writer._requests_data_rows, None),
            (writer.failures_csv_filehandle, writer._failures_data_rows, writer.failures_csv_data_start),
            (
                writer.exceptions_csv_filehandle,
                writer._exceptions_data_rows,
                writer.exceptions_csv_data_start,
            ),
        ):
            if handle.closed:
                continue
            if start is None:
                handle.seek(0)
                handle.truncate()
                csv_writer = RedactedRows(csv.writer(handle), self.redactor)
                csv_writer.writerow(writer.requests_csv_columns)
                rows(csv_writer)
            else:
                handle.seek(start)
                rows(RedactedRows(csv.writer(handle), self.redactor))
                handle.truncate()
        writer.close_files()

    def save_json(self, name: str, fetch: Callable[[], dict[str, Any]]) -> None:
        try:
            data = fetch()
        except Exception as exc:  # noqa: BLE001 - a missing side file must not lose the run
            logger.warning("could not save %s: %s", name, exc)
            return
        (self.folder / name).write_text(json.dumps(data, indent=2))


class AppendedCsv:
    """A CSV file of the results folder that grows while the run goes (llm_stats_history.csv,
    health.csv, the request logs): the header once, also when a later run opens the same folder.
    Rows are sequences in column order or mappings by column name (missing keys and None become
    empty cells).

    By default every write is flushed at once, so a killed run keeps what it wrote; a file written
    on every request (the request log) passes flush_each_write=False and calls flush() on a timer
    instead, which saves a system call per request."""

    def __init__(
        self,
        spec: CsvFile,
        name: str | None = None,
        *,
        flush_each_write: bool = True,
        redactor: Redactor | None = None,
    ) -> None:
        self.name = name or spec.name
        # Every text cell passes it: the run's secrets (given) or key-shaped strings (by default).
        self.redactor = redactor or Redactor()
        self.columns = spec.columns
        self.flush_each_write = flush_each_write
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._writer: Any = None

    @property
    def is_open(self) -> bool:
        return self._file is not None

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
        clean = self.redactor
        self._writer.writerows(
            [clean(cell) if isinstance(cell, str) else cell for cell in cells]
            for cells in (
                [row.get(name) for name in self.columns] if isinstance(row, Mapping) else row for row in rows
            )
        )
        if self.flush_each_write:
            self._file.flush()

    def flush(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None
