"""GeminiUser.execute through the client policy: only attempts sent count, a shed call is kind shed,
a fallback call is the fallback model's, the time held is throttle_ms, and a call held at the stop
is cancelled with the attempts it really sent."""

from __future__ import annotations

import argparse

import gevent
import pytest
from gevent.event import Event
from locust.env import Environment

from tests.waiting import wait_until
from users.call import CallResult, CallSpec, CallTimer
from users.errors import CallCancelled, CallError
from users.policies.runtime import build_chain, check_policy_options, policy_state
from users.pricing import PriceTable
from users.retarget import spec_for_model
from users.settings import GeminiSettings
from users.state import use_settings

MODEL = "gemini-3.8-flash"
FALLBACK = "gemini-3.5-flash-lite"
SPEC = CallSpec(scenario="policy-test", model=MODEL, parts=("Is this fine?",), max_output_tokens=60)


class ScriptedTransport:
    """Answers from a script: a CallError to raise, an Event to wait for, or an answer."""

    name = "scripted"

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.sent: list[CallSpec] = []

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        self.sent.append(spec)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Event):
            step.wait()
        if isinstance(step, CallError):
            raise step
        return CallResult(text='{"verdict": "allow"}', http_status=200, prompt_tokens=12, output_tokens=5)

    def close(self) -> None:
        pass


