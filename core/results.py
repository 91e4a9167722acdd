"""The results folder, results/<run-id>/: every file a run writes there, its columns, and run.json.

The one contract both sides use: the writers (metrics/, lifecycle/) take their file names and headers
from here, and the reader (reports/) checks what it reads against the same definitions, so a file or
a column is renamed here and nowhere else. The folder holds:

    locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv
        Locust's own CSVs (StatsCSVFileWriter with LOCUST_CSV_PREFIX, full history). Locust writes
        more columns than listed here: these are the ones the suite relies on.
    llm_stats.csv           LLM stats per (scenario, model) plus an Aggregated row; replaced
                            atomically every second and once more at the end
    llm_stats_history.csv   one set of those rows a second, appended
    health.csv              each process's CPU and event-loop lag once a second (HEALTH)
    requests-<hostname>-<pid>.csv
                            the per-request log, one per process sending load: one Outcome a row
    run.json                RunInfo: run id, start and end, host, options, settings, versions, shape,
                            stages and the verdicts (SLO, budget, lost or refused workers, the
                            emulator's death, health warnings)
    emulator_stats.json     the bundled emulator's own counters, when it ran
    model_calls.csv         app runs (the `app` scenario): the model calls the user's service made,
                            per request id it forwarded, as the emulator recorded them (MODEL_CALLS)
    report.html             built from the files above by `python -m reports`
    .previous/<run-id>-<time>/  an earlier run found in the same folder, set aside whole

A web-UI session can start several tests, so its folder (results/<session>/) holds one such folder
per test, <nn>-<start time>/ (numbered_test_folder; 01, 02... in start order), each complete on its own
(its run.json describes that test only), plus the session's own files:

    index.html              one row per test, linking its report (SESSION_INDEX_HTML)
    emulator_stats.json     the bundled emulator's counters over the whole session

Imports nothing of the suite but core (the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from core.outcome import APART_KINDS, ERROR_KINDS, OUTCOME_COLUMNS, Outcome


class ResultsFileError(ValueError):
    """A results file that does not match this contract; str(error) is one line naming the file."""


# ---- file names ------------------------------------------------------------------------------------

LOCUST_CSV_PREFIX = "locust"  # Locust's --csv prefix: it appends _stats.csv, _failures.csv...
RUN_JSON = "run.json"
EMULATOR_STATS_JSON = "emulator_stats.json"
REPORT_HTML = "report.html"
PREVIOUS_RUNS_DIR = ".previous"
REQUEST_LOG_GLOB = "requests-*.csv"
POLICY_LOG_GLOB = "policy-*.csv"
AUTH_LOG_GLOB = "auth-*.csv"
SESSION_INDEX_HTML = "index.html"
FOLDER_TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # a run's or a test's start in its folder name, UTC
TEST_FOLDER = re.compile(r"^(?P<number>\d{2,})-(?P<started>\d{8}T\d{6}Z)$")


def request_log_name(hostname: str, pid: int) -> str:
    """requests-<hostname>-<pid>.csv: one per process, so processes never share a file."""
    return f"requests-{hostname}-{pid}.csv"


def process_log_name(glob: str, role: str, hostname: str, pid: int) -> str:
    """<kind>-<role>-<hostname>-<pid>.csv: one process's file of a per-process log matching `glob`
    (POLICY_LOG_GLOB, AUTH_LOG_GLOB)."""
    return glob.replace("*", f"{role}-{hostname}-{pid}")


def policy_log_name(role: str, hostname: str, pid: int) -> str:
    """policy-<role>-<hostname>-<pid>.csv: the client policy's decisions of one process."""
    return process_log_name(POLICY_LOG_GLOB, role, hostname, pid)


def numbered_test_folder(number: int, started: float) -> str:
    """<nn>-<start time>: a web-UI session's folder for its test number `number` (from 1)."""
    return f"{number:02d}-{datetime.fromtimestamp(started, UTC).strftime(FOLDER_TIME_FORMAT)}"


