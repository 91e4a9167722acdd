"""Validated readers for one results folder: every file becomes a DataFrame or a one-line problem.

Each source is loaded on its own, so a run killed half-way still gives a partial report: a problem
with one file becomes a warning shown in the report, and only a folder with nothing usable at all
raises ReportInputError. Readers use pandas' C engine with explicit dtypes and only the columns the
analyses need, which keeps a 1,000,000-request run within seconds and a few hundred MB.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.results import (
    AUTH_LOG,
    AUTH_LOG_GLOB,
    EMULATOR_STATS_JSON,
    HEALTH,
    LOCUST_CSV_PREFIX,
    LOCUST_EXCEPTIONS,
    LOCUST_FAILURES,
    LOCUST_HISTORY,
    LOCUST_STATS,
    MODEL_CALLS,
    POLICY_LOG,
    POLICY_LOG_GLOB,
    REQUEST_LOG,
    REQUEST_LOG_GLOB,
    RUN_JSON,
    CsvFile,
    ResultsFileError,
    RunInfo,
    read_json_object,
)
from reports.errors import ReportInputError
from reports.locust_csv import STATS_SUFFIX, choose_prefix, locust_file_name

# The request-log columns the analyses use, read with the log's own dtypes (REQUEST_LOG.numeric):
# numbers as float64, text as categories. Text repeats (scenario, model, error kind), so a million
# rows cost a few MB instead of hundreds.
REQUEST_COLUMNS_USED = (
    "start_time",
    "e2e_ms",
    "ttft_ms",
    "last_chunk_ms",
    "tpot_ms",
    "prompt_tokens",
    "output_tokens",
    "thoughts_tokens",
    "cost_usd",
    # Newer than some logs: a log without it leaves the thinking cost not known (NaN), never 0.
    "thoughts_cost_usd",
    # Context caching; newer than some logs too (NaN there: "not known").
    "cached_tokens",
    "cached_saving_usd",
    "prep_ms",
    "request_bytes",
    "schedule_lag_ms",
    "attempts",
    "scenario",
    "model",
    "error_kind",
    "finish_reason",
    "attempt_kinds",
    "error_message",
    "variant",
    "item_id",
    "verdict",
    "expected",
    # Issue 17's levers: model tiering and batching (absent from older logs: "" or NaN there).
    "confidence",
    "tier",
    "first_model",
    "first_verdict",
    "first_confidence",
    "first_e2e_ms",
    "first_cost_usd",
    "batch_size",
    # The client policy (absent from older logs): what the client held, shed or sent elsewhere,
    # and the server's status beside it (429 apart from 503).
    "policy",
    "throttle_ms",
    "policy_action",
    "http_status",
    # Issue 18: where the times came from (kernel arrival stamps or read times) and the read delay.
    "transport",
    "arrival_clock",
    "read_delay_ms",
    # The app user's request id (absent from older logs): joined with model_calls.csv.
    "request_id",
)
REQUEST_FLOAT_COLUMNS = tuple(name for name in REQUEST_COLUMNS_USED if name in REQUEST_LOG.numeric)
REQUEST_TEXT_COLUMNS = tuple(name for name in REQUEST_COLUMNS_USED if name not in REQUEST_LOG.numeric)


@dataclass
class RunData:
    """Everything read from one results folder. None means the source was absent or unusable."""

    results_dir: Path
    prefix: str = LOCUST_CSV_PREFIX  # of the Locust CSVs read: <prefix>_stats.csv and its siblings
    stats: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    exceptions: pd.DataFrame | None = None
    requests: pd.DataFrame | None = None
    health: pd.DataFrame | None = None
    policies: pd.DataFrame | None = None  # the client policy's logs (POLICY_LOG), all processes
    auth: pd.DataFrame | None = None  # Vertex AI token renewals (AUTH_LOG), all processes
    model_calls: pd.DataFrame | None = None  # app runs: the service's model calls (MODEL_CALLS)
    run: RunInfo = field(default_factory=RunInfo)
    emulator_stats: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def locust_file(self, spec: CsvFile) -> str:
        """The name of one of Locust's CSVs in this folder (its --csv prefix may be any)."""
        return locust_file_name(spec, self.prefix)

    @property
    def origin(self) -> float:
        """Epoch seconds that every time chart counts from: the run start, else the first sample."""
        started = self.run.started
        if started is not None:
            return started
        candidates = []
        if self.history is not None and len(self.history):
            candidates.append(float(self.history["Timestamp"].min()))
        if self.requests is not None and len(self.requests):
            candidates.append(float(self.requests["start_time"].min()))
        return min(candidates) if candidates else 0.0


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle), [])


