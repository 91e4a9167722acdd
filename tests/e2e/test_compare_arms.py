"""`--compare FLAG=V1,V2`: one child Locust per arm, each into its own folder, then one comparison
report; the exit code rule; one-line refusals. Real Locust children on the bundled emulator."""

from __future__ import annotations

import csv
import re
import signal
from pathlib import Path

import pytest

from lifecycle.arms import arm_folder_name, exit_code_of_comparison
from tests.e2e.locust_child import LocustRun, calls_logged, quick_emulator_config, read_rows, run_locust

ARM_CODE = re.compile(r"compare: arm (\d\d) (\S+?)=(\S+): exit (-?\d+)")


def arm_codes(output: str) -> dict[str, int]:
    """Each arm's exit code as the driver's console names it, by value."""
    return {match[3]: int(match[4]) for match in ARM_CODE.finditer(output)}


def comparison_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "arms.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def server_refusals(folder: Path) -> tuple[int, int]:
    """(429s, 5xx) the server answered in an arm's request logs, every attempt's."""
    kinds = [
        kind
        for log in folder.glob("requests-*.csv")
        for row in read_rows(log)
        for kind in row["attempt_kinds"].split(";")
    ]
    return kinds.count("rate_limited"), kinds.count("server_error")


def test_compare_retries_runs_one_arm_each_and_compares_them(repo_root, clean_env, tmp_path) -> None:
    out = tmp_path / "cmp"
    proc = run_locust(
        repo_root, clean_env,
        "-u", "4", "-r", "4", "-t", "6s", "--emulator-profile", "flaky", "--emulator-seed", "7",
        "--emulator-config", quick_emulator_config(tmp_path), "--results-dir", str(out),
        "--compare", "retries=0,2",
        timeout=300,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    codes = arm_codes(output)
    assert list(codes) == ["0", "2"], output[-3000:]
    # Every arm's output is printed under its label, so a long comparison shows its progress.
    assert "[01 retries=0] " in output and "[02 retries=2] " in output
    assert proc.returncode == exit_code_of_comparison(list(codes.values()))
    assert (proc.returncode == 0) == all(code == 0 for code in codes.values())
    rows = comparison_rows(out)
    assert [row["value"] for row in rows] == ["0", "2"]
    for row, value in zip(rows, ("0", "2"), strict=True):
        arm = out / arm_folder_name(int(row["folder"][:2]), "retries", value)
        assert row["folder"] == arm.name and (arm / "report.html").exists()
        assert '"retries": ' + value in (arm / "run.json").read_text()
        assert int(row["calls"]) == calls_logged(arm) > 0
        limited, unavailable = server_refusals(arm)
        assert (int(row["rate_limited_429"]), int(row["server_errors_5xx"])) == (limited, unavailable)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>retries compared</h2>" in html
    assert '<a href="01-retries-0/report.html">' in html and '<a href="02-retries-2/report.html">' in html


def test_sigterm_goes_to_the_running_arm_and_no_later_arm_starts(repo_root, clean_env, tmp_path) -> None:
    out = tmp_path / "stopped"
    first = out / arm_folder_name(1, "retries", "0")
    run = LocustRun(
        repo_root, clean_env, out,
        "-u", "2", "-r", "2", "-t", "120s", "--emulator-config", quick_emulator_config(tmp_path),
        "--compare", "retries=0,1",
    )  # fmt: skip
    run.wait_for(lambda: calls_logged(first) > 0, "a call logged by the first arm", timeout=120)
    code = run.signal_and_wait(signal.SIGTERM, timeout=120)
    output = run.output()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert "compare: arm 02 retries=1: not run" in output
    assert not (out / arm_folder_name(2, "retries", "1")).exists()
    assert (first / "report.html").exists()  # the arm ended as a stopped run does: its files written
    assert [row["value"] for row in comparison_rows(out)] == ["0"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--compare", "nope=1,2"), "--compare nope=...: this run has no option --nope"),
        (("--compare", "retries=1"), "give at least two non-empty values"),
        (("--compare", "retries=0,many"), "--compare retries=many: invalid int value"),
        (("--compare", "retries=0,-1"), "--retries -1 is too small"),  # the suite's own check, up front
        # A scenario's own options too, before any arm runs.
        (("--compare", "batch-size=1,0"), "--batch-size 0 is out of range"),
        (("--compare", "context-cache=implicit,sometimes"), "--context-cache 'sometimes' is not known"),
        (("--compare", "retries=0,1", "--compare-policies", "retry,aimd"), "were both given"),
        (("--compare", "retries=0,1", "--master"), "drop --master/--worker/--processes"),
    ],
)
def test_bad_compare_is_one_line_and_exit_2(repo_root, clean_env, tmp_path, args, expected) -> None:
    proc = run_locust(
        repo_root, clean_env, "-t", "5s", "--results-dir", str(tmp_path / "r"), *args, timeout=120
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-2000:]
    errors = [line for line in output.splitlines() if "/ERROR/" in line]
    assert len(errors) == 1 and expected in errors[0], output[-2000:]
    assert "Traceback" not in output
    assert not (tmp_path / "r").exists()  # nothing ran


