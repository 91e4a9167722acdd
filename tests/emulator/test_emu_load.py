"""Rising load against the `small-capacity` profile: latency grows, then 503s (or 429s) appear.

small-capacity: 4 slots per model, a queue of 16, a 5 s (emulated) queue timeout. At time scale
0.05 one flash request takes about 0.1 s real, so 4 slots serve ~40 requests/s; pushing 1, 4, 8
and 24 concurrent clients walks it from idle through queueing to rejection.
"""

from __future__ import annotations

import statistics
import threading
import time

from emu_http import FLASH, call, text_request

LEVELS = (1, 4, 8, 24)
SECONDS_PER_LEVEL = 1.0


def run_level(url: str, clients: int, seconds: float) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, _, _ = call(url, FLASH + ":generateContent", text_request(f"client {index} request {n}"))
            elapsed = time.perf_counter() - started
            n += 1
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 10)
    return latencies, statuses


def test_latency_grows_and_rejections_appear(start_emulator) -> None:
    emu = start_emulator(profile="small-capacity", time_scale=0.05, seed=3)
    rows = []
    for clients in LEVELS:
        latencies, statuses = run_level(emu.url, clients, SECONDS_PER_LEVEL)
        p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
        rows.append((clients, p50, statuses))
        print(f"clients={clients:3d} ok={len(latencies):4d} p50={p50:7.1f} ms statuses={statuses}")
    first_p50, last_p50 = rows[0][1], rows[-1][1]
    assert last_p50 > 1.5 * first_p50, rows
    rejected = sum(count for status, count in rows[-1][2].items() if status in (429, 503, 504))
    assert rejected > 0, rows
    assert sum(rows[0][2].get(s, 0) for s in (429, 503, 504)) == 0, rows
    limits = emu.stats()["limits_hit"]
    rejected_total = sum(count for row in rows for status, count in row[2].items() if status in (503, 504))
    assert limits.get("queue_full", 0) + limits.get("queue_timeout", 0) == rejected_total
