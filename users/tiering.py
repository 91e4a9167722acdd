"""Model tiering: a cheap model answers first, a stronger one only where the cheap one is unsure.

--escalate-to MODEL (empty: no tiering) and --escalate-below CONFIDENCE (default 0.8), declared by
the scenarios whose answers carry a confidence (moderation, vision). A tiered call sends the
prepared spec (--model, the first tier) and, when its answer's confidence is under the threshold or
the answer failed its schema (invalid_response), the same spec for the escalation model
(users.retarget.spec_for_model). Both calls are one logical answer, one Outcome: e2e, cost, tokens,
bytes and attempts are both calls' sums, verdict and confidence the final answer's, `model` the
model that gave it, `tier` "first" or "escalated", and the first_* fields the first call's.

What is not escalated, and why:
- a first call that failed outright (429, 5xx, timeout, connection, after its retries): the Outcome
  is that failure, tier "first". Escalating it would turn a capacity problem of the cheap model
  into a hidden load on the expensive one, which is a client policy's decision (a breaker's
  fallback), not a quality tier's;
- a blocked prompt: the block is the service's answer (core.verdicts), and a stronger model sits
  behind the same safety filters.
An escalation that fails is the Outcome's failure (tier "escalated", the unsure first verdict kept
in first_verdict): the app asked for a sure answer and did not get one. A stop during either call
records the call as cancelled, with every attempt both calls sent.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import gevent
from gevent import GreenletExit

from core import outcome as kinds
from core.catalogue import catalogue
from core.context import run_context
from core.options import OptionError, OptionSpec
from core.outcome import Outcome
from users import arrival
from users.call import CallSpec
from users.errors import CallCancelled
from users.pricing import PriceTable, PricingError
from users.retarget import spec_for_model
from users.scenario_options import ScenarioSettings, scenario_settings

logger = logging.getLogger(__name__)

ESCALATE_TO = OptionSpec(
    "--escalate-to",
    "",
    "moderation and vision: model tiering. --model answers first; a call whose answer is less sure than "
    "--escalate-below (or fails its schema) is sent again to this stronger model. Empty: no tiering",
)
DEFAULT_THRESHOLD = 0.8
ESCALATE_BELOW = OptionSpec(
    "--escalate-below",
    str(DEFAULT_THRESHOLD),
    "moderation and vision, with --escalate-to: the confidence (0 to 1) under which an answer is escalated",
)
TIERING_OPTIONS = (ESCALATE_TO, ESCALATE_BELOW)
FIRST, ESCALATED = "first", "escalated"


@dataclass(frozen=True, slots=True)
class Tiering:
    escalate_to: str
    below: float  # answers with a confidence under this are escalated


def tiering_of(scenario: ScenarioSettings) -> Tiering | None:
    """The run's tiering, checked; None without --escalate-to. OptionError (one line) for a model
    the catalogue does not know or that is retired, or a threshold outside 0..1."""
    model = scenario.option(ESCALATE_TO.flag).strip().removeprefix("models/")
    raw = scenario.option(ESCALATE_BELOW.flag).strip() or ESCALATE_BELOW.default
    try:
        below = float(raw)
    except ValueError:
        raise OptionError(
            f"--escalate-below {raw!r} is not a number: give a confidence from 0 to 1"
        ) from None
    if not 0.0 <= below <= 1.0:  # NaN fails this too
        raise OptionError(f"--escalate-below {raw} is out of range: give a confidence from 0 to 1")
    if not model:
        return None
    check_escalation_model(model)
    return Tiering(model, below)


def check_escalation_model(model: str, first_model: str | None = None) -> None:
    """The catalogue knows `model` and still serves it (a deprecated one warns); it is not the first
    tier itself. OptionError naming --escalate-to otherwise."""
    models = catalogue()
    entry = models.get(model)
    if entry is None:
        served = ", ".join(sorted(models.served_on(date.today())))
        raise OptionError(f"--escalate-to {model!r} is not a model the catalogue knows: use one of {served}")
    status = entry.status_on(date.today())
    successor = f": use {entry.successor}" if entry.successor else ""
    if status == "retired":
        raise OptionError(f"--escalate-to {model} was shut down and is no longer served{successor}")
    if status == "deprecated":
        logger.warning("--escalate-to %s is deprecated%s", model, successor)
    if first_model is not None and model == first_model.removeprefix("models/"):
        raise OptionError(
            f"--escalate-to {model} is --model itself: escalate to a stronger model, or leave it empty"
        )


def require_escalation_price(options: Any, prices: PriceTable) -> None:
    """For a host other than the bundled emulator, called beside --model's price check: the
    escalation model of these parsed options has a price in `prices`, else PricingError naming
    --escalate-to (the budget fails closed: its calls would cost money --max-cost never sees)."""
    tiers = tiering_of(ScenarioSettings.from_options(options))
    if tiers is None:
        return
    try:
        prices.require_price(tiers.escalate_to)
    except PricingError as exc:
        raise PricingError(f"--escalate-to: {exc}") from None


@dataclass
class _TieringSlot:
    """The run's tiering, parsed once per set of scenario settings (a web-UI rerun may change them)."""

    settings: ScenarioSettings | None = None
    tiers: Tiering | None = None