def session_test_folders(session: Path) -> list[Path]:
    """The test folders of a web-UI session's folder, in start order."""
    found = [
        (int(match["number"]), path)
        for path in session.iterdir()
        if path.is_dir() and (match := TEST_FOLDER.match(path.name))
    ]
    return [path for _, path in sorted(found)]


def write_atomically(path: Path, text: str) -> Path:
    """Write a temporary file and rename it over `path`: a reader or a killed run never sees half a
    file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# ---- CSV files and their columns ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvFile:
    """One CSV of the folder: its name (a glob for the per-process request logs), its columns in
    header order, which of them hold numbers, and the ones a reader cannot do without."""

    name: str
    columns: tuple[str, ...]
    numeric: frozenset[str]
    required: tuple[str, ...]

    def missing(self, header: Sequence[str]) -> list[str]:
        present = set(header)
        return [name for name in self.required if name not in present]

    def check_header(self, header: Sequence[str], file_name: str | None = None) -> None:
        """ResultsFileError naming the file and the missing columns, when the header lacks some."""
        missing = self.missing(header)
        if missing:
            raise ResultsFileError(
                f"{file_name or self.name}: missing column(s) {', '.join(missing)}; "
                "is it a file from this suite/Locust?"
            )


def _csv(
    name: str, columns: Sequence[str], numeric: Sequence[str], required: Sequence[str] | None = None
) -> CsvFile:
    if not set(numeric) <= set(columns):
        raise ValueError(f"{name}: numeric columns {set(numeric) - set(columns)} are not among its columns")
    return CsvFile(name, tuple(columns), frozenset(numeric), tuple(columns if required is None else required))


PERCENTILE_COLUMNS = ("50%", "90%", "95%", "99%")
_STATS_NUMERIC = (
    "Request Count",
    "Failure Count",
    "Average Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    *PERCENTILE_COLUMNS,
)
_HISTORY_NUMERIC = ("Timestamp", "User Count", "Requests/s", "Failures/s", *PERCENTILE_COLUMNS)

LOCUST_STATS = _csv(f"{LOCUST_CSV_PREFIX}_stats.csv", ("Type", "Name", *_STATS_NUMERIC), _STATS_NUMERIC)
LOCUST_HISTORY = _csv(
    f"{LOCUST_CSV_PREFIX}_stats_history.csv", ("Type", "Name", *_HISTORY_NUMERIC), _HISTORY_NUMERIC
)
LOCUST_FAILURES = _csv(
    f"{LOCUST_CSV_PREFIX}_failures.csv", ("Method", "Name", "Error", "Occurrences"), ("Occurrences",)
)
LOCUST_EXCEPTIONS = _csv(f"{LOCUST_CSV_PREFIX}_exceptions.csv", ("Count", "Message"), ("Count",))

# health.csv, one row per process and second:
#   timestamp    epoch seconds of the end of the sample's second
#   node         <role>-<hostname>-<pid> (local-, master- or worker-): the same hostname-pid as that
#                process's request log
#   cpu_percent  the process's CPU over the second, % of one core
#   loop_lag_ms  the largest delay of the gevent hub in the second
HEALTH = _csv(
    "health.csv",
    ("timestamp", "node", "cpu_percent", "loop_lag_ms"),
    ("timestamp", "cpu_percent", "loop_lag_ms"),
)

# policy-<role>-<hostname>-<pid>.csv, one per process whose client policy (--client-policy,
# users/policies) changed its state; the calls it held or shed are in the request log (throttle_ms,
# policy_action, error_kind shed):
#   timestamp  epoch seconds
#   node       <role>-<hostname>-<pid>, as in health.csv
#   component  aimd | breaker | limiter
#   event      limit: this process's concurrency limit is now `value` (aimd; a worker's is its share
#                of the master's signal)
#              signal: the run-wide concurrency limit the master shares out to its workers is now
#                `value` (aimd, distributed runs; `detail` holds the number of workers)
#              state: the breaker is now `detail` (closed | open | half_open); value = error rate
#              rate: the limiter's rates for this process, `detail` says which (rpm=.. tpm=..)
#   value      number
#   detail     text
POLICY_LOG = _csv(
    POLICY_LOG_GLOB,
    ("timestamp", "node", "component", "event", "value", "detail"),
    ("timestamp", "value"),
)

# auth-<role>-<hostname>-<pid>.csv, one per process that signs in to Vertex AI with OAuth 2
# (users/auth.py): its access-token renewals, none of them inside a call's timing:
#   timestamp    epoch seconds, when the event ended
#   node         <role>-<hostname>-<pid>, as in health.csv
#   event        refresh: a new token (detail: expires_in_s=N); refresh_failed: the token endpoint
#                  or google-auth refused (detail: why, redacted); wait: a call found the token
#                  expired and waited for its renewal before its clock started; in_force: a test
#                  began with the token fetched earlier (detail: expires_in_s=N)
#   duration_ms  how long the renewal (or the wait) took
#   detail       text
AUTH_LOG = _csv(
    AUTH_LOG_GLOB,
    ("timestamp", "node", "event", "duration_ms", "detail"),
    ("timestamp", "duration_ms"),
)

# The model calls a user's own service made while the app user loaded it (users/app.py): one row
# per request id the service forwarded to the emulator (emulator/sends.py), fetched from the model
# host when the run ends. The report joins it with the request log's app calls by request_id.
#   request_id      the id the app user sent (Outcome.request_id) and the service forwarded
#   model           the model of the latest call with that id
#   calls           model calls the emulator finished under that id (a retrying service makes more)
#   first_received  epoch s: when the first of them reached the emulator
#   last_sent       epoch s: when the last of them ended (its last byte out; calls at once may end
#                   in another order than they began)
#   queue_ms        summed over its calls: arrival to a free slot (quota check and queue)
#   model_ms        summed over its calls: arrival to the last byte out (queue_ms included)
#   status          the latest call's HTTP status (or "reset", 499 when the service went away)
#   *_tokens        summed over its calls, as the emulator answered them
_MODEL_CALLS_NUMERIC = (
    "calls", "first_received", "last_sent", "queue_ms", "model_ms",
    "prompt_tokens", "output_tokens", "thoughts_tokens",
)  # fmt: skip
MODEL_CALLS = _csv(
    "model_calls.csv",
    ("request_id", "model", *_MODEL_CALLS_NUMERIC, "status"),
    _MODEL_CALLS_NUMERIC,
    required=("request_id", "calls", "first_received", "last_sent", "model_ms"),
)

# The error kinds that count as failures, one counter column each (blocked and cancelled are
# counted apart).
FAILURE_KIND_NAMES = tuple(kind for kind in ERROR_KINDS if kind not in APART_KINDS)
_LLM_TEXT = ("model", "scenario")
# Grouped by kind, one group a line: the names stay greppable and the groups readable.
# fmt: off
LLM_STATS_COLUMNS = (
    *_LLM_TEXT,
    "requests", "failures", "failure_pct", "blocked", "blocked_pct", "cancelled", *FAILURE_KIND_NAMES,
    "attempts",
    "e2e_avg_ms", "e2e_min_ms", "e2e_p50_ms", "e2e_p90_ms", "e2e_p95_ms", "e2e_p99_ms", "e2e_max_ms",
    "ttft_avg_ms", "ttft_p50_ms", "ttft_p90_ms", "ttft_p95_ms", "ttft_p99_ms", "ttft_max_ms",
    "tpot_avg_ms", "tpot_p50_ms", "tpot_p95_ms", "tpot_p99_ms",
    "lag_p50_ms", "lag_p95_ms", "lag_max_ms",
    "prompt_tokens", "output_tokens", "thoughts_tokens", "cached_tokens",
    "output_tokens_per_s", "requests_per_s", "cost_usd", "cost_per_1k_usd",
)
LLM_HISTORY_COLUMNS = (
    "timestamp", "user_count", *_LLM_TEXT,
    "requests", "failures", "blocked",
    "current_rps", "current_fail_per_s", "current_output_tokens_per_s",
    "e2e_p50_ms", "e2e_p95_ms", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms",
    "output_tokens", "cost_usd",
)
# fmt: on
LLM_STATS = _csv("llm_stats.csv", LLM_STATS_COLUMNS, [c for c in LLM_STATS_COLUMNS if c not in _LLM_TEXT])
LLM_HISTORY = _csv(
    "llm_stats_history.csv", LLM_HISTORY_COLUMNS, [c for c in LLM_HISTORY_COLUMNS if c not in _LLM_TEXT]
)


def _numeric_outcome_columns() -> tuple[str, ...]:
    """The request log's number columns, from the Outcome's own field types: a field added there
    is read back as a number or as text without a second list to keep in step."""
    hints = typing.get_type_hints(Outcome)
    numeric = []
    for name in OUTCOME_COLUMNS:
        hint = hints.get(name, float)  # tpot_ms is a property: a float
        is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        kinds = set(typing.get_args(hint) if is_union else (hint,)) - {type(None)}
        if kinds <= {int, float}:
            numeric.append(name)
    return tuple(numeric)


# The per-request log: header OUTCOME_COLUMNS (Outcome.as_row()); tpot_ms is derived, gaps_ms is
# the chunk gaps as space-separated numbers (text). A log of an older run may lack optional columns.
REQUEST_LOG = _csv(
    REQUEST_LOG_GLOB,
    OUTCOME_COLUMNS,
    _numeric_outcome_columns(),
    required=("scenario", "model", "start_time", "e2e_ms", "error_kind"),
)


# ---- run.json ---------------------------------------------------------------------------------------


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("should be an ISO-8601 time such as 2024-05-01T12:00:00+00:00") from None
    return value


IsoTime = Annotated[str, AfterValidator(_iso_time)]


def iso_time(epoch: float | None, timespec: str = "milliseconds") -> str | None:
    """An epoch time as run.json writes it: ISO-8601 in UTC; None (not known) for None or 0."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec) if epoch else None


