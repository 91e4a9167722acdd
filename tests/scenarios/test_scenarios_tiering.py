"""Model tiering (users/tiering.py): which answers are escalated, one Outcome for both calls, the
options' one-line errors, and the moderation user tiering against the real emulator and SDK."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gevent import GreenletExit
from locust.env import Environment
from scenario_helpers import make_options

from core import outcome as kinds
from core.options import OptionError
from core.outcome import Outcome
from tests.e2e.locust_child import quick_emulator_config, read_rows, run_locust
from users.call import CallSpec
from users.errors import CallCancelled
from users.moderation import TextModerationUser, build_moderation_specs
from users.pricing import PriceTable, PricingError
from users.retarget import spec_for_model
from users.scenario_options import ScenarioSettings, specs_for
from users.state import settings_of
from users.tiering import needs_escalation, require_escalation_price, tiered_answer, tiering_of
from users.vision import VisionUser

CHEAP, STRONG = "gemini-3.5-flash-lite", "gemini-3.8-flash"


def moderation_specs(env: Environment) -> list[CallSpec]:
    return specs_for(env, TextModerationUser.scenario, build_moderation_specs, settings_of(env))


class ScriptedUser:
    """What tiered_answer needs of a user: its environment and `execute`, here answering from a
    script (an Outcome, or an exception to raise) and keeping every spec it was sent."""

    def __init__(self, environment: Environment, *script: Outcome | BaseException) -> None:
        self.environment = environment
        self.script = list(script)
        self.sent: list[CallSpec] = []

    def execute(self, spec: CallSpec) -> Outcome:
        self.sent.append(spec)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return dataclasses.replace(step, model=spec.model)


def answer(**fields: Any) -> Outcome:
    base = {"scenario": "moderation", "model": "", "transport": "t", "start_time": 100.0, "e2e_ms": 200.0}
    return Outcome(**{**base, **fields})


@pytest.fixture
def tiered_env(make_env: Callable[..., Environment]) -> Environment:
    return make_env([TextModerationUser], model=CHEAP, escalate_to=STRONG, escalate_below="0.8")


@pytest.fixture
def spec(tiered_env: Environment) -> CallSpec:
    return moderation_specs(tiered_env)[0]


def test_a_sure_answer_stands_and_records_itself_as_the_first_tier(tiered_env, spec) -> None:
    user = ScriptedUser(tiered_env, answer(verdict="benign", confidence=0.93, cost_usd=0.001))
    out = tiered_answer(user, spec)
    assert [s.model for s in user.sent] == [CHEAP]
    assert (out.tier, out.model, out.verdict, out.confidence) == ("first", CHEAP, "benign", 0.93)
    assert (out.first_model, out.first_verdict, out.first_confidence) == (CHEAP, "benign", 0.93)
    assert (out.first_e2e_ms, out.first_cost_usd) == (200.0, 0.001)


def test_an_unsure_answer_is_escalated_into_one_outcome_of_both_calls(tiered_env, spec) -> None:
    first = answer(
        verdict="benign", confidence=0.55, e2e_ms=200.0, cost_usd=0.001, prompt_tokens=100, output_tokens=20,
        attempts=2, attempt_kinds="rate_limited", request_bytes=500, response_bytes=300, ttft_ms=190.0,
    )  # fmt: skip
    second = answer(
        start_time=100.3, verdict="violating", confidence=0.97, e2e_ms=800.0, cost_usd=0.004,
        prompt_tokens=100, output_tokens=25, thoughts_tokens=40, request_bytes=500, response_bytes=350,
        ttft_ms=700.0,
    )  # fmt: skip
    user = ScriptedUser(tiered_env, first, second)
    out = tiered_answer(user, spec)
    assert [s.model for s in user.sent] == [CHEAP, STRONG]
    assert user.sent[1] is spec_for_model(tiered_env, spec, STRONG)  # prepared once, not per call
    assert (out.tier, out.model, out.verdict, out.confidence) == ("escalated", STRONG, "violating", 0.97)
    assert (out.first_model, out.first_verdict, out.first_confidence) == (CHEAP, "benign", 0.55)
    assert (out.first_e2e_ms, out.first_cost_usd) == (200.0, 0.001)
    assert out.start_time == 100.0 and out.e2e_ms == 1000.0 and out.ttft_ms == 900.0
    assert out.cost_usd == pytest.approx(0.005)
    assert (out.prompt_tokens, out.output_tokens, out.thoughts_tokens) == (200, 45, 40)
    assert (out.attempts, out.attempt_kinds) == (3, "rate_limited")
    assert (out.request_bytes, out.response_bytes) == (1000, 650)


def test_an_invalid_answer_is_escalated_and_a_failure_or_block_is_not() -> None:
    assert needs_escalation(answer(error_kind=kinds.INVALID_RESPONSE), 0.8)
    assert needs_escalation(answer(confidence=0.79), 0.8) and needs_escalation(answer(confidence=None), 0.8)
    assert not needs_escalation(answer(confidence=0.8), 0.8)
    for kind in (kinds.RATE_LIMITED, kinds.SERVER_ERROR, kinds.TIMEOUT, kinds.BLOCKED):
        assert not needs_escalation(answer(error_kind=kind, confidence=0.1), 0.8), kind


def test_a_first_call_that_failed_is_the_outcome(tiered_env, spec) -> None:
    user = ScriptedUser(tiered_env, answer(error_kind=kinds.RATE_LIMITED, http_status=429))
    out = tiered_answer(user, spec)
    assert len(user.sent) == 1 and (out.error_kind, out.tier, out.first_model) == (
        "rate_limited",
        "first",
        CHEAP,
    )


def test_a_stop_during_the_escalation_is_one_cancelled_call_with_every_attempt(tiered_env, spec) -> None:
    cut = answer(error_kind=kinds.CANCELLED, attempts=1, attempt_kinds="cancelled", e2e_ms=50.0)
    first = answer(error_kind=kinds.INVALID_RESPONSE, attempt_kinds="invalid_response")
    user = ScriptedUser(tiered_env, first, CallCancelled(dataclasses.replace(cut, model=STRONG)))
    with pytest.raises(CallCancelled) as stopped:
        tiered_answer(user, spec)
    assert isinstance(stopped.value, GreenletExit)  # still the kill Locust sent
    out = stopped.value.outcome
    assert (out.error_kind, out.tier, out.model, out.attempts) == ("cancelled", "escalated", STRONG, 2)
    assert out.attempt_kinds == "invalid_response;cancelled" and out.e2e_ms == 250.0


def test_a_stop_during_the_first_call_is_marked_first(tiered_env, spec) -> None:
    user = ScriptedUser(tiered_env, CallCancelled(answer(model=CHEAP, error_kind=kinds.CANCELLED)))
    with pytest.raises(CallCancelled) as stopped:
        tiered_answer(user, spec)
    assert (stopped.value.outcome.tier, stopped.value.outcome.first_model) == ("first", CHEAP)


def test_without_escalate_to_the_call_is_sent_once_untiered(make_env, spec) -> None:
    env = make_env([TextModerationUser])
    user = ScriptedUser(env, answer(confidence=0.1))
    out = tiered_answer(user, spec)
    assert len(user.sent) == 1 and out.tier == "" and out.first_model == ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"escalate_to": "gemini-9-ultra"},
            "--escalate-to 'gemini-9-ultra' is not a model the catalogue knows",
        ),
        ({"escalate_to": "gemini-3-pro-preview"}, "--escalate-to gemini-3-pro-preview was shut down"),
        ({"escalate_to": STRONG, "escalate_below": "high"}, "--escalate-below 'high' is not a number"),
        ({"escalate_to": STRONG, "escalate_below": "1.5"}, "--escalate-below 1.5 is out of range"),
        ({"escalate_to": STRONG, "escalate_below": "nan"}, "--escalate-below nan is out of range"),
    ],
)
def test_bad_tiering_options_are_one_line_errors(values: dict, message: str) -> None:
    with pytest.raises(OptionError) as raised:
        tiering_of(ScenarioSettings.from_options(make_options(**values)))
    assert message in str(raised.value) and "\n" not in str(raised.value)
    for user_class in (TextModerationUser, VisionUser):  # the master's check of either scenario
        with pytest.raises(OptionError):
            user_class.check_inputs(ScenarioSettings.from_options(make_options(**values)))


def test_escalating_to_the_model_itself_is_refused_when_calls_are_built(make_env) -> None:
    env = make_env([TextModerationUser], model=STRONG, escalate_to=STRONG)
    with pytest.raises(OptionError, match="--escalate-to gemini-3.8-flash is --model itself"):
        moderation_specs(env)


def test_a_paid_host_needs_a_price_for_the_escalation_model(tmp_path) -> None:
    pricing = tmp_path / "prices.json"
    pricing.write_text('{"models": {"gemini-3.5-flash-lite": {"input": 0.1, "output": 0.4}}}')
    options = make_options(escalate_to=STRONG)
    with pytest.raises(PricingError, match=f"--escalate-to: no price known for model '{STRONG}'"):
        require_escalation_price(options, PriceTable.load(pricing))
    require_escalation_price(options, PriceTable.load())  # the catalogue prices it
    require_escalation_price(make_options(), PriceTable.load(pricing))  # no tiering, nothing to price


def test_moderation_escalates_an_invalid_answer_to_the_stronger_model(tiered_env) -> None:
    user = TextModerationUser(tiered_env)
    user.on_start()
    try:
        benign = next(s for s in user.specs() if s.expected == "benign")
        plain = dataclasses.replace(benign, response_mime_type=None, response_schema=None)  # not JSON
        out = user.answer(plain)
        # Both calls went out through the real SDK: the second to the stronger model, no JSON either.
        assert (out.tier, out.model, out.first_model, out.attempts) == ("escalated", STRONG, CHEAP, 2)
        assert out.error_kind == kinds.INVALID_RESPONSE and out.first_cost_usd > 0
        assert out.cost_usd > out.first_cost_usd and out.e2e_ms > out.first_e2e_ms
        assert out.attempt_kinds == "invalid_response;invalid_response"
        sure = user.answer(benign)
        assert sure.ok and sure.confidence is not None and sure.tier in ("first", "escalated")
    finally:
        user.on_stop()


def test_the_emulators_modelled_accuracy_makes_the_strong_tier_right_where_the_cheap_one_is_unsure(
    tiered_env,
) -> None:
    """Needs the emulator's modelled confidence (issue 17): a weaker model's wrong verdicts carry a
    low confidence, and the stronger model gets most of those posts right."""
    user = TextModerationUser(tiered_env)
    user.on_start()
    try:
        answered = [
            user.answer(s) for s in user.specs()[:120] if ":low]]" in s.parts[0] or s.expected == "benign"
        ]
        escalated = [o for o in answered if o.tier == "escalated" and o.ok]
        assert escalated, "no answer of the cheap model was unsure"
        first_right = sum(o.first_verdict == o.expected for o in escalated)
        final_right = sum(o.verdict == o.expected for o in escalated)
        assert final_right > first_right
        assert all(o.first_confidence is not None and o.first_confidence < 0.8 for o in escalated)
    finally:
        user.on_stop()


def test_a_headless_tiered_run_logs_both_tiers_and_reports_the_escalation_rate(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, clean_env,
        "-u", "3", "-r", "3", "-t", "8s", "--results-dir", str(out), "--mix", "moderation=1",
        "--model", CHEAP, "--escalate-to", STRONG, "--emulator-config", quick_emulator_config(tmp_path),
        timeout=120,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    rows = [row for path in out.glob("requests-*.csv") for row in read_rows(path)]
    assert {row["tier"] for row in rows} == {"first", "escalated"}, log[-2000:]
    escalated = [row for row in rows if row["tier"] == "escalated"]
    assert {row["model"] for row in escalated} == {STRONG} and {row["first_model"] for row in rows} == {CHEAP}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="tiering">' in html and "Escalation rate" in html
    assert "Model tiering: moderation escalated" in html