def run_tiering(environment: Any) -> Tiering | None:
    scenario = scenario_settings(environment)
    slot = run_context(environment).ensure(_TieringSlot)
    if slot.settings is not scenario:
        slot.tiers, slot.settings = tiering_of(scenario), scenario
    return slot.tiers


def needs_escalation(first: Outcome, below: float) -> bool:
    """An unsure answer (confidence under `below`, or none given) or one that failed its schema."""
    if first.error_kind == kinds.INVALID_RESPONSE:
        return True
    if first.error_kind:
        return False  # a failure, a block or a stop: see the module's docstring
    return first.confidence is None or first.confidence < below


def tiered_answer(user: Any, spec: CallSpec) -> Outcome:
    """`user.execute(spec)`, escalated when the run tiers and the answer is unsure (module docstring).
    A stop mid-call raises CallCancelled carrying the tiered Outcome."""
    tiers = run_tiering(user.environment)
    if tiers is None:
        return user.execute(spec)
    try:
        first = user.execute(spec)
    except CallCancelled as stop:
        _mark_first(stop.outcome)
        raise
    if not needs_escalation(first, tiers.below):
        return _mark_first(first)
    stronger = spec_for_model(user.environment, spec, tiers.escalate_to)
    try:
        # As before any first attempt (GeminiUser.one_call): a stop's kill on its way lands here,
        # and the logical call is the first tier's answer, not an attempt the server never saw.
        gevent.sleep(0)
    except GreenletExit as kill:
        raise CallCancelled(_mark_first(first)) from kill
    try:
        second = user.execute(stronger)
    except CallCancelled as stop:
        raise CallCancelled(escalated(first, stop.outcome)) from stop
    return escalated(first, second)


def _mark_first(first: Outcome) -> Outcome:
    first.tier = FIRST
    _keep_first(first, first)
    return first


def _keep_first(out: Outcome, first: Outcome) -> None:
    out.first_model = first.model
    out.first_verdict = first.verdict
    out.first_confidence = first.confidence
    out.first_e2e_ms = first.e2e_ms
    out.first_cost_usd = first.cost_usd


def _plus(a: float | int | None, b: float | int | None) -> Any:
    """A sum where None means "the server did not say": known only if either call said."""
    if a is None:
        return b
    return a if b is None else a + b


def _later(value: float | None, offset_ms: float) -> float | None:
    return None if value is None else value + offset_ms


def _clock(first: str, second: str) -> str:
    """Read time if either call was timed at read time: the blend holds that lateness."""
    clocks = {first, second} - {""}
    return arrival.READ if arrival.READ in clocks else (arrival.KERNEL if clocks else "")


def escalated(first: Outcome, second: Outcome) -> Outcome:
    """One Outcome for both calls: the second's answer, both calls' time, cost, tokens and attempts;
    the second's chunk times counted from the start of the first call."""
    out = dataclasses.replace(
        second,
        start_time=first.start_time,
        e2e_ms=first.e2e_ms + second.e2e_ms,
        ttft_ms=_later(second.ttft_ms, first.e2e_ms),
        first_thought_ms=_later(second.first_thought_ms, first.e2e_ms),
        last_chunk_ms=_later(second.last_chunk_ms, first.e2e_ms),
        prompt_tokens=_plus(first.prompt_tokens, second.prompt_tokens),
        output_tokens=_plus(first.output_tokens, second.output_tokens),
        thoughts_tokens=_plus(first.thoughts_tokens, second.thoughts_tokens),
        cached_tokens=_plus(first.cached_tokens, second.cached_tokens),
        attempts=first.attempts + second.attempts,
        backoff_ms=first.backoff_ms + second.backoff_ms,
        attempt_kinds=kinds.ATTEMPT_KINDS_SEPARATOR.join(
            k for k in (first.attempt_kinds, second.attempt_kinds) if k
        ),
        request_bytes=first.request_bytes + second.request_bytes,
        response_bytes=first.response_bytes + second.response_bytes,
        prep_ms=first.prep_ms,
        cost_usd=first.cost_usd + second.cost_usd,
        thoughts_cost_usd=first.thoughts_cost_usd + second.thoughts_cost_usd,
        cached_saving_usd=first.cached_saving_usd + second.cached_saving_usd,
        stage=first.stage,
        throttle_ms=first.throttle_ms + second.throttle_ms,
        policy_action=second.policy_action or first.policy_action,
        gaps_ms=list(second.gaps_ms),
        arrival_clock=_clock(first.arrival_clock, second.arrival_clock),
        read_delay_ms=max(
            (d for d in (first.read_delay_ms, second.read_delay_ms) if d is not None), default=None
        ),
        tier=ESCALATED,
    )
    _keep_first(out, first)
    return out
