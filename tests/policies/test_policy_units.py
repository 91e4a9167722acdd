"""Each client policy on its own, with an injected clock: AIMD grows and halves and honours RetryInfo,
its gate wakes waiters first come first served, the breaker trips, sheds, half-opens and closes,
the limiter paces to its rate, and the options fail with one line naming the flag."""

from __future__ import annotations

import argparse

import gevent
import pytest

from core.options import OptionError
from tests.waiting import wait_until
from users.policies import policy_names
from users.policies.aimd import AimdController, AimdPolicy
from users.policies.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from users.policies.chain import Attempt, Settlement, Shed
from users.policies.gate import ConcurrencyGate
from users.policies.limiter import Limiter
from users.policies.options import AimdSettings, BreakerSettings, LimiterSettings, PolicySettings

ANSWER = Settlement(sent=True)
TOO_MANY = Settlement(sent=True, kind="rate_limited", http_status=429)
OVERLOADED = Settlement(sent=True, kind="server_error", http_status=503)


class FakeClock:
    """Time that moves only when a wait sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        gevent.sleep(0)  # why: a yield, not a wait: other greenlets run while fake time moves


class Events:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, str]] = []

    def event(self, component: str, event: str, value: float, detail: str = "") -> None:
        self.rows.append((component, event, value, detail))


def aimd_settings(start: float = 4, minimum: float = 1, maximum: float = 64) -> AimdSettings:
    return AimdSettings(start, minimum, maximum, 0.5)


def test_aimd_grows_by_one_per_round_and_halves_once_per_cooldown() -> None:
    aimd = AimdController(aimd_settings(start=4))
    assert [aimd.answered() for _ in range(4)] == [False, False, False, True] and aimd.limit == 5
    for _ in range(5):
        aimd.answered()
    assert aimd.limit == 6
    assert aimd.congested(now=10.0) and aimd.limit == 3
    # a burst of errors from the same round is one signal, not a collapse to the minimum
    assert not aimd.congested(now=10.5) and aimd.limit == 3
    assert aimd.congested(now=11.1) and aimd.limit == 1.5
    assert aimd.congested(now=12.2) and aimd.limit == 1.0  # the floor
    assert not aimd.congested(now=13.3)


def test_aimd_stays_within_its_bounds_when_rescaled() -> None:
    aimd = AimdController(aimd_settings(start=4, maximum=5), minimum=1, maximum=5)
    aimd.answered(100)
    assert aimd.limit == 5
    assert aimd.bound(6, 8) and aimd.limit == 6  # more workers: each share stays at least the minimum


def test_aimd_policy_halves_on_a_503_and_holds_new_attempts_until_the_retry_info() -> None:
    clock, log = FakeClock(), Events()
    policy = AimdPolicy(aimd_settings(start=4), clock, clock.sleep, log)
    attempt = Attempt("s", "m")
    policy.admit(attempt)
    policy.settle(attempt, OVERLOADED)
    assert policy.limit == 2 and policy.gate.capacity == 2
    clock.now += 2
    policy.admit(attempt)
    policy.settle(attempt, Settlement(sent=True, kind="rate_limited", http_status=429, retry_after_s=7.0))
    assert policy.limit == 1
    before = clock.now
    policy.admit(attempt)  # held until the server's time
    assert clock.now == pytest.approx(before + 7.0)
    assert [row[2] for row in log.rows if row[1] == "limit"] == [4, 2, 1]


def test_gate_wakes_waiters_first_come_first_served_on_release_and_growth() -> None:
    clock = FakeClock()
    gate = ConcurrencyGate(1, clock, clock.sleep)
    gate.acquire()
    entered: list[int] = []

    def enter(number: int) -> None:
        gate.acquire()
        entered.append(number)

    waiters = [gevent.spawn(enter, n) for n in range(5)]
    wait_until(lambda: gate.waiting == 5, what="five in line")
    assert entered == []
    gate.release()
    wait_until(lambda: entered, what="the first in line to enter")
    assert entered == [0] and gate.waiting == 4
    gate.set_capacity(3)  # room for two more: the next two in line, in order
    wait_until(lambda: len(entered) == 3, what="two more to enter")
    assert entered == [0, 1, 2] and gate.waiting == 2
    waiters[4].kill()  # a waiter killed (the run's stop) leaves the line
    gate.release()
    gevent.joinall(waiters[:4], timeout=30)
    assert entered == [0, 1, 2, 3] and gate.waiting == 0


def test_gate_hold_keeps_every_attempt_out_until_it_ends() -> None:
    clock = FakeClock()
    gate = ConcurrencyGate(4, clock, clock.sleep)
    gate.hold(clock.now + 3.0)
    start = clock.now
    gate.acquire()
    assert clock.now == pytest.approx(start + 3.0) and gate.in_flight == 1


def breaker(clock: FakeClock, log: Events, fallback: str = "fail") -> CircuitBreaker:
    return CircuitBreaker(BreakerSettings(10.0, 0.5, 4, 5.0, fallback), clock, log)


def test_breaker_trips_sheds_half_opens_and_closes_on_a_probe_answer() -> None:
    clock, log = FakeClock(), Events()
    cb = breaker(clock, log)
    for result in (ANSWER, TOO_MANY, ANSWER):
        cb.admit(attempt := Attempt("s", "m"))
        cb.settle(attempt, result)
    assert cb.state == CLOSED  # 3 attempts: under --breaker-min-calls
    cb.admit(attempt := Attempt("s", "m"))
    cb.settle(attempt, OVERLOADED)
    assert cb.state == OPEN  # 2 of 4 failed: the threshold
    with pytest.raises(Shed):
        cb.admit(Attempt("s", "m"))
    clock.now += 5.0
    cb.admit(probe := Attempt("s", "m"))
    assert cb.state == HALF_OPEN and probe.probe
    with pytest.raises(Shed):
        cb.admit(Attempt("s", "m"))  # one probe at a time
    cb.settle(probe, ANSWER)
    assert cb.state == CLOSED
    assert [row[3] for row in log.rows] == [OPEN, HALF_OPEN, CLOSED]


def test_breaker_reopens_on_a_failed_probe_and_old_errors_leave_the_window() -> None:
    clock, log = FakeClock(), Events()
    cb = breaker(clock, log)
    for _ in range(4):
        cb.admit(attempt := Attempt("s", "m"))
        cb.settle(attempt, TOO_MANY)
    assert cb.state == OPEN
    clock.now += 5.0
    cb.admit(probe := Attempt("s", "m"))
    cb.settle(probe, Settlement(sent=True, kind="timeout"))
    assert cb.state == OPEN
    clock.now += 60.0
    assert cb.error_rate() == 0.0  # the window slid past them


def test_breaker_with_a_fallback_model_redirects_instead_of_shedding() -> None:
    clock, log = FakeClock(), Events()
    cb = breaker(clock, log, fallback="gemini-3.5-flash-lite")
    for _ in range(4):
        cb.admit(attempt := Attempt("s", "m"))
        cb.settle(attempt, OVERLOADED)
    cb.admit(redirected := Attempt("s", "m"))
    assert redirected.fallback and redirected.model == "gemini-3.5-flash-lite"
    cb.settle(redirected, TOO_MANY)  # the fallback's errors say nothing about the run's model
    assert cb.error_rate() == 1.0 and len(cb._window) == 4


def test_limiter_paces_requests_to_the_rate_and_tokens_to_the_reported_prompt() -> None:
    clock, log = FakeClock(), Events()
    limiter = Limiter(LimiterSettings(rpm=60, tpm=6000, source="test"), clock, clock.sleep, log)
    start = clock.now
    for _ in range(5):
        limiter.admit(Attempt("s", "m", request_bytes=40))  # 10 tokens before any answer
    assert clock.now - start == pytest.approx(4.0)  # 1 a second after the first
    limiter.settle(Attempt("s", "m"), Settlement(sent=True, prompt_tokens=300))
    assert limiter.estimate(Attempt("s", "m", request_bytes=40)) == 300
    start = clock.now
    limiter.admit(Attempt("s", "m"))
    limiter.admit(Attempt("s", "m"))  # 300 tokens at 100/s: the second waits for the first's debt
    assert clock.now - start == pytest.approx(4.0)  # requests alone would take 2 s
    limiter.share(2)
    assert log.rows[-1][1:3] == ("rate", 30.0) and "tpm=3000" in log.rows[-1][3]


def options(**given: str) -> argparse.Namespace:
    return argparse.Namespace(**given)


def test_policy_names_join_with_plus_in_admission_order() -> None:
    settings = PolicySettings.from_options(
        options(client_policy="aimd+limiter+breaker+retry"), model="gemini-3.8-flash", known=policy_names()
    )
    assert settings.names == ("breaker", "limiter", "aimd") and settings.label == "breaker+limiter+aimd"
    assert settings.limiter is not None and (settings.limiter.rpm, settings.limiter.tpm) == (10, 250_000)
    public = settings.public()
    assert public["client_policy"] == "breaker+limiter+aimd" and public["aimd"]["start"] == 4
    retry = PolicySettings.from_options(options(), model="m", known=policy_names())
    assert retry.names == () and retry.label == "retry"


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"client_policy": "aimd+magic"}, "--client-policy"),
        ({"client_policy": "aimd", "aimd_start": "100"}, "--aimd-start"),
        ({"client_policy": "aimd", "aimd_decrease": "1.5"}, "--aimd-decrease"),
        ({"client_policy": "aimd", "aimd_max": "lots"}, "--aimd-max"),
        ({"client_policy": "breaker", "breaker_fallback": "gemini-nope"}, "--breaker-fallback"),
        ({"client_policy": "breaker", "breaker_threshold": "2"}, "--breaker-threshold"),
        ({"client_policy": "limiter", "quota_tier": "gold"}, "--quota-tier"),
    ],
)
def test_bad_policy_options_are_one_line_naming_the_option(given: dict[str, str], named: str) -> None:
    with pytest.raises(OptionError) as error:
        PolicySettings.from_options(options(**given), model="gemini-3.8-flash", known=policy_names())
    message = str(error.value)
    assert message.startswith(named) and "\n" not in message
    if named == "--client-policy":
        assert "retry, breaker, limiter, aimd" in message


def test_a_limiter_for_a_model_without_a_quota_asks_for_the_rates() -> None:
    with pytest.raises(OptionError, match="--limit-rpm"):
        PolicySettings.from_options(options(client_policy="limiter"), model="my-model", known=policy_names())
    given = options(client_policy="limiter", limit_rpm="30", limit_tpm="1000")
    assert PolicySettings.from_options(given, model="my-model", known=policy_names()).limiter.rpm == 30
