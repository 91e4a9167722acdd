"""The fault matrix: every fault the emulator injects (and a 429 quota) x every transport x retries 0
and 3, driven through GeminiUser.execute as a user makes its calls.

Each call gets the fault's kind and HTTP status, as many attempts as the policy allows (a kind that is
not retried takes one), one attempt kind per attempt, and the chunk timing of a stream cut short;
and the attempts of a cell add up to the generateContent requests the emulator counted for it.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

import pytest
from locust.env import Environment
from transport_helpers import API_KEY, TRANSPORT_NAMES

from core import outcome
from core.outcome import ATTEMPT_KINDS_SEPARATOR, ERROR_KINDS
from users.call import CallSpec, CallTimer
from users.errors import CallError
from users.pricing import PriceTable
from users.retry import RetryPolicy
from users.settings import GeminiSettings
from users.state import use_settings

MODEL = "gemini-3.5-flash-lite"  # thinks at MINIMAL (none): a stream's first chunk carries answer text
QUOTA_MODEL = "gemini-2.5-flash-lite"  # rpm 1: once one call went through, every call is a 429
TIMEOUT_S = 0.4  # the transports' per-read timeout
# Emulated time x10: the quota window is 10 minutes of real time, so the 429s last the whole module;
# a stall or a slow first byte of 0.3 emulated s is 3 real s, far beyond TIMEOUT_S.
TIME_SCALE = 10.0
EMULATOR_CONFIG = {
    "accepted_keys": [API_KEY],
    "quotas": {QUOTA_MODEL: {"rpm": 1}},
    # Answers of several chunks, so a stream cut "mid-way" has sent some before the cut.
    "model_defaults": {"output_tokens_min": 100},
}
SLOW_PARAMS = {"stall_seconds": 0.3, "slow_first_byte_seconds": 0.3}
RATE_LIMIT = "quota_429"  # not an injected fault: the QUOTA_MODEL's rpm


@dataclass(frozen=True, slots=True)
class Cell:
    fault: str
    streams: tuple[bool, ...]  # one call per entry: unary (False) or streamed (True)
    kind: str  # "" = answered
    status: int | None
    retried: bool  # a retryable kind: every attempt the policy allows is made
    cut_mid_stream: bool = False  # a streamed call fails after chunks arrived


CELLS = (
    Cell("none", (False, True), "", 200, retried=False),
    Cell("server_500", (False, True), outcome.SERVER_ERROR, 500, retried=True),
    Cell("server_503", (False, True), outcome.SERVER_ERROR, 503, retried=True),
    Cell("server_504", (False, True), outcome.SERVER_ERROR, 504, retried=True),  # a 5xx, not our timeout
    Cell("connection_reset", (False, True), outcome.CONNECTION, None, retried=True),
    Cell("malformed_json", (False, True), outcome.INVALID_RESPONSE, None, retried=False, cut_mid_stream=True),
    Cell("stream_cut", (True,), outcome.CONNECTION, None, retried=True, cut_mid_stream=True),
    Cell("stream_error_frame", (True,), outcome.SERVER_ERROR, 500, retried=True, cut_mid_stream=True),
    Cell("stream_stall", (True,), outcome.TIMEOUT, None, retried=True, cut_mid_stream=True),
    Cell("slow_first_byte", (False,), outcome.TIMEOUT, None, retried=True),
    Cell(RATE_LIMIT, (False, True), outcome.RATE_LIMITED, 429, retried=True),
)


@pytest.fixture(scope="module")
def emulator(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", EMULATOR_CONFIG, time_scale=TIME_SCALE)


def make_user(url: str, transport: str, retries: int):  # noqa: ANN201
    from users.base import GeminiUser

    class MatrixUser(GeminiUser):
        scenario = "fault-matrix"

    options = argparse.Namespace(
        model=MODEL, transport=transport, api_key=API_KEY, max_output_tokens=200, temperature=0.0,
        timeout=TIMEOUT_S, retries=retries,
    )  # fmt: skip
    env = Environment(user_classes=[MatrixUser], host=url, parsed_options=options)
    use_settings(env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
    user = MatrixUser(env)
    user.on_start()
    # Retries at once, whatever RetryInfo says (a 429's would be minutes here): the matrix is about
    # counting attempts, the waits are tested in test_user_retries.py.
    user.retry_policy = RetryPolicy(
        retries=retries, base_s=0.001, cap_s=0.001, honor_retry_info=False, rng=random.Random(1)
    )
    return user


def served(emulator) -> int:  # noqa: ANN001
    """generateContent and streamGenerateContent requests the emulator counted."""
    routes = emulator.stats()["requests_by_route"]
    return sum(n for route, n in routes.items() if "generatecontent" in route.lower())


def exhaust_quota(user) -> None:  # noqa: ANN001
    """Use up QUOTA_MODEL's one request a minute (if no earlier cell did): the next calls are 429s."""
    for _ in range(3):
        try:
            user.transport.call(CallSpec(scenario="prime", model=QUOTA_MODEL, parts=("hi",)), CallTimer())
        except CallError as err:
            assert err.kind == outcome.RATE_LIMITED, err.message
            return
    raise AssertionError(f"{QUOTA_MODEL} with rpm 1 never answered 429")


@pytest.mark.parametrize("retries", [0, 3])
@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
@pytest.mark.parametrize("cell", CELLS, ids=[cell.fault for cell in CELLS])
def test_every_fault_every_transport_every_attempt_counted(emulator, transport, retries, cell) -> None:  # noqa: ANN001
    faults = {} if cell.fault in ("none", RATE_LIMIT) else {cell.fault: 1.0}
    emulator.set_faults({"reset": True, **SLOW_PARAMS, **faults})
    user = make_user(emulator.url, transport, retries)
    model = QUOTA_MODEL if cell.fault == RATE_LIMIT else MODEL
    try:
        if cell.fault == RATE_LIMIT:
            exhaust_quota(user)
        before = served(emulator)
        outcomes = [
            user.execute(
                CallSpec(
                    scenario="fault-matrix",
                    model=model,
                    parts=(f"Tell me a long story about queues ({cell.fault}, {stream}).",),
                    stream=stream,
                    max_output_tokens=200,
                )
            )
            for stream in cell.streams
        ]
        after = served(emulator)
    finally:
        user.on_stop()
        emulator.set_faults({"reset": True})

    attempts = 1 + retries if cell.retried and cell.kind else 1
    for out, stream in zip(outcomes, cell.streams, strict=True):
        summary = f"{transport} retries={retries} stream={stream}: {out.error_kind!r} {out.error_message}"
        assert out.error_kind in ("", *ERROR_KINDS), summary  # every call has a kind (or none: answered)
        assert (out.error_kind, out.http_status) == (cell.kind, cell.status), summary
        assert out.attempts == attempts, summary
        expected_kinds = ATTEMPT_KINDS_SEPARATOR.join([cell.kind] * attempts) if cell.kind else ""
        assert out.attempt_kinds == expected_kinds, summary
        assert API_KEY not in out.error_message, summary
        if stream and (cell.cut_mid_stream or not cell.kind):
            # The chunks that arrived before the failure keep their timing (the last attempt's,
            # from the start of the logical call).
            assert out.chunk_count > 0 and out.ttft_ms is not None, summary
            assert out.last_chunk_ms is not None and out.ttft_ms <= out.last_chunk_ms <= out.e2e_ms, summary
        elif cell.kind:
            assert out.chunk_count == 0 and out.ttft_ms is None, summary
    assert sum(out.attempts for out in outcomes) == after - before, (
        "the client's attempts are the requests the emulator served"
    )
