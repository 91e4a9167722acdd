"""RetryPolicy: which errors are retried, how long it waits, what it reports; and against a real 429."""

from __future__ import annotations

import random
import time

import pytest
from transport_helpers import TRANSPORT_NAMES, make_transport, spec

from core import outcome
from users.call import CallResult, CallTimer
from users.errors import CallError
from users.retry import RetryPolicy


class Script:
    """An attempt that raises the scripted errors in order, then returns "ok"."""

    def __init__(self, *errors: CallError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def test_success_first_time_costs_nothing() -> None:
    slept: list[float] = []
    assert _policy(retries=3).run(Script(), sleep=slept.append) == ("ok", 1, 0.0)
    assert slept == []


@pytest.mark.parametrize(
    "kind", [outcome.RATE_LIMITED, outcome.SERVER_ERROR, outcome.TIMEOUT, outcome.CONNECTION]
)
def test_retryable_kinds_are_retried(kind: str) -> None:
    slept: list[float] = []
    attempt = Script(CallError(kind, "x"), CallError(kind, "y"))
    result, attempts, backoff_ms = _policy(retries=2, base_s=0.5, cap_s=8).run(attempt, sleep=slept.append)
    assert (result, attempts, attempt.calls) == ("ok", 3, 3)
    assert len(slept) == 2 and backoff_ms == pytest.approx(sum(slept) * 1000)
    # Full jitter: retry n waits uniform(0, min(cap, base * 2**(n-1))).
    assert 0 <= slept[0] <= 0.5 and 0 <= slept[1] <= 1.0


@pytest.mark.parametrize("kind", [outcome.CLIENT_ERROR, outcome.BLOCKED, outcome.INVALID_RESPONSE])
def test_other_kinds_are_not_retried(kind: str) -> None:
    slept: list[float] = []
    attempt = Script(CallError(kind, "no"))
    with pytest.raises(CallError) as caught:
        _policy(retries=5).run(attempt, sleep=slept.append)
    assert (attempt.calls, caught.value.attempts, caught.value.backoff_ms, slept) == (1, 1, 0.0, [])


def test_gives_up_after_retries_with_attempts_and_backoff_attached() -> None:
    slept: list[float] = []
    attempt = Script(*[CallError(outcome.SERVER_ERROR, str(i)) for i in range(10)])
    with pytest.raises(CallError) as caught:
        _policy(retries=3, base_s=1.0, cap_s=2.0).run(attempt, sleep=slept.append)
    assert attempt.calls == 4 and caught.value.attempts == 4 and caught.value.message == "3"
    assert caught.value.backoff_ms == pytest.approx(sum(slept) * 1000)
    assert all(s <= 2.0 for s in slept), "capped"


def test_jitter_spreads_and_reaches_the_cap() -> None:
    policy = _policy(retries=20, base_s=0.1, cap_s=1.0)
    delays = [policy.delay_s(10, CallError(outcome.SERVER_ERROR, "")) for _ in range(500)]
    assert max(delays) <= 1.0 and max(delays) > 0.9 and min(delays) < 0.1


def test_retry_info_is_honoured_and_bounded() -> None:
    slept: list[float] = []
    attempt = Script(CallError(outcome.RATE_LIMITED, "quota", http_status=429, retry_after_s=7.0))
    _, attempts, backoff_ms = _policy(retries=1, cap_s=1.0).run(attempt, sleep=slept.append)
    assert attempts == 2 and 7.0 <= slept[0] <= 7.7, "RetryInfo wins over the cap, stretched by <= 10 %"
    assert backoff_ms == pytest.approx(slept[0] * 1000)
    slept.clear()
    _policy(retries=1, honor_retry_info=False, base_s=0.5).run(
        Script(CallError(outcome.RATE_LIMITED, "quota", retry_after_s=7.0)), sleep=slept.append
    )
    assert slept[0] <= 0.5, "with RetryInfo ignored, plain backoff applies"
    with pytest.raises(CallError) as caught:
        _policy(retries=3, max_retry_after_s=60).run(
            Script(CallError(outcome.RATE_LIMITED, "daily quota", retry_after_s=3600.0)), sleep=slept.append
        )
    assert caught.value.attempts == 1, "a server asking for an hour is not waited for"


def test_bad_policy_values() -> None:
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)


MODEL_OF = {"genai": "gemini-3.8-flash", "legacy": "gemini-2.5-flash-lite", "http": "gemini-3.5-flash-lite"}


@pytest.fixture(scope="module")
def quota_emulator(start_emulator):  # noqa: ANN001, ANN201
    # rpm 1 in a window of 60 emulated s = 0.9 real s at time scale 0.015: long enough that two calls
    # on a busy machine still land in one window, short enough that waiting it out is quick, and under
    # 1 s, so RetryInfo keeps its milliseconds instead of rounding up to whole seconds.
    return start_emulator("fast", {"quota_tier": "tier1", "quotas": {"*": {"rpm": 1}}}, time_scale=0.015)


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_real_429_retry_waits_what_retry_info_says(quota_emulator, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, quota_emulator.url)
    # A model of its own per transport: quotas count per key per model.
    model = MODEL_OF[transport_name]
    said: list[float | None] = []  # the retryDelay of each 429 the policy saw

    def attempt() -> CallResult:
        try:
            return transport.call(spec("over quota", model=model), CallTimer())
        except CallError as err:
            said.append(err.retry_after_s)
            raise

    try:
        transport.call(spec("fills the window", model=model), CallTimer())
        with pytest.raises(CallError) as first_429:
            transport.call(spec("over quota", model=model), CallTimer())
        retry_after = first_429.value.retry_after_s
        # Real seconds (not the 60 emulated ones) until the first call leaves the window.
        assert retry_after is not None and 0 < retry_after <= 0.9
        started = time.perf_counter()
        result, attempts, backoff_ms = _policy(retries=3).run(attempt)
        waited = time.perf_counter() - started
    finally:
        transport.close()
    assert isinstance(result, CallResult) and result.finish_reason == "STOP"
    assert attempts == 2 and len(said) == 1, "one 429, one wait of retryDelay, then success"
    assert said[0] is not None and said[0] <= retry_after
    # It waited what the 429 said, stretched by at most the policy's 10 % jitter.
    assert said[0] * 1000 <= backoff_ms <= said[0] * 1000 * 1.1
    assert waited >= backoff_ms / 1000