def _open_complete_lines(path: Path) -> tuple[io.BufferedIOBase, bool]:
    """A binary handle that stops after the last newline, and whether a partial last line was cut.

    A killed run can leave half a row; parsing it would give wrong numbers or an unclosed quote.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 1_048_576))
        tail = handle.read()
    if tail.endswith(b"\n"):
        return path.open("rb"), False
    cut = tail.rfind(b"\n")
    end = size - len(tail) + cut + 1 if cut >= 0 else 0
    # Reading the whole prefix into memory would double the cost on big files; stream it instead.
    return io.BufferedReader(_BoundedRaw(path, end)), True


class _BoundedRaw(io.RawIOBase):
    """Reads a file only up to `limit` bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self._file = path.open("rb", buffering=0)
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[: self._left]
        count = self._file.readinto(view) or 0
        self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _parse_problem(path: Path, error: Exception, numeric: tuple[str, ...]) -> ReportInputError:
    """A one-line message for a CSV pandas could not read; names the column and line of a bad number."""
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    if "could not convert" in text or "Unable to parse" in text:
        try:
            header = _header(path)
            columns = [name for name in numeric if name in header]
            reader = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, chunksize=200_000)
            for chunk in reader:
                for name in columns:
                    values = chunk[name]
                    bad = values[
                        (values != "") & (values != "N/A") & pd.to_numeric(values, errors="coerce").isna()
                    ]
                    if len(bad):
                        line = int(bad.index[0]) + 2  # 1-based, after the header
                        return ReportInputError(
                            f"{path.name}: column {name}, line {line}: {bad.iloc[0][:40]!r} is not a number"
                        )
        except (ValueError, pd.errors.ParserError, OSError):
            pass
    return ReportInputError(f"{path.name} could not be parsed: {first_line}")


def _read_csv(path: Path, spec: CsvFile, **kwargs: Any) -> pd.DataFrame:
    """Read one CSV with checked columns; numbers as float64, 'N/A' and empty cells as NaN."""
    if path.stat().st_size == 0:
        raise ReportInputError(f"{path.name} is empty (0 bytes); the run probably stopped before writing it")
    header = _header(path)
    if not header:
        raise ReportInputError(f"{path.name} has no header line")
    spec.check_header(header, path.name)
    numeric = tuple(name for name in header if name in spec.numeric)
    na_values = {name: ["", "N/A", "nan", "NaN"] for name in numeric}
    # Text columns stay text: a request named "007" or "1e3" must not turn into a number.
    dtype = {name: ("float64" if name in spec.numeric else "str") for name in header}
    return _parse_complete_lines(path, numeric, dtype=dtype, na_values=na_values, **kwargs)


def _parse_complete_lines(path: Path, numeric: tuple[str, ...], **options: Any) -> pd.DataFrame:
    """pd.read_csv (C engine, no default NA strings, bad UTF-8 replaced) over the file's complete
    lines. A cut partial last line sets frame.attrs["partial"]; a parse error becomes one line."""
    handle, cut = _open_complete_lines(path)
    try:
        with handle:
            frame = pd.read_csv(
                handle,
                engine="c",
                keep_default_na=False,
                encoding="utf-8",
                encoding_errors="replace",
                **options,
            )
    except (ValueError, pd.errors.ParserError) as error:
        raise _parse_problem(path, error, numeric) from None
    if cut:
        frame.attrs["partial"] = True
    return frame


def read_locust_stats(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, LOCUST_STATS)
    if frame.empty:
        raise ReportInputError(f"{path.name} has a header but no rows; the run recorded no requests")
    return frame


