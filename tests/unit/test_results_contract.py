"""The results-folder contract (core/results.py): what the writers write is what the reader accepts,
and a file that disagrees with it is one line naming the file and what is wrong."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
from locust.env import Environment

from core.outcome import OUTCOME_COLUMNS, Outcome
from core.results import (
    HEALTH,
    LLM_HISTORY,
    LLM_STATS,
    REQUEST_LOG,
    RUN_JSON,
    ResultsFileError,
    RunInfo,
)
from core.slo import GateResult, parse_slo
from metrics import health, llm_files
from metrics.llm_stats import LlmStats
from metrics.recorder import RequestLog, record_outcome, request_log_name
from metrics.results import RunFolder
from reports.loading import REQUEST_COLUMNS_USED, load_results

FULL_RUN = {
    "run_id": "r1",
    "started_at": "2024-05-01T12:00:00+00:00",
    "ended_at": "2024-05-01T12:01:00Z",
    "host": "http://127.0.0.1:8765",
    "emulator": True,
    "options": {"users": 2, "note": None},
    "option_defaults": {"users": None, "note": None},
    "settings": {"model": "gemini-2.5-flash"},
    "versions": {"python": "3.11.2"},
    "runs": [{"start": 1714564800.0, "end": 1714564860.0}],
    "interrupted": "SIGINT during the run",
    "shape": {"name": "StepShape", "params": {"steps": 3}},
    "stages": [{"name": "warm-up", "start": 1714564800.0, "end": None}],
    "capacity": {"capacity_rps": 4.0, "stop_reason": "slo_breached", "slo": [], "steps": []},
    "llm": {
        "requests": 10,
        "failures": 1,
        "blocked": 0,
        "cancelled": 2,
        "output_tokens": 99,
        "cost_usd": 0.001,
    },
    "health_warnings": [
        {
            "node": "local-h-1",
            "metric": "cpu_percent",
            "threshold": 90.0,
            "start": 1.0,
            "end": 3.0,
            "peak": 99.0,
            "samples": 3,
        }
    ],
    "budget": {
        "max_cost_usd": 1.0,
        "spent_usd": 0.5,
        "reached": False,
        "reached_at": None,
        "spent_at_stop_usd": None,
    },
    "lost_workers": [
        {
            "worker": "w1",
            "node": None,
            "last_report_at": "2024-05-01T12:00:30+00:00",
            "missing_at": None,
            "lost_window_s": 3.0,
            "reported_requests": 4,
            "logged_requests": 6,
            "unreported_requests": 2,
            "request_log": "requests-h-2.csv",
        }
    ],
    "refused_workers": [
        {"worker": "w2", "reason": "--images-dir imgs: no such folder", "at": "2024-05-01T12:00:01+00:00"}
    ],
    "emulator_died": {"at": "2024-05-01T12:00:40+00:00", "how": "killed by SIGKILL", "pid": 1234},
    "slo": [
        {
            "expr": "e2e_p95<=1s",
            "metric": "e2e_p95",
            "threshold": 1000.0,
            "unit": "ms",
            "value": None,
            "passed": False,
        }
    ],
    "slo_error": "x",
    "attribution": {"source": "http://127.0.0.1:8765", "records": 12, "dropped": 1, "error": None},
}


def test_run_json_round_trip_keeps_every_field_and_only_the_fields_set() -> None:
    info = RunInfo.from_document(FULL_RUN)
    assert set(RunInfo.model_fields) == set(FULL_RUN), "this test covers every field of run.json"
    again = RunInfo.from_json(info.to_json())
    assert again == info and json.loads(again.to_json()) == FULL_RUN
    assert info.stages[0].name == "warm-up" and info.lost_workers[0].unreported_requests == 2
    assert info.started == 1714564800.0 and info.ended == 1714564860.0
    # An absent key is "not known", which the report shows apart from an empty value.
    assert json.loads(RunInfo(run_id="r2").to_json()) == {"run_id": "r2"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"stages": [{"name": "a", "start": "soon"}]},
            'run.json: stages.0.start: Input should be a valid number, found "soon"',
        ),
        ({"colour": "blue"}, "run.json: colour: not a field of run.json"),
        ({"runs": [{"start": 1.0, "stop": 2.0}]}, "run.json: runs.0.stop: not a field of run.json"),
        ({"started_at": "yesterday"}, "run.json: started_at: should be an ISO-8601 time"),
        ({"shape": {"params": {}}}, "run.json: shape.name: Field required"),
        ({"emulator": "yes", "llm": 3}, "(and 1 more problem(s))"),
    ],
)
def test_a_run_json_that_disagrees_is_one_line_naming_the_field(change: dict, message: str) -> None:
    with pytest.raises(ResultsFileError) as caught:
        RunInfo.from_json(json.dumps({**FULL_RUN, **change}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_reader_warns_about_a_bad_run_json_and_reports_the_rest(tmp_path: Path) -> None:
    folder = write_request_log(tmp_path)
    (folder / RUN_JSON).write_text(json.dumps({"run_id": "r", "runs": [{"start": "then"}]}))
    data = load_results(folder)
    assert 'run.json: runs.0.start: Input should be a valid number, found "then"' in data.warnings
    assert data.run == RunInfo() and len(data.requests) == 2


def test_the_reader_names_the_file_and_the_missing_columns(tmp_path: Path) -> None:
    folder = write_request_log(tmp_path)
    (folder / HEALTH.name).write_text("timestamp,node,cpu\n1,n,2\n")
    data = load_results(folder)
    assert (
        "health.csv: missing column(s) cpu_percent, loop_lag_ms; is it a file from this suite/Locust?"
        in data.warnings
    )
    assert data.health is None and data.requests is not None


def test_the_run_folder_writes_what_the_reader_accepts(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    folder.started_at = 1714564800.0
    detector = health.HealthDetector()
    for second in range(3):
        detector.add((float(second), "local-h-1", 95.0, 1.0))
    gate = parse_slo("e2e_p95<=1s")[0]
    folder.extra.update(
        emulator=True,
        runs=[{"start": 1714564800.0, "end": None}],
        health_warnings=detector.warnings,
        slo=[GateResult(gate, 900.0, True).as_dict()],
    )
    folder.write_run_json({"model": "m"})
    info = RunInfo.read(folder.folder / RUN_JSON)
    assert info.run_id == "run" and info.host == "http://127.0.0.1:9" and info.settings == {"model": "m"}
    assert "api_key" not in info.options and info.options["users"] == 2
    assert info.health_warnings[0].samples == 3 and info.slo[0].passed is True
    assert info.ended_at is None and "ended_at" in info.model_fields_set


def test_a_writer_that_breaks_the_contract_is_named_and_nothing_is_lost(tmp_path: Path, caplog) -> None:
    folder = run_folder(tmp_path)
    folder.extra["stages"] = [{"name": "x", "start": "soon", "end": None}]
    with pytest.raises(
        ResultsFileError, match=r"^run\.json: stages\.0\.start: Input should be a valid number"
    ):
        folder.run_info({})
    folder.write_run_json({})  # a finished run keeps its record: logged as a bug, written as it stands
    assert "stages.0.start" in caplog.text and "results contract" in caplog.text
    assert json.loads((folder.folder / RUN_JSON).read_text())["stages"][0]["start"] == "soon"
    with pytest.raises(ResultsFileError, match=r"stages\.0\.start"):  # and the reader says so too
        RunInfo.read(folder.folder / RUN_JSON)


def test_writers_write_the_contract_headers(tmp_path: Path) -> None:
    stats = LlmStats(keep_current_window=True)
    stats.log(Outcome("s", "m", "genai", 1.0, e2e_ms=5.0, output_tokens=3), now=2.0)
    # The LLM stats name every value by its contract column (HistoryLog writes by name, any order).
    assert tuple(stats.rows()[0]) == LLM_STATS.columns
    assert set(stats.history_rows(3.0, 1)[0]) == set(LLM_HISTORY.columns)
    llm_files.write_stats_csv(tmp_path, stats.rows())
    history, health_log = llm_files.HistoryLog(), health.HealthLog()
    for log in (history, health_log):
        log.open(tmp_path)
        log.close()
    for spec in (LLM_STATS, LLM_HISTORY, HEALTH):
        assert header(tmp_path / spec.name) == list(spec.columns), spec.name


def test_the_request_log_is_written_with_its_contract_and_read_back(tmp_path: Path) -> None:
    folder = write_request_log(tmp_path)
    (path,) = folder.glob(REQUEST_LOG.name)
    assert path.name == request_log_name() and header(path) == list(OUTCOME_COLUMNS)
    data = load_results(folder)
    assert data.requests["e2e_ms"].tolist() == [12.5, 30.0]
    assert data.requests["error_kind"].astype(str).tolist() == ["", "timeout"]
    assert not [w for w in data.warnings if path.name in w]


def test_request_log_types_come_from_the_outcome() -> None:
    assert {"start_time", "e2e_ms", "output_tokens", "http_status", "tpot_ms"} <= REQUEST_LOG.numeric
    assert not {"scenario", "error_kind", "gaps_ms", "stage"} & REQUEST_LOG.numeric
    assert set(REQUEST_COLUMNS_USED) <= set(OUTCOME_COLUMNS), "the report reads only logged columns"


# ---- helpers ---------------------------------------------------------------------------------------


def header(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return next(csv.reader(handle))


def run_folder(tmp_path: Path) -> RunFolder:
    environment = Environment(host="http://user:secret@127.0.0.1:9")
    environment.parsed_options = argparse.Namespace(users=2, api_key="AIzaSecret")
    folder = RunFolder(environment, tmp_path / "run")
    folder.csv_writer.close_files()  # Locust's own CSVs are not what these tests look at
    return folder


def write_request_log(tmp_path: Path) -> Path:
    """Two Outcomes through RequestLog, the way a load-generating process logs them."""
    folder = tmp_path / "results"
    environment = Environment()
    environment.parsed_options = argparse.Namespace(results_dir=str(folder))
    log = RequestLog(environment)
    record_outcome(environment, Outcome("chat", "m", "genai", 100.0, e2e_ms=12.5, output_tokens=4))
    record_outcome(environment, Outcome("chat", "m", "genai", 101.0, e2e_ms=30.0, error_kind="timeout"))
    log.close()
    assert log.rows == 2
    return folder
