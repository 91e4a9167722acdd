"""The latency model on the wire: a known first-chunk delay and chunk cadence, scaled by time scale."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

from emu_http import FLASH, text_request

# Deterministic timing: TTFT 300 ms, no prompt cost, no thinking, 100 tokens/s in 10-token chunks,
# so the first chunk lands at 300 + 100 ms and each later chunk 100 ms after the previous one.
FIXED = {
    "model_defaults": {
        "ttft_median_ms": 300,
        "ttft_sigma": 0,
        "prompt_tokens_per_s": 0,
        "thinking": False,
        "output_tokens_per_s": 100,
        "output_jitter": 0,
        "chunk_tokens": 10,
        "load_slowdown": 0,
    }
}


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
    emu = start_emulator(time_scale=0.5, config_dict=FIXED)
    times = stream_times(emu.url, 40)  # 4 chunks
    assert len(times) == 4
    # first chunk: (300 + 100) ms * 0.5 = 200 ms; then 50 ms apart
    assert 0.19 <= times[0] <= 0.26, times
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.04 <= gap <= 0.08 for gap in gaps), gaps
