"""What breaks a run, piece by piece: the master's record of a lost worker and the load it carried,
the emulator's watcher, and the report's line for each (from run.json alone)."""

from __future__ import annotations

import os
import signal

from core.results import RunInfo
from emulator.launcher import EmulatorProcess
from metrics.distributed import WorkerTracker
from reports.metadata import run_events
from tests.waiting import wait_until

T0 = 1_700_000_000.0


def running_report(requests: int, stopped: bool = False) -> dict:
    return {"node": "", "log_file": "", "cum_requests": requests, "cum_cost_pusd": 0, "stopped": stopped}


def test_a_lost_worker_carries_the_users_it_ran_and_refused_ones_are_left_out() -> None:
    tracker = WorkerTracker()
    for worker in ("a", "b", "c"):
        tracker.on_report(worker, {**running_report(5), "node": f"worker-{worker}"}, T0, users=2)
    # Its final report, after its users stopped: user count 0, and it is not lost.
    tracker.on_report("a", running_report(9, stopped=True), T0 + 5, users=0)
    tracker.mark_missing("b", T0 + 4)
    lost = tracker.lost(None, T0 + 10, skip=frozenset({"c"}))
    assert [(item["worker"], item["users"], item["total_users"]) for item in lost] == [("b", 2, 6)]
    assert lost[0]["lost_window_s"] == 4.0 and lost[0]["unreported_requests"] is None


def run_info(**fields) -> RunInfo:
    return RunInfo.from_document({"started_at": "2024-05-01T12:00:00+00:00", **fields})


def lost_worker(**fields) -> dict:
    base = {
        "worker": "w1", "node": "worker-host-42", "last_report_at": "2024-05-01T12:00:07+00:00",
        "missing_at": "2024-05-01T12:00:10+00:00", "lost_window_s": 3.0, "reported_requests": 20,
        "logged_requests": 25, "unreported_requests": 5, "request_log": "requests-host-42.csv",
        "users": 3, "total_users": 6,
    }  # fmt: skip
    return {**base, **fields}


def test_the_report_says_which_worker_was_lost_when_with_what_load_and_what_is_missing() -> None:
    (line,) = run_events(run_info(lost_workers=[lost_worker()]))
    assert line.startswith("Worker worker-host-42 (3 of 6 users) was lost at 12:00:10 UTC, 10 s into the run")
    assert "5 calls in its request log (requests-host-42.csv) never reached the master" in line
    (line,) = run_events(run_info(lost_workers=[lost_worker(missing_at=None, unreported_requests=0)]))
    assert "lost after its last report (at 12:00:07 UTC, 7 s into the run)" in line
    assert "every call in its request log reached the master" in line
    (line,) = run_events(run_info(lost_workers=[lost_worker(unreported_requests=None, logged_requests=None)]))
    assert "its request log is not here" in line


def test_the_report_says_who_refused_and_when_the_emulator_died() -> None:
    lines = run_events(
        run_info(
            refused_workers=[
                {"worker": "w2", "reason": "imgs: not a folder", "at": "2024-05-01T12:00:01+00:00"}
            ],
            emulator_died={"at": "2024-05-01T12:00:30+00:00", "how": "killed by SIGKILL", "pid": 7},
            llm={"requests": 0, "failures": 0, "blocked": 0, "output_tokens": 0, "cost_usd": 0.0},
        )
    )
    assert lines == [
        "Worker w2 refused to start at 12:00:01 UTC, 1 s into the run: imgs: not a folder. The run was stopped.",
        "The bundled emulator died at 12:00:30 UTC, 30 s into the run (killed by SIGKILL): the run was "
        "stopped there, and calls in flight then failed.",
        "No call completed: nothing was measured.",
    ]
    assert run_events(run_info()) == []


def test_the_emulators_death_is_reported_at_once_and_a_stop_is_not_a_death() -> None:
    deaths: list[str] = []
    emulator = EmulatorProcess(profile="fast")
    emulator.start()
    try:
        watcher = emulator.watch(deaths.append)
        os.kill(emulator.pid, signal.SIGKILL)
        wait_until(lambda: deaths, 30, "the watcher's call")
        assert deaths == ["killed by SIGKILL"]
        assert emulator.exit_description() == "killed by SIGKILL"
        watcher.join(timeout=10)
    finally:
        emulator.stop()
        emulator.close_logs()

    stopped = EmulatorProcess(profile="fast")
    stopped.start()
    watcher = stopped.watch(deaths.append)
    stopped.stop()
    stopped.close_logs()
    watcher.join(timeout=30)
    assert not watcher.is_alive() and deaths == ["killed by SIGKILL"], "stop() is not a death"
