"""The latency model on the wire: a known first-chunk delay and chunk cadence, scaled by time scale.

A busy machine can only make chunks later, so each chunk is checked against the earliest moment
the plan allows; the one upper bound is the unscaled plan's, 100 times further out.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

from emu_http import FLASH, text_request

# Deterministic timing: TTFT 15 s, no prompt cost, no thinking, 2 tokens/s in 10-token chunks, so
# the first chunk lands at 15 + 5 = 20 s and each later chunk 5 s after the previous one. At time
# scale 0.01 that is 200 ms, then 50 ms apart.
FIXED = {
    "model_defaults": {
        "ttft_median_ms": 15_000,
        "ttft_sigma": 0,
        "prompt_tokens_per_s": 0,
        "thinking": False,
        "output_tokens_per_s": 2,
        "output_jitter": 0,
        "chunk_tokens": 10,
        "load_slowdown": 0,
    }
}
FIRST_S, GAP_S, CLOCK_SLACK_S = 0.2, 0.05, 0.002


def stream_times(url: str, max_tokens: int) -> list[float]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    body = text_request("timing", generationConfig={"maxOutputTokens": max_tokens})
    started = time.perf_counter()
    conn.request("POST", FLASH + ":streamGenerateContent?alt=sse", json.dumps(body), {"x-goog-api-key": "k"})
    response = conn.getresponse()
    times = []
    buffer = b""
    while True:
        data = response.read1(65536)
        if not data:
            break
        buffer += data
        while b"\r\n\r\n" in buffer:
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            times.append(time.perf_counter() - started)
    conn.close()
    return times


def test_first_chunk_and_cadence_follow_profile_and_time_scale(start_emulator) -> None:
    emu = start_emulator(time_scale=0.01, config_dict=FIXED)
    times = stream_times(emu.url, 40)  # 4 chunks
    assert len(times) == 4
    # Chunk i leaves no earlier than 200 ms + i * 50 ms after the request was sent...
    earliest = [FIRST_S + index * GAP_S - CLOCK_SLACK_S for index in range(4)]
    assert all(t >= e for t, e in zip(times, earliest, strict=True)), (times, earliest)
    # ...and the time scale applies: unscaled, the last chunk would come after 35 s.
    assert times[-1] < 5.0, times