def read_stats_history(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, LOCUST_HISTORY)
    frame = frame.dropna(subset=["Timestamp"])
    if frame.empty:
        raise ReportInputError(f"{path.name} has a header but no rows; the run ended before the first sample")
    return frame


def read_failures(path: Path) -> pd.DataFrame:
    return _read_csv(path, LOCUST_FAILURES)


def read_exceptions(path: Path) -> pd.DataFrame:
    return _read_csv(path, LOCUST_EXCEPTIONS)


def read_health(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, HEALTH)
    return frame.dropna(subset=["timestamp"])


def read_policy_log(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, POLICY_LOG)
    return frame.dropna(subset=["timestamp"])


def read_auth_log(path: Path) -> pd.DataFrame:
    frame = _read_csv(path, AUTH_LOG)
    return frame.dropna(subset=["timestamp"])


def read_model_calls(path: Path) -> pd.DataFrame:
    """model_calls.csv: one row per request id the user's service forwarded; optional columns an
    older file lacks are filled ("" or NaN), rows without an id or times left out."""
    frame = _read_csv(path, MODEL_CALLS)
    for name in MODEL_CALLS.columns:
        if name not in frame.columns:
            frame[name] = float("nan") if name in MODEL_CALLS.numeric else ""
    frame = frame.dropna(subset=[n for n in MODEL_CALLS.required if n in MODEL_CALLS.numeric])
    return frame[frame["request_id"] != ""].reset_index(drop=True)


def _event_logs(
    folder: Path, pattern: str, reader: Callable[[Path], pd.DataFrame], attempt: Callable[..., Any]
) -> pd.DataFrame | None:
    """Every process's event log of one kind (policy-*.csv, auth-*.csv) as one frame, in time order."""
    frames = [attempt(path.name, reader, expected=False) for path in sorted(folder.glob(pattern))]
    frames = [frame for frame in frames if frame is not None and len(frame)]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")


def read_request_log(path: Path) -> pd.DataFrame:
    """One per-request log (header = OUTCOME_COLUMNS); only the columns the analyses use."""
    if path.stat().st_size == 0:
        raise ReportInputError(f"{path.name} is empty (0 bytes); its process wrote no requests")
    header = _header(path)
    REQUEST_LOG.check_header(header, path.name)
    wanted = [name for name in REQUEST_COLUMNS_USED if name in header]
    dtype: dict[str, str] = {name: "float64" for name in REQUEST_FLOAT_COLUMNS if name in header}
    dtype.update({name: "category" for name in REQUEST_TEXT_COLUMNS if name in header})
    na_values = {name: [""] for name in REQUEST_FLOAT_COLUMNS if name in header}
    return _parse_complete_lines(
        path, REQUEST_FLOAT_COLUMNS, usecols=wanted, dtype=dtype, na_values=na_values
    )


def _combine_request_logs(frames: list[pd.DataFrame]) -> pd.DataFrame:
    # Categories differ per file; union them so concat keeps the compact dtype.
    from pandas.api.types import union_categoricals

    if len(frames) == 1:
        combined = frames[0]
    else:
        columns = [name for name in frames[0].columns if all(name in f.columns for f in frames)]
        data: dict[str, Any] = {}
        for name in columns:
            parts = [f[name] for f in frames]
            if isinstance(parts[0].dtype, pd.CategoricalDtype):
                data[name] = union_categoricals(parts, ignore_order=True)
            else:
                data[name] = pd.concat(parts, ignore_index=True)
        combined = pd.DataFrame(data)
    combined = combined.dropna(subset=["start_time", "e2e_ms"])
    for name in REQUEST_TEXT_COLUMNS:
        if name not in combined.columns:
            combined[name] = pd.Categorical([""] * len(combined))
    for name in REQUEST_FLOAT_COLUMNS:
        if name not in combined.columns:
            combined[name] = float("nan")
    if combined["tpot_ms"].isna().all() and combined["ttft_ms"].notna().any():
        tokens = combined["output_tokens"]
        combined["tpot_ms"] = ((combined["last_chunk_ms"] - combined["ttft_ms"]) / (tokens - 1)).where(
            tokens >= 2
        )
    return combined.reset_index(drop=True)