class _Part(BaseModel):
    # Strict: a number written as text, or a key nobody defined, is a disagreement with the
    # contract, not something to guess at (ints are still accepted where a float is expected).
    model_config = ConfigDict(strict=True, extra="forbid")


class RunSpan(_Part):
    """One test started in this process (the web UI can start several): epoch seconds."""

    start: float
    end: float | None = None


class StageSpan(_Part):
    """One load-shape stage: planned boundaries in epoch seconds; end None while it runs."""

    name: str
    start: float
    end: float | None = None


class ShapeInfo(_Part):
    name: str
    params: dict[str, Any] = {}


class SloResult(_Part):
    """One --slo gate judged on the whole run's merged LLM stats."""

    expr: str
    metric: str = ""
    threshold: float | None = None
    unit: str = ""
    value: float | None = None  # None when nothing was there to judge
    passed: bool | None = None


class LlmTotals(_Part):
    requests: int
    failures: int
    blocked: int
    cancelled: int = 0  # cut off by the end of the run: neither an answer nor a failure
    output_tokens: int
    cost_usd: float


class HealthWarning(_Part):
    """A stretch of sustained CPU or event-loop-lag overload on one load-generator process."""

    node: str
    metric: str  # cpu_percent | loop_lag_ms
    threshold: float
    start: float
    end: float
    peak: float
    samples: int


