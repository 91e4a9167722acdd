"""GeminiUser: the one place that prepares a call, times it, classifies it and hands on an Outcome.

Scenario users only say what to send (`next_call`) and, optionally, how to judge the answer.
"""

from __future__ import annotations

import time
from typing import ClassVar

from locust import User, between, task
from locust.exception import StopUser

import shapes
from core import outcome as kinds
from core.outcome import Outcome
from metrics.recorder import record_outcome
from users.call import CallResult, CallSpec, CallTimer
from users.errors import CallError
from users.pricing import PriceTable
from users.retry import RetryPolicy
from users.settings import GeminiSettings
from users.state import users_state
from users.transports import Transport, make_transport


class GeminiUser(User):
    abstract = True
    scenario: ClassVar[str] = "gemini"
    # Pause between a user's calls in closed-model runs. Open-model shapes pace calls themselves.
    think_time = between(0.1, 0.5)

    def wait_time(self) -> float:
        if shapes.get_pacer(self.environment) is not None:
            return 0.0
        return self.think_time()

    def on_start(self) -> None:
        state = users_state(self.environment)
        if state.settings is None or state.prices is None:
            raise LookupError(
                "no Gemini settings yet: they are set at Locust's init (users.state.use_settings)"
            )
        self.settings: GeminiSettings = state.settings
        self.prices: PriceTable = state.prices
        self.transport: Transport = make_transport(
            self.settings.transport,
            base_url=self.host or self.environment.host,
            api_key=self.settings.api_key,
            timeout_s=self.settings.timeout_s,
        )
        self.retry_policy = RetryPolicy(retries=self.settings.retries)

    def on_stop(self) -> None:
        self.transport.close()

    def next_call(self) -> CallSpec:
        raise NotImplementedError

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        """Scenario check of a successful answer; may set outcome fields or raise CallError."""

    @task
    def one_call(self) -> None:
        if users_state(self.environment).quitting:
            raise StopUser()
        # Open-model shapes (arrival, capacity) decide when a call starts; others leave it to wait_time.
        pacer = shapes.get_pacer(self.environment)
        lag_ms = pacer.wait_for_slot()[1] if pacer is not None else None
        spec = self.next_call()
        outcome = self.execute(spec)
        outcome.schedule_lag_ms = lag_ms
        record_outcome(self.environment, outcome)

    def execute(self, spec: CallSpec) -> Outcome:
        out = Outcome(
            scenario=spec.scenario,
            model=spec.model,
            transport=self.transport.name,
            start_time=time.time(),
            variant=spec.variant,
            item_id=spec.item_id,
            expected=spec.expected,
            prep_ms=spec.prep_ms,
            request_bytes=spec.request_bytes,
            stage=shapes.current_stage(self.environment),
        )
        started = time.perf_counter()
        timers: list[CallTimer] = []

        def attempt() -> CallResult:
            timers.append(CallTimer())
            return self.transport.call(spec, timers[-1])

        try:
            result, out.attempts, out.backoff_ms = self.retry_policy.run(attempt)
            out.e2e_ms = (time.perf_counter() - started) * 1000.0
            # Chunk times count from the start of the logical call: what the caller waited,
            # earlier failed attempts and backoff included.
            self._fill(out, result, timers[-1], offset_ms=(timers[-1].started - started) * 1000.0)
            if result.block_reason or result.finish_reason == "SAFETY":
                out.error_kind = kinds.BLOCKED
            else:
                self.judge(spec, result, out)
        except CallError as err:
            out.e2e_ms = out.e2e_ms or (time.perf_counter() - started) * 1000.0
            out.error_kind = err.kind
            out.error_message = err.message
            out.http_status = err.http_status or out.http_status
            out.attempts = getattr(err, "attempts", None) or out.attempts or max(1, len(timers))
            out.backoff_ms = getattr(err, "backoff_ms", None) or out.backoff_ms
        return out

    def _fill(self, out: Outcome, result: CallResult, timer: CallTimer, offset_ms: float = 0.0) -> None:
        out.http_status = result.http_status
        out.prompt_tokens = result.prompt_tokens
        out.output_tokens = result.output_tokens
        out.thoughts_tokens = result.thoughts_tokens
        out.cached_tokens = result.cached_tokens
        out.finish_reason = result.finish_reason
        out.block_reason = result.block_reason
        out.response_bytes = result.response_bytes
        out.cost_usd = self.prices.cost_usd(
            out.model, out.prompt_tokens, out.output_tokens, out.thoughts_tokens
        )
        out.chunk_count = len(timer.chunk_offsets_ms)
        out.ttft_ms = _shifted(timer.first_text_ms, offset_ms)
        out.first_thought_ms = _shifted(timer.first_thought_ms, offset_ms)
        out.last_chunk_ms = _shifted(timer.last_chunk_ms, offset_ms)
        out.gaps_ms = timer.gaps_ms


def _shifted(value: float | None, offset_ms: float) -> float | None:
    return None if value is None else value + offset_ms