def run_with(policy: str, retries: int = 0, **extra: str) -> Environment:
    options = argparse.Namespace(
        model=MODEL, transport="http", api_key="", max_output_tokens=60, temperature=0.0, timeout=10.0,
        retries=retries, client_policy=policy, **extra,
    )  # fmt: skip
    env = Environment(user_classes=[], host="http://127.0.0.1:9", parsed_options=options)
    use_settings(env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
    state = policy_state(env)
    state.settings = check_policy_options(options, model=MODEL)
    state.chain = build_chain(state.settings, MODEL, state.clock, state.sleep, _NoLog())
    return env


class _NoLog:
    def event(self, *args: object) -> None:
        pass


def user_of(env: Environment, transport: ScriptedTransport):  # noqa: ANN201
    from users.base import GeminiUser

    class PolicyUser(GeminiUser):
        scenario = "policy-test"

        def next_call(self) -> CallSpec:
            return SPEC

    user = PolicyUser(env)
    user.on_start()
    user.transport.close()
    user.transport = transport
    user.retry_policy.base_s = user.retry_policy.cap_s = 0.0
    return user


def overloaded() -> CallError:
    return CallError("server_error", "503 UNAVAILABLE", http_status=503)


BREAKER = {"breaker_min_calls": "1", "breaker_cooldown": "600"}


def test_a_retry_the_open_breaker_refuses_is_shed_with_only_the_attempt_sent() -> None:
    transport = ScriptedTransport(overloaded())
    user = user_of(run_with("breaker", retries=2, **BREAKER), transport)
    out = user.execute(SPEC)
    assert (out.error_kind, out.policy_action, out.policy) == ("shed", "shed", "breaker")
    assert out.attempts == 1 == len(transport.sent)  # attempts == requests the server saw
    assert out.attempt_kinds == "server_error"
    assert out.failed  # shed is a failure: the caller got no answer


def test_a_call_shed_before_any_attempt_has_no_attempts() -> None:
    env = run_with("breaker", **BREAKER)
    user_of(env, ScriptedTransport(overloaded())).execute(SPEC)  # opens it
    transport = ScriptedTransport()
    out = user_of(env, transport).execute(SPEC)
    assert (out.error_kind, out.attempts, out.attempt_kinds, transport.sent) == ("shed", 0, "", [])


def test_an_open_breaker_with_a_fallback_sends_the_call_to_that_model() -> None:
    env = run_with("breaker", breaker_fallback=FALLBACK, **BREAKER)
    user_of(env, ScriptedTransport(overloaded())).execute(SPEC)
    transport = ScriptedTransport()
    out = user_of(env, transport).execute(SPEC)
    assert out.ok and out.policy_action == "fallback" and out.model == FALLBACK
    assert [spec.model for spec in transport.sent] == [FALLBACK]
    assert out.cost_usd > 0  # priced as the fallback model's answer


def test_a_call_to_another_model_is_not_the_policys_to_govern() -> None:
    """The policy governs the run's model and its quota: an open breaker sheds the run model's calls,
    but a tier's escalation to another model (its own quota) is sent, and none of its errors count."""
    env = run_with("breaker", **BREAKER)
    user_of(env, ScriptedTransport(overloaded())).execute(SPEC)  # opens the breaker
    other = spec_for_model(env, SPEC, FALLBACK)
    transport = ScriptedTransport(overloaded())
    escalation = user_of(env, transport).execute(other)
    assert escalation.error_kind == "server_error" and escalation.policy == ""  # sent, not shed
    assert [spec.model for spec in transport.sent] == [FALLBACK]
    assert user_of(env, ScriptedTransport()).execute(SPEC).error_kind == "shed"  # still open for the run's


def test_a_call_held_by_aimd_waits_in_throttle_ms_and_one_held_at_the_stop_is_cancelled() -> None:
    env = run_with("aimd", aimd_start="1")
    release = Event()
    first_user = user_of(env, ScriptedTransport(release))
    first = gevent.spawn(first_user.execute, SPEC)
    gate = policy_state(env).chain.component("aimd").gate
    wait_until(lambda: gate.in_flight == 1, what="the first call in flight")

    held_transport = ScriptedTransport()
    held = gevent.spawn(user_of(env, held_transport).execute, SPEC)
    wait_until(lambda: gate.waiting == 1, what="the second call held")
    cancelled = gevent.spawn(user_of(env, ScriptedTransport()).execute, SPEC)
    wait_until(lambda: gate.waiting == 2, what="the third call held")
    cancelled.kill(block=True)  # the run's stop, while the policy holds it
    assert isinstance(cancelled.value, CallCancelled)  # a GreenletExit: gevent keeps it as the value
    assert gate.waiting == 1  # it left the line; the second call is still first in it
    release.set()
    out = held.get(timeout=30)
    assert out.ok and out.attempts == 1 and out.throttle_ms > 0 and out.e2e_ms >= out.throttle_ms
    assert first.get(timeout=30).throttle_ms < out.throttle_ms
    assert gate.waiting == 0 and gate.in_flight == 0


def test_the_cancelled_outcome_of_a_held_call_says_so() -> None:
    env = run_with("aimd", aimd_start="1")
    release = Event()
    busy = gevent.spawn(user_of(env, ScriptedTransport(release)).execute, SPEC)
    gate = policy_state(env).chain.component("aimd").gate
    wait_until(lambda: gate.in_flight == 1, what="a call in flight")
    caught: list[CallCancelled] = []

    def held_call() -> None:
        try:
            user_of(env, ScriptedTransport()).execute(SPEC)
        except CallCancelled as stop:
            caught.append(stop)
            raise

    held = gevent.spawn(held_call)
    wait_until(lambda: gate.waiting == 1, what="the call held")
    held.kill(block=True)
    [stop] = caught
    assert stop.outcome.error_kind == "cancelled" and stop.outcome.attempts == 0
    assert "while the client policy held it" in stop.outcome.error_message
    assert stop.outcome.attempt_kinds == "" and stop.outcome.throttle_ms > 0
    release.set()
    busy.get(timeout=30)


@pytest.mark.parametrize("policy", ["retry", ""])
def test_retry_alone_builds_no_chain(policy: str) -> None:
    env = run_with(policy or "retry")
    assert policy_state(env).chain is None
    out = user_of(env, ScriptedTransport()).execute(SPEC)
    assert out.ok and out.policy == "" and out.throttle_ms == 0