class BudgetSummary(_Part):
    max_cost_usd: float | None
    spent_usd: float
    reached: bool
    reached_at: float | None
    spent_at_stop_usd: float | None


class LostWorker(_Part):
    """A worker whose last data never reached the master."""

    worker: str
    node: str | None
    last_report_at: IsoTime | None
    missing_at: IsoTime | None
    lost_window_s: float | None
    reported_requests: int
    logged_requests: int | None
    unreported_requests: int | None
    request_log: str | None
    users: int | None = None  # the users it ran when it was lost: the load the run went without
    total_users: int | None = None  # the users all workers ran then


class RefusedWorker(_Part):
    """A worker that refused to start (its preparation failed): its one-line reason."""

    worker: str
    reason: str
    at: IsoTime


class EmulatorDeath(_Part):
    """The bundled emulator ended while the run needed it."""

    at: IsoTime
    how: str  # "killed by SIGKILL", "exited with code 1 (<its last stderr line>)"
    pid: int | None = None


class Attribution(_Part):
    """Where model_calls.csv came from, in a run with app calls: the model host's send log."""

    source: str  # the model host's URL (no user:password@)
    records: int  # rows written to model_calls.csv
    dropped: int = 0  # ids the emulator's log let go (its limit): their app calls look unattributed
    error: str | None = None  # why nothing could be fetched (not an emulator, unreachable)


