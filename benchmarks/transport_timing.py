"""The TTFT phase of `python -m benchmarks transports`: how true each transport's timing stays.

Streams come from an emulator model whose first chunk is due exactly 300 ms after the request (no
jitter, no load slowdown), at 10 and 500 concurrent streams. Per call, three clocks:
- the read time of the first text chunk (when a greenlet got to it: what a generator without
  kernel stamps measures), and its arrival (the kernel's receive stamp, users/arrival.py, which is
  what the suite's TTFT now is where the socket gives one);
- the emulator's own stamps (GET /emulator/sends, joined on the x-request-id the http transport
  sends): when it read the request, when its model meant the first chunk to leave and when it did.
TTFT error = measured - 300 ms. Server lateness = the first chunk's send stamp - its due time; net
error = arrival error - server lateness: what the client adds (sending the request late, since
the request's start is when the user began the call, and the wire); request lateness = when the
emulator read the request - when the call began. Read error - arrival error is the generator's
reading late (read delay).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any

from core.quantiles import nearest_rank
from users.call import CallTimer

EXPECTED_TTFT_MS = 300.0
LEVELS = (10, 500)
# Each phase's per-call figures, summarised as p50 / p99 in the JSON line.
FIGURES = ("read_error", "arrival_error", "server_lateness", "request_lateness", "net_error", "read_delay")


class ReadAndArrivalTimer(CallTimer):
    """A CallTimer that also keeps the read time of the first text chunk (its arrival is first_text_ms)."""

    __slots__ = ("first_text_read_ms",)

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id=request_id)
        self.first_text_read_ms: float | None = None

    def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
        if has_text and self.first_text_read_ms is None:
            self.first_text_read_ms = self.elapsed_ms()
        CallTimer.chunk(self, has_text=has_text, has_thought=has_thought)


def _admin(url: str, path: str, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=60) as reply:  # loopback: the bundled emulator
        parsed: dict[str, Any] = json.loads(reply.read() or b"{}")
        return parsed


def run_phase(users: list[Any], specs: list[Any], url: str, seconds: float) -> dict[str, Any]:
    """Every user streams in a loop until the deadline (starts spread over one second); returns
    per-call figure lists (ms) joined with the emulator's send stamps, and counts."""
    import gevent

    if _admin(url, "/emulator/sends/reset", "POST").get("workers_missing"):
        raise RuntimeError("an emulator worker did not clear its send stamps: the join would mix phases")
    calls: list[tuple[ReadAndArrivalTimer, float]] = []
    out: dict[str, Any] = {"ok": 0, "errors": 0, "stamped": 0}
    deadline = time.perf_counter() + seconds
    prefix = f"{os.getpid():x}"

    def user(index: int) -> None:
        gevent.sleep(index / len(users))
        n = index
        while time.perf_counter() < deadline:
            timer = ReadAndArrivalTimer(f"{prefix}-{index}-{n}")
            wall_start = time.time()
            try:
                users[index].call(specs[n % len(specs)], timer)
                out["ok"] += 1
                calls.append((timer, wall_start))
            except Exception:  # noqa: BLE001 - counted; the benchmark goes on
                out["errors"] += 1
            n += len(users)

    gevent.joinall([gevent.spawn(user, i) for i in range(len(users))], timeout=seconds + 60)
    snapshot = _admin(url, "/emulator/sends")
    sends = snapshot.get("sends", {})
    out["sends_missing_workers"] = snapshot.get("workers_missing", 0)
    out["sends_dropped"] = snapshot.get("dropped", 0)
    figures: dict[str, list[float]] = {name: [] for name in FIGURES}
    for timer, wall_start in calls:
        if timer.first_text_ms is None or timer.first_text_read_ms is None:
            continue
        figures["read_error"].append(timer.first_text_read_ms - EXPECTED_TTFT_MS)
        if timer.arrival_clock != "kernel":
            continue
        out["stamped"] += 1
        arrival_error = timer.first_text_ms - EXPECTED_TTFT_MS
        figures["arrival_error"].append(arrival_error)
        figures["read_delay"].append(timer.first_text_read_ms - timer.first_text_ms)
        record = sends.get(timer.request_id) or {}
        sent, due, received = record.get("sent") or [], record.get("first_due"), record.get("received")
        if sent and due is not None and received is not None:
            # The server's own lateness: from when its model meant the first chunk to leave (it
            # plans from when it read the request) to when it left. What is left of the arrival
            # error is the client's: sending the request late, and the wire.
            lateness = (sent[0] - due) * 1000.0
            figures["server_lateness"].append(lateness)
            figures["request_lateness"].append((received - wall_start) * 1000.0)
            figures["net_error"].append(arrival_error - lateness)
    return {**out, "figures": figures}


def pct(values: list[float], percent: float) -> float | None:
    """The suite's one percentile (nearest rank), to 0.1 ms; None without values."""
    value = nearest_rank(values, percent)
    return None if value is None else round(value, 1)


def summarise(figures: dict[str, list[float]]) -> dict[str, Any]:
    """p50 and p99 of each figure, and how many calls each holds."""
    row: dict[str, Any] = {}
    for name in FIGURES:
        values = figures.get(name, [])
        row[f"{name}_p50"], row[f"{name}_p99"], row[f"{name}_n"] = (
            pct(values, 50),
            pct(values, 99),
            len(values),
        )
    return row


HEADER = (
    f"  {'transport':10} {'streams':>7} {'read p50/p99':>15} {'arrival p50/p99':>16} "
    f"{'server late p99':>15} {'request late p99':>16} {'net p99':>8} {'read delay p99':>14} {'n':>6} {'hub lag p99':>11}"
)


def line(transport: str, level: int, row: dict[str, Any]) -> str:
    def pair(name: str) -> str:
        return f"{row[name + '_p50']!s}/{row[name + '_p99']!s}"

    return (
        f"  {transport:10} {level:7} {pair('read_error'):>15} {pair('arrival_error'):>16} "
        f"{row['server_lateness_p99']!s:>15} {row['request_lateness_p99']!s:>16} {row['net_error_p99']!s:>8} {row['read_delay_p99']!s:>14} "
        f"{row['read_error_n']:6} {row.get('hub_lag_p99_ms')!s:>11}"
    )
