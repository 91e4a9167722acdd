"""Workers -> master: what each worker sent, and what was lost when one died.

Every Locust report (every 3 s, and once more when the master says quit) carries, under REPORT_KEY,
the worker's LLM stats since its last report (then reset on the worker, as Locust does with its own
stats) plus running totals since the worker started: calls recorded and cost in pico-USD. The same
report dict carries Locust's own stats, so the LLM stats and Locust's stats always cover exactly the
same calls, even when a worker dies.

A worker that dies loses what it gathered since its last report (up to 3 s). The master notices the
loss two ways: the worker's last report was made while its users still ran ("stopped" false), or
Locust marked it missing (no heartbeat for about 3 s). The lost window then goes into run.json
["lost_workers"] with the users the worker ran (the load the rest of the run went without) and
the calls the worker had logged in its per-request log (when that file is in the master's results
folder: same host or a shared volume) but never reported. A lost worker breaks the run: it exits 6
(metrics/verdict.py) and the report says which worker, when and how much load went with it.

Between reports, with a budget set, workers also send their running cost twice a second (MSG_COST),
so the master's budget check lags by about 0.5 s rather than 3 s.

The worker's side is metrics/roles.py's WorkerMetrics; the master's is MasterMetrics, which keeps a
WorkerTracker and runs watch_missing_forever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust.runners import STATE_MISSING

from core.results import iso_time

logger = logging.getLogger(__name__)

REPORT_KEY = "gemini_llm"
HEALTH_KEY = "gemini_health"
MSG_COST = "gemini_llm_cost"
LIVE_COST_INTERVAL_S = 0.5
WATCH_INTERVAL_S = 1.0


@dataclass
class WorkerState:
    client_id: str
    node: str = ""
    log_file: str = ""
    reports: int = 0
    last_report_at: float | None = None
    reported_requests: int = 0
    reported_cost_pusd: int = 0
    live_cost_pusd: int = 0
    stopped: bool = False
    missing_at: float | None = None
    users: int | None = None  # users it ran at its last report made while the test ran


def count_log_rows(path: Path) -> int | None:
    """Complete data lines of a per-request log (a killed writer may leave a partial last line)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data:
        return 0
    complete = data.count(b"\n")
    # Quoted fields may hold newlines in principle; the log's fields never do (messages are one line).
    return max(0, complete - 1)


class WorkerTracker:
    """The master's view of each worker's reports."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerState] = {}
        self.cost_baseline_pusd: dict[str, int] = {}

    def _state(self, client_id: str) -> WorkerState:
        state = self.workers.get(client_id)
        if state is None:
            state = self.workers[client_id] = WorkerState(client_id)
        return state

    def new_test(self) -> None:
        for state in self.workers.values():
            state.stopped = False
        # The budget counts this test's spend: what each worker had spent before it is the baseline.
        self.cost_baseline_pusd = self.cumulative_cost_pusd()

    def cumulative_cost_pusd(self) -> dict[str, int]:
        """Each worker's spend since it started, the freshest figure it sent (live or in a report)."""
        return {cid: max(s.live_cost_pusd, s.reported_cost_pusd) for cid, s in self.workers.items()}

    def test_cost_pusd(self) -> int:
        """Spend of the current test across workers; unlike the stats, never reset mid-test."""
        baseline = self.cost_baseline_pusd
        return sum(cost - baseline.get(cid, 0) for cid, cost in self.cumulative_cost_pusd().items())

    def on_report(
        self, client_id: str, payload: dict[str, Any], now: float, users: int | None = None
    ) -> None:
        """A worker's report; `users` is the user count Locust's own part of the report carries."""
        state = self._state(client_id)
        state.node = str(payload.get("node", state.node))
        state.log_file = str(payload.get("log_file", state.log_file))
        state.reports += 1
        state.last_report_at = now
        state.reported_requests = int(payload.get("cum_requests", state.reported_requests))
        state.reported_cost_pusd = int(payload.get("cum_cost_pusd", state.reported_cost_pusd))
        state.live_cost_pusd = max(state.live_cost_pusd, state.reported_cost_pusd)
        state.stopped = bool(payload.get("stopped", False))
        if users is not None and not state.stopped:
            state.users = int(users)
        if state.missing_at is not None:
            logger.info("worker %s reports again after going missing", client_id)
            state.missing_at = None

    def on_live_cost(self, client_id: str, cum_cost_pusd: int) -> None:
        state = self._state(client_id)
        state.live_cost_pusd = max(state.live_cost_pusd, int(cum_cost_pusd))

    def mark_missing(self, client_id: str, now: float) -> None:
        state = self._state(client_id)
        if state.missing_at is not None:
            return
        state.missing_at = now
        since = (
            f"since its last report at {iso_time(state.last_report_at)}"
            if state.last_report_at
            else "(no report)"
        )
        logger.warning(
            "worker %s went missing: its calls %s are not in the stats; see run.json lost_workers",
            client_id,
            since,
        )

    def lost(
        self, folder: Path | None, ended_at: float, skip: frozenset[str] = frozenset()
    ) -> list[dict[str, Any]]:
        """run.json["lost_workers"]: workers whose last data never reached the master (`skip`: the
        ids of workers accounted for otherwise, e.g. those that refused to start)."""
        found = []
        total_users = sum(state.users or 0 for state in self.workers.values()) or None
        for state in self.workers.values():
            if (state.stopped and state.missing_at is None) or state.client_id in skip:
                continue
            logged = count_log_rows(folder / state.log_file) if folder and state.log_file else None
            window_end = state.missing_at or ended_at
            found.append(
                {
                    "worker": state.client_id,
                    "node": state.node or None,
                    "last_report_at": iso_time(state.last_report_at),
                    "missing_at": iso_time(state.missing_at),
                    "lost_window_s": round(window_end - state.last_report_at, 3)
                    if state.last_report_at
                    else None,
                    "reported_requests": state.reported_requests,
                    "logged_requests": logged,
                    "unreported_requests": None
                    if logged is None
                    else max(0, logged - state.reported_requests),
                    "request_log": state.log_file or None,
                    "users": state.users,
                    "total_users": total_users,
                }
            )
        return found


def watch_missing_forever(runner: Any, tracker: WorkerTracker) -> None:
    """The master's greenlet: note each worker Locust marks missing (no heartbeat for about 3 s)."""
    while True:
        gevent.sleep(WATCH_INTERVAL_S)
        for client in list(runner.clients.all):
            if client.state == STATE_MISSING:
                tracker.mark_missing(client.id, time.time())


def warn_lost(lost: list[dict[str, Any]]) -> None:
    """One warning per lost worker, at the end, with what its request log holds that was never counted."""
    for item in lost:
        counted = item["unreported_requests"]
        logged = f"; {counted} of them are in its request log" if counted else ""
        load = f" ({describe_load(item)})" if item.get("users") is not None else ""
        logger.warning(
            "worker %s%s was lost: its calls after its last report (%s) never reached the master%s",
            item["node"] or item["worker"],
            load,
            item["last_report_at"] or "none",
            logged,
        )


def describe_load(item: dict[str, Any]) -> str:
    """The load a lost worker carried, e.g. "3 of 6 users"."""
    total = item.get("total_users")
    return f"{item.get('users')} of {total} users" if total else f"{item.get('users')} users"