class RunInfo(_Part):
    """run.json. Written at start-up and again at the finish (and when start-up or the finish is
    interrupted); only the fields the run set are written, so an absent key means "not known",
    which the report shows differently from an empty value."""

    run_id: str = ""
    started_at: IsoTime | None = None
    ended_at: IsoTime | None = None
    host: str | None = None  # without any user:password@ part
    emulator: bool | None = None  # whether the run loaded the bundled emulator
    options: dict[str, Any] = {}  # every option, secrets removed
    # Each of those options' default (the parser's, plugins' options included), so the report can
    # show the ones the user set apart from the ones left alone; absent in older run.json files.
    option_defaults: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    versions: dict[str, str] = {}
    runs: list[RunSpan] = []
    interrupted: str | None = None  # what interrupted the run (a signal, a start-up failure)
    shape: ShapeInfo | None = None
    stages: list[StageSpan] = []
    capacity: dict[str, Any] | None = None  # the capacity search's result (shapes.capacity_result)
    llm: LlmTotals | None = None
    health_warnings: list[HealthWarning] = []
    budget: BudgetSummary | None = None
    lost_workers: list[LostWorker] = []
    refused_workers: list[RefusedWorker] = []
    emulator_died: EmulatorDeath | None = None
    slo: list[SloResult] = []
    slo_error: str | None = None  # --slo could not be judged
    attribution: Attribution | None = None  # app runs: the model calls' source (MODEL_CALLS)

    @property
    def started(self) -> float | None:
        """started_at as epoch seconds."""
        return _epoch(self.started_at)

    @property
    def ended(self) -> float | None:
        return _epoch(self.ended_at)

    def document(self) -> dict[str, Any]:
        """The JSON object: the fields that were set, nested parts as plain dicts."""
        return self.model_dump(exclude_unset=True)

    def to_json(self) -> str:
        # default=str: an option value JSON cannot hold is written as text rather than lost.
        return json.dumps(self.document(), indent=2, default=str)

    @classmethod
    def from_document(cls, document: Any, source: str = RUN_JSON) -> RunInfo:
        """Validate a decoded JSON value; ResultsFileError with one line saying what disagrees."""
        try:
            return cls.model_validate(_require_object(document, source))
        except ValidationError as error:
            raise ResultsFileError(_one_line(source, error)) from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = RUN_JSON) -> RunInfo:
        return cls.from_document(_decode(text, source), source)

    @classmethod
    def read(cls, path: Path) -> RunInfo:
        return cls.from_document(read_json_object(path), path.name)

    def write(self, folder: Path) -> Path:
        return write_atomically(folder / RUN_JSON, self.to_json())


def _epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _one_line(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = f"not a field of {source}"
    elif first["type"] != "missing":
        message += f", found {json.dumps(first['input'], default=str)[:60]}"
    more = error.error_count() - 1
    return f"{source}: {where}: {message}" + (f" (and {more} more problem(s))" if more else "")


def _decode(text: str | bytes, source: str) -> Any:
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{source} is not valid JSON ({type(error).__name__}: {error})") from None


def _require_object(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResultsFileError(f"{source} should hold a JSON object, found {type(value).__name__}")
    return value


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object; ResultsFileError (one line naming the file) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ResultsFileError(f"{path.name} is not valid JSON ({type(error).__name__}: {error})") from None
    return _require_object(_decode(text, path.name), path.name)
