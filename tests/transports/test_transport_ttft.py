"""Streaming timing is exact on every transport: TTFT and chunk gaps against known server delays.

The emulator is set to send the first chunk after a fixed 200 ms (100 ms to first token + 24
tokens at 240 tokens/s) and each later chunk 100 ms after the previous one, with no jitter. A
client that held back bytes (geventhttpclient waits for about 1 KB) or read ahead (the legacy SDK's
GenerativeModel iterator waits for the next chunk) would see the first chunk a gap late.
"""

from __future__ import annotations

import statistics

import pytest
from transport_helpers import TRANSPORT_NAMES, make_transport, spec

from users.call import CallTimer

MODEL = "gemini-2.0-flash"
FIRST_CHUNK_MS = 200.0
GAP_MS = 100.0
CALLS = 4


@pytest.fixture(scope="module")
def timed_emulator(start_emulator):  # noqa: ANN001, ANN201
    exact = {
        "ttft_median_ms": 100.0,
        "ttft_sigma": 0.0,
        "prompt_tokens_per_s": 0.0,
        "output_tokens_per_s": 240.0,
        "output_jitter": 0.0,
        "chunk_tokens": 24,
        "load_slowdown": 0.0,
        "thinking": False,
    }
    return start_emulator("fast", {"models": {MODEL: exact}}, time_scale=1.0)


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_ttft_and_gaps_match_the_server(timed_emulator, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, timed_emulator.url)
    errors: list[float] = []
    gaps: list[float] = []
    try:
        transport.call(spec("warm up", model=MODEL, max_output_tokens=24, stream=True), CallTimer())
        for i in range(CALLS):
            timer = CallTimer()
            # 72 tokens = 3 chunks: first at 200 ms, then two gaps of 100 ms.
            result = transport.call(
                spec(f"timing {i}", model=MODEL, max_output_tokens=72, stream=True), timer
            )
            assert result.output_tokens == 72 and len(timer.chunk_offsets_ms) == 3
            assert timer.first_text_ms is not None
            errors.append(timer.first_text_ms - FIRST_CHUNK_MS)
            gaps.extend(timer.gaps_ms)
    finally:
        transport.close()
    assert min(errors) > -2.0, f"a chunk cannot be seen before the server sent it: {errors}"
    assert statistics.median(errors) < 30.0, f"TTFT errors (ms): {errors}"
    # Chunks held back and delivered together would show gaps near 0 (and others near 200 ms).
    assert abs(statistics.median(gaps) - GAP_MS) < 30.0 and min(gaps) > GAP_MS / 2, f"chunk gaps (ms): {gaps}"
