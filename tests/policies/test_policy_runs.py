"""The client policies in real headless Locust runs against the bundled emulator: AIMD lowers its
limit on 429s and holds calls (throttle_ms); a breaker's shed calls send nothing, so the client's
attempts still equal the requests the emulator served; and with two worker processes the workers'
limits follow the master's one shared signal."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.e2e.locust_child import QUICK_EMULATOR, quick_emulator_config, read_rows, run_locust

FLASH = "gemini-3.8-flash"


def served(out: Path) -> int:
    emulator = json.loads((out / "emulator_stats.json").read_text())
    return sum(n for route, n in emulator["requests_by_route"].items() if "generatecontent" in route.lower())


def requests(out: Path) -> list[dict[str, str]]:
    return [row for path in sorted(out.glob("requests-*.csv")) for row in read_rows(path)]


def policy_rows(out: Path, role: str) -> dict[str, list[dict[str, str]]]:
    return {path.name: read_rows(path) for path in sorted(out.glob(f"policy-{role}-*.csv"))}


def test_aimd_on_the_free_tier_lowers_its_limit_after_429s_and_holds_calls(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, clean_env, "-u", "6", "-r", "6", "-t", "10s", "--mix", "moderation=1",
        "--emulator-profile", "free-tier", "--emulator-config", quick_emulator_config(tmp_path),
        "--client-policy", "aimd", "--results-dir", str(out),
    )  # fmt: skip
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    rows = requests(out)
    assert {row["policy"] for row in rows} == {"aimd"}
    assert any(row["error_kind"] == "rate_limited" for row in rows)  # the free tier's 10 a minute
    assert any(float(row["throttle_ms"]) > 0 for row in rows)
    held = [row for row in rows if "while the client policy held it" in row["error_message"]]
    assert held and all(row["error_kind"] == "cancelled" for row in held)  # RetryInfo: most of a minute
    assert sum(int(row["attempts"]) for row in rows) == served(out)

    [log] = policy_rows(out, "local").values()
    limits = [float(row["value"]) for row in log if row["event"] == "limit"]
    assert limits[0] == 4 and min(limits) < max(limits)
    first_429 = min(float(r["start_time"]) for r in rows if r["error_kind"] == "rate_limited")
    lowered = [
        float(row["timestamp"])
        for before, row in zip(log, log[1:], strict=False)
        if row["event"] == "limit" and float(row["value"]) < float(before["value"])
    ]
    assert lowered and lowered[0] > first_429
    options = json.loads((out / "run.json").read_text())["options"]
    assert options["client_policy"] == "aimd" and options["aimd_start"] == "4"


def test_the_limiter_paces_the_run_to_its_rate(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    """--limit-rpm 120: 2 requests a second and a burst of 2, whatever the users would send (a fast
    emulator answers at once): the requests the emulator served stay within the bucket's bound, the
    calls were held for it, and the policy log says the rate in force."""
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, clean_env, "-u", "4", "-r", "4", "-t", "6s", "--mix", "moderation=1",
        "--emulator-profile", "fast", "--client-policy", "limiter", "--limit-rpm", "120",
        "--limit-tpm", "100000000", "--results-dir", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = requests(out)
    sent = [row for row in rows if int(row["attempts"]) > 0]
    starts = sorted(float(row["start_time"]) + float(row["throttle_ms"]) / 1000.0 for row in sent)
    span = starts[-1] - starts[0]
    # A full bucket of 2 at the start, then 2 a second: never more, whatever the machine's speed.
    assert sum(int(row["attempts"]) for row in rows) == served(out) <= 2 + 2 * span + 1
    assert sum(float(row["throttle_ms"]) > 0 for row in rows) > len(rows) / 2  # 4 users wanted more
    [log] = policy_rows(out, "local").values()
    assert any(row["event"] == "rate" and "rpm=120" in row["detail"] for row in log), log


def test_a_breaker_sheds_calls_without_sending_them(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, clean_env, "-u", "4", "-r", "4", "-t", "8s", "--mix", "moderation=1",
        "--emulator-profile", "free-tier", "--emulator-config", quick_emulator_config(tmp_path),
        "--client-policy", "breaker", "--breaker-window", "3", "--breaker-min-calls", "3",
        "--breaker-cooldown", "120", "--results-dir", str(out),
    )  # fmt: skip
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    rows = requests(out)
    shed = [row for row in rows if row["error_kind"] == "shed"]
    assert shed and all(row["attempts"] == "0" and row["policy_action"] == "shed" for row in shed)
    assert sum(int(row["attempts"]) for row in rows) == served(out)  # a shed call sent nothing
    [log] = policy_rows(out, "local").values()
    assert [row["detail"] for row in log if row["event"] == "state"][:1] == ["open"]


def test_two_workers_follow_the_masters_one_signal(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    # 503s past 4 slots and a per-minute quota: the shared limit moves down and up within the run.
    config = tmp_path / "emulator.json"
    config.write_text(
        json.dumps(
            {
                **QUICK_EMULATOR,
                "quotas": {FLASH: {"rpm": 60, "tpm": 10_000_000, "rpd": 100_000}},
                "models": {FLASH: {"capacity": 4}},
            }
        )
    )
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, clean_env, "--processes", "2", "-u", "12", "-r", "12", "-t", "20s",
        "--mix", "moderation=1", "--emulator-profile", "free-tier", "--emulator-config", str(config),
        "--client-policy", "aimd", "--aimd-start", "8", "--aimd-max", "16", "--results-dir", str(out),
        timeout=240,
    )  # fmt: skip
    assert proc.returncode in (0, 1), (proc.stdout + proc.stderr)[-3000:]
    [master] = policy_rows(out, "master").values()
    workers = policy_rows(out, "worker")
    assert len(workers) == 2
    signals = [row for row in master if row["event"] == "signal"]
    values = [float(row["value"]) for row in signals]
    assert len(signals) >= 2 and min(values) < values[0] == 8, values
    assert all(row["detail"] == "2" for row in signals)
    for signal in signals:
        when, value = float(signal["timestamp"]), float(signal["value"])
        in_force = []
        for name, rows in workers.items():
            following = [row for row in rows if row["event"] == "limit" and float(row["timestamp"]) >= when]
            assert following, f"{name} never followed the signal {value:g} at {when}"
            # the worker's next limit is this signal's share, not a later one's
            assert following[0]["detail"] == f"signal={value:g} workers=2", (name, following[0], signal)
            in_force.append(float(following[0]["value"]))
        assert sum(in_force) == pytest.approx(value), (signal, in_force)
    assert sum(int(row["attempts"]) for row in requests(out)) == served(out)
    counts = defaultdict(int)
    for row in requests(out):
        counts[row["error_kind"]] += 1
    assert counts["server_error"] or counts["rate_limited"], counts  # the signal had something to follow
