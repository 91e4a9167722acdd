"""The overload profile with --retries 3, end to end: 503s come in episodes, so some calls retry
out of an episode and are answered, and others spend every attempt inside one and fail.

The bundled emulator runs at real time (seeded: the episodes fall at the same emulated times each
run, though the calls' timing still varies), so the config packs episodes tight: one
starts every ~3 s on average (overlapping ones merge) and lasts ~3 s, longer than most backoffs of
three retries (full jitter: up to 0.5 + 1 + 2 s); in 30 s the chance of no episode at all is e^-10.
"""

from __future__ import annotations

import json
from pathlib import Path

from reports import llm_analysis
from reports.loading import load_results
from tests.e2e.locust_child import read_rows, run_locust

USERS = 10
CONFIG = {
    "faults": {
        "overload_per_minute": 20,
        "overload_seconds": 3.0,
        "overload_503_share": 0.9,
        "overload_ramp_seconds": 1.0,
    },
    # Short answers: many calls per user, so both outcomes turn up in a short run.
    "model_defaults": {"ttft_median_ms": 100, "output_tokens_per_s": 2000},
}


def test_overload_with_retries_shows_failed_and_retried_then_answered_calls(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "run"
    config = tmp_path / "overload.json"
    config.write_text(json.dumps(CONFIG))
    proc = run_locust(
        repo_root, clean_env, "-u", str(USERS), "-r", str(USERS), "-t", "30s",
        "--emulator-profile", "overload", "--emulator-config", str(config), "--emulator-seed", "7",
        "--retries", "3",
        "--results-dir", str(out),
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    # Exit code 1 is a run with failed calls: expected here.
    assert proc.returncode in (0, 1), log[-3000:]

    emulator = json.loads((out / "emulator_stats.json").read_text())
    faults = emulator["faults_injected"]
    assert faults.get("overload_episodes", 0) >= 1, faults
    assert emulator["responses_by_status"].get("503", 0) == faults.get("overload_503", 0) > 0

    [log_file] = out.glob("requests-*.csv")
    rows = read_rows(log_file)
    answered = [row for row in rows if row["error_kind"] == ""]
    failed = [row for row in rows if row["error_kind"] == "server_error"]
    retried_then_answered = [row for row in answered if "server_error" in row["attempt_kinds"].split(";")]
    assert retried_then_answered, "some calls retried out of an episode and were answered"
    assert failed, "some calls spent all four attempts inside an episode"
    assert all(int(row["attempts"]) == 4 for row in failed)
    attempt_kinds = [kind for row in rows for kind in row["attempt_kinds"].split(";") if kind]
    logged, cut, served = (
        attempt_kinds.count("server_error"),
        attempt_kinds.count("cancelled"),
        emulator["responses_by_status"]["503"],
    )
    # Every 503 is accounted for: a 503 sent as the run stopped can meet an attempt the stop cut off,
    # which the client records as cancelled.
    assert logged <= served <= logged + cut, (logged, cut, served)

    # The report's error-rate chart shows episodes, not a flat line: per bin, the share of calls that
    # failed with a server error is high in some bins and nothing in others.
    data = load_results(out)
    requests = llm_analysis.add_derived(data.requests)
    start, end = llm_analysis.run_span(requests)
    series = llm_analysis.time_series(requests, data.origin, llm_analysis.bin_width(end - start))
    rate = series["rate_server_error"].fillna(0.0)
    assert rate.max() >= 50 and (rate == 0).sum() >= 3, rate.round(1).tolist()
    assert 'id="chart-llm-errors"' in (out / "report.html").read_text(encoding="utf-8")
