"""Rising load against the `small-capacity` profile: latency grows, then 503s (or 504s) appear.

small-capacity: 4 slots per model and no queue (past capacity the real API answers 503 at once),
and every busy slot slows the others (load_slowdown 1.0). With a fixed 3 s answer at time scale 0.1,
one request alone takes 0.3 s x 1.25 (its own slot is a quarter of the capacity). A burst of 24 at
once fills the slots (up to 2x slower) and the rest are refused at once.

Every check is a count or a lower bound: a busy machine can delay the clients, which only makes
answers later, and cannot make the emulator serve more than its capacity.
"""

from __future__ import annotations

import statistics
import time

import gevent
from emu_http import FLASH, call, text_request

SERVICE_S = 0.3  # the plan's answer time at time scale 0.1, before load slows it down
BURST = 24
FIXED = {
    "model_defaults": {
        "ttft_median_ms": 3000,
        "ttft_sigma": 0,
        "prompt_tokens_per_s": 0,
        "thinking": False,
        "output_tokens_per_s": 0,  # the whole answer at once, after the TTFT
        "output_jitter": 0,
    }
}


def timed_call(url: str, text: str) -> tuple[int, float]:
    started = time.perf_counter()
    status, _, _ = call(url, FLASH + ":generateContent", text_request(text))
    return status, time.perf_counter() - started


def test_latency_grows_and_rejections_appear(start_emulator) -> None:
    emu = start_emulator(profile="small-capacity", time_scale=0.1, seed=3, config_dict=FIXED)
    alone = [timed_call(emu.url, f"alone {i}") for i in range(2)]
    burst_calls = [gevent.spawn(timed_call, emu.url, f"burst {i}") for i in range(BURST)]
    gevent.joinall(burst_calls, timeout=60, raise_error=True)
    burst = [g.value for g in burst_calls]
    print(f"alone: {alone}\nburst: {sorted(burst)}")

    # Alone: always answered, never faster than the plan (one busy slot of four: 1.25 x).
    assert [status for status, _ in alone] == [200, 200], alone
    assert min(seconds for _, seconds in alone) >= 1.25 * SERVICE_S * 0.99, alone
    # Under the burst: the capacity holds, so some are refused, and the answered ones take longer.
    statuses = [status for status, _ in burst]
    assert len(statuses) == BURST and set(statuses) <= {200, 503, 504}, statuses
    rejected = sum(status != 200 for status in statuses)
    assert rejected > 0 and statuses.count(200) >= 4, statuses
    answered = [seconds for status, seconds in burst if status == 200]
    assert statistics.median(answered) >= 1.5 * SERVICE_S, sorted(answered)
    limits = emu.stats()["limits_hit"]
    assert limits.get("queue_full", 0) == rejected, limits  # refused at once: nothing waited