def test_compare_policies_on_the_free_tier(repo_root, clean_env, tmp_path) -> None:
    out = tmp_path / "policies"
    proc = run_locust(
        repo_root, clean_env,
        "-u", "4", "-r", "4", "-t", "8s", "--emulator-profile", "free-tier", "--emulator-seed", "3",
        "--emulator-config", quick_emulator_config(tmp_path), "--results-dir", str(out),
        "--compare-policies", "retry,aimd,breaker",
        timeout=400,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    codes = arm_codes(output)
    assert list(codes) == ["retry", "aimd", "breaker"], output[-3000:]
    assert proc.returncode == exit_code_of_comparison(list(codes.values()))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Policies compared</h2>" in html
    assert [row["value"] for row in comparison_rows(out)] == ["retry", "aimd", "breaker"]
    for row in comparison_rows(out):
        assert int(row["calls"]) == calls_logged(out / row["folder"]) > 0


def test_batches_of_8_against_single_posts_in_one_report(repo_root, clean_env, tmp_path) -> None:
    """The same posts one a call and 8 a call, compared per post: each arm's items answered, per-item
    cost and accuracy come from its own request log, and the batched arm judged 8 posts a call."""
    out = tmp_path / "batching"
    proc = run_locust(
        repo_root, clean_env,
        "-u", "2", "-r", "2", "-t", "6s", "--mix", "moderation=1", "--emulator-seed", "5",
        "--emulator-config", quick_emulator_config(tmp_path), "--results-dir", str(out),
        "--compare", "batch-size=1,8",
        timeout=300,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    rows = {row["value"]: row for row in comparison_rows(out)}
    assert list(rows) == ["1", "8"]
    for value, row in rows.items():
        logged = [r for r in read_rows(next((out / row["folder"]).glob("requests-*.csv")))]
        answered = [r for r in logged if r["error_kind"] in ("", "blocked")]
        posts = sum(int(r["batch_size"]) for r in answered)
        assert int(row["items_answered"]) == posts > 0
        assert all(int(r["batch_size"]) == int(value) for r in logged)
        cost = sum(float(r["cost_usd"]) for r in logged)
        assert float(row["cost_per_1k_items_usd"]) == pytest.approx(cost / posts * 1000)
        assert 0.5 < float(row["accuracy"]) <= 1.0
    # A batch carries its instruction once for 8 posts: fewer dollars per post than one at a time.
    assert float(rows["8"]["cost_per_1k_items_usd"]) < float(rows["1"]["cost_per_1k_items_usd"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>batch-size compared</h2>" in html and "USD per 1,000 items" in html


@pytest.mark.parametrize(
    ("codes", "interrupted_by", "expected"),
    [
        ([0, 0], None, 0),
        ([0, 1], None, 1),
        ([1, 5], None, 5),
        ([0, 3, 130], None, 3),  # a failed SLO verdict outranks an interrupt
        ([3, 6], None, 6),
        ([0, 2], None, 2),  # a refused arm never hides behind a passing one
        ([6, 2], None, 2),
        ([0], signal.SIGINT, 130),  # stopped before every arm ran: never 0
        ([0, 255], None, 255),
    ],
)
def test_exit_code_of_a_comparison(codes, interrupted_by, expected) -> None:
    assert exit_code_of_comparison(codes, interrupted_by) == expected