def load_results(results_dir: str | os.PathLike[str], prefix: str | None = None) -> RunData:
    """Read every known file of a results folder; raise ReportInputError only if nothing is usable.

    Locust's CSVs may carry any --csv prefix (`run1_stats.csv`...); `prefix` picks one when the
    folder holds several runs.
    """
    folder = Path(results_dir)
    if not folder.exists():
        raise ReportInputError(f"results folder {folder} does not exist")
    if not folder.is_dir():
        raise ReportInputError(f"{folder} is not a folder; pass the results/<run-id>/ directory")
    data = RunData(results_dir=folder, prefix=choose_prefix(folder, prefix))
    problems: list[str] = []

    def attempt(name: str, reader: Any, *, expected: bool) -> Any:
        path = folder / name
        if not path.exists():
            if expected:
                problems.append(f"{name} is missing")
            return None
        try:
            result = reader(path)
        except (ReportInputError, ResultsFileError) as error:
            problems.append(str(error))
            return None
        except OSError as error:
            problems.append(f"{name} could not be read: {error.strerror or error}")
            return None
        if isinstance(result, pd.DataFrame) and result.attrs.get("partial"):
            data.warnings.append(f"{name} ends with a partial line (killed run?); that line was ignored")
        return result

    data.run = attempt(RUN_JSON, RunInfo.read, expected=False) or RunInfo()
    data.emulator_stats = attempt(EMULATOR_STATS_JSON, read_json_object, expected=False)
    data.stats = attempt(data.locust_file(LOCUST_STATS), read_locust_stats, expected=True)
    data.history = attempt(data.locust_file(LOCUST_HISTORY), read_stats_history, expected=True)
    data.failures = attempt(data.locust_file(LOCUST_FAILURES), read_failures, expected=False)
    data.exceptions = attempt(data.locust_file(LOCUST_EXCEPTIONS), read_exceptions, expected=False)
    data.health = attempt(HEALTH.name, read_health, expected=False)

    frames = []
    for path in sorted(folder.glob(REQUEST_LOG_GLOB)):
        frame = attempt(path.name, read_request_log, expected=False)
        if frame is not None and len(frame):
            frames.append(frame)
        elif frame is not None:
            problems.append(f"{path.name} has a header but no rows")
    if frames:
        data.requests = _combine_request_logs(frames)
    data.policies = _event_logs(folder, POLICY_LOG_GLOB, read_policy_log, attempt)
    data.auth = _event_logs(folder, AUTH_LOG_GLOB, read_auth_log, attempt)
    data.model_calls = attempt(MODEL_CALLS.name, read_model_calls, expected=False)

    if data.stats is None and data.history is None and data.requests is None:
        found = "; ".join(problems) if problems else "no data files"
        raise ReportInputError(
            f"nothing to report in {folder} (needs Locust's *{STATS_SUFFIX} or {REQUEST_LOG_GLOB}): {found}"
        )
    data.warnings[:0] = problems
    _keep_last_run(data)
    return data


def _keep_last_run(data: RunData) -> None:
    """A folder where the web UI started several tests holds them all; Locust's and the LLM stats
    were reset at each start, so the report covers the last test and says so."""
    runs = data.run.runs
    if len(runs) < 2:
        return
    cutoff = runs[-1].start
    if data.requests is not None:
        data.requests = data.requests[data.requests["start_time"] >= cutoff]
    if data.history is not None:
        data.history = data.history[data.history["Timestamp"] >= int(cutoff)]
    if data.health is not None and "timestamp" in data.health:
        data.health = data.health[data.health["timestamp"] >= cutoff]
    if data.policies is not None:
        data.policies = data.policies[data.policies["timestamp"] >= cutoff]
    data.run = data.run.model_copy(update={"started_at": datetime.fromtimestamp(cutoff, UTC).isoformat()})
    data.warnings.append(
        f"this folder holds {len(runs)} tests started from the web UI; the report covers the last one "
        f"(the earlier tests' calls stay in the request logs)"
    )


__all__ = ["ReportInputError", "RunData", "load_results"]
