"""Retries as GeminiUser runs them: attempts and backoff land on the Outcome, RetryInfo is honoured,
and chunk times count from the start of the logical call."""

from __future__ import annotations

import argparse
import time

import pytest
from locust.env import Environment
from transport_helpers import API_KEY, TRANSPORT_NAMES

from users.call import CallSpec
from users.errors import CallError
from users.pricing import PriceTable
from users.settings import GeminiSettings
from users.state import use_settings

SPEC = CallSpec(
    scenario="retry-test",
    model="gemini-3.5-flash-lite",
    parts=("Tell me about queues.",),
    max_output_tokens=60,
)


def make_user(url: str, transport: str, retries: int):
    from users.base import GeminiUser

    class ProbeUser(GeminiUser):
        scenario = "retry-test"

        def next_call(self) -> CallSpec:
            return SPEC

    options = argparse.Namespace(
        model="gemini-3.5-flash-lite", transport=transport, api_key=API_KEY, max_output_tokens=60,
        temperature=0.0, timeout=10.0, retries=retries,
    )  # fmt: skip
    env = Environment(user_classes=[ProbeUser], host=url, parsed_options=options)
    use_settings(env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
    user = ProbeUser(env)
    user.on_start()
    return user


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_every_attempt_is_counted_and_backed_off(start_emulator, transport: str) -> None:
    emu = start_emulator("fast")
    emu.set_faults({"reset": True, "server_503": 1.0})
    user = make_user(emu.url, transport, retries=2)
    user.retry_policy.base_s = 0.05  # keep the test short; the policy's maths is tested apart
    try:
        out = user.execute(SPEC)
    finally:
        user.on_stop()
    assert out.error_kind == "server_error" and out.http_status == 503
    assert out.attempts == 3
    assert 0 < out.backoff_ms <= (0.05 + 0.1) * 1000
    assert out.e2e_ms >= out.backoff_ms
    assert API_KEY not in out.error_message


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_retry_info_delay_is_honoured_then_the_call_succeeds(start_emulator, transport: str) -> None:
    # 2 requests per minute, a time scale of 0.015: the window is 0.9 s of real time, and the 429's
    # retryDelay is what is left of it when the third call comes.
    emu = start_emulator(
        "fast", {"quotas": {"gemini-3.5-flash-lite": {"rpm": 2, "tpm": 10_000_000}}}, time_scale=0.015
    )
    user = make_user(emu.url, transport, retries=3)
    # Plain backoff alone would retry three times within 3 ms, long before the window moves on:
    # only by waiting what RetryInfo says can the call succeed.
    user.retry_policy.base_s = user.retry_policy.cap_s = 0.001
    try:
        first = [user.execute(SPEC) for _ in range(2)]
        assert all(o.ok for o in first), [o.error_message for o in first]
        started = time.perf_counter()
        out = user.execute(SPEC)
        waited = time.perf_counter() - started
    finally:
        user.on_stop()
    assert out.ok, out.error_message
    assert out.attempts >= 2 and out.backoff_ms > 0
    assert waited * 1000 >= out.backoff_ms
    assert emu.stats()["limits_hit"]["quota_requests"] == out.attempts - 1


class FailFirstAttempt:
    """Wraps a real transport: the first attempt fails fast with a 500, later ones go through."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def call(self, spec, timer):
        self.calls += 1
        if self.calls == 1:
            raise CallError("server_error", "injected 500", http_status=500)
        return self.inner.call(spec, timer)

    def close(self) -> None:
        self.inner.close()


def test_stream_ttft_counts_from_the_start_of_the_logical_call(start_emulator) -> None:
    emu = start_emulator("fast")
    user = make_user(emu.url, "http", retries=1)
    user.retry_policy.base_s = 0.2
    user.transport = FailFirstAttempt(user.transport)
    stream = CallSpec(scenario="retry-test", model="gemini-3.5-flash-lite", parts=("Hello",), stream=True)
    try:
        out = user.execute(stream)
    finally:
        user.on_stop()
    assert out.ok and out.attempts == 2, out.error_message
    assert out.ttft_ms is not None and out.ttft_ms >= out.backoff_ms > 0
    assert out.last_chunk_ms is not None and out.e2e_ms >= out.last_chunk_ms >= out.ttft_ms


def test_a_user_spawned_after_the_process_began_to_quit_makes_no_call(start_emulator) -> None:
    from locust.exception import StopUser

    from users.state import users_state

    emu = start_emulator("fast")
    user = make_user(emu.url, "http", retries=0)
    calls: list[object] = []
    user.environment.events.request.add_listener(lambda **kw: calls.append(kw))
    try:
        user.one_call()
        assert len(calls) == 1  # the user works: the next refusal is the flag's doing
        users_state(user.environment).quitting = True
        with pytest.raises(StopUser):
            user.one_call()
    finally:
        user.on_stop()
    assert len(calls) == 1
