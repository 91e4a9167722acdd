"""GeminiUser: the one place that prepares a call, times it, classifies it and hands on an Outcome.

Scenario users only say what to send (`next_call`) and, optionally, how to judge the answer.
"""

from __future__ import annotations

import contextlib
import time
from typing import ClassVar

import gevent
from gevent import GreenletExit
from locust import User, between, task
from locust.exception import StopUser

import shapes
from core import outcome as kinds
from core.outcome import Outcome
from metrics.recorder import record_outcome
from users.auth import AuthError
from users.call import CallResult, CallSpec, CallTimer
from users.errors import CallCancelled, CallError
from users.policies.chain import NOT_SENT, Attempt, HeldTime, PolicyChain, Settlement, Shed
from users.policies.runtime import policy_of
from users.pricing import PriceTable
from users.retarget import spec_for_model
from users.retry import RetryPolicy, RetryProgress
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
            vertex=state.vertex,
        )
        # Vertex with OAuth: a call that finds the process's token expired waits for its renewal
        # before its clock starts (users/auth.py), so a renewal is never request latency.
        self.vertex = state.vertex
        self.retry_policy = RetryPolicy(retries=self.settings.retries)
        # The process's client policy (--client-policy), shared by all its users; None: retries only.
        self.policy: PolicyChain | None = policy_of(self.environment)

    def on_stop(self) -> None:
        self.transport.close()

    def next_call(self) -> CallSpec:
        raise NotImplementedError

    def request_id_for(self, spec: CallSpec) -> str:
        """The id a call carries to the server (x-request-id, users/app.py), "" for none."""
        return ""

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        """Scenario check of a successful answer; may set outcome fields or raise CallError."""

    def answer(self, spec: CallSpec) -> Outcome:
        """One logical answer to `spec`: one call here; a tiering scenario's may be two
        (users/tiering.py), still one Outcome. Raises CallCancelled as execute does."""
        return self.execute(spec)

    @task
    def one_call(self) -> None:
        if users_state(self.environment).quitting:
            raise StopUser()
        # Open-model shapes (arrival, capacity) decide when a call starts; others leave it to wait_time.
        pacer = shapes.get_pacer(self.environment)
        lag_ms = pacer.wait_for_slot()[1] if pacer is not None else None
        spec = self.next_call()
        # Locust kills a user that waits (its stop) with a callback the hub runs later: one that is on
        # its way lands here, before the call, not in the call's first request (which might not have
        # reached the server: an attempt the client would count and the server never saw).
        gevent.sleep(0)
        try:
            outcome = self.answer(spec)
        except CallCancelled as stop:
            # The run stopped mid-call (Locust killed this user): the call and its attempts are
            # counted now, before the greenlet dies, and the kill goes on.
            stop.outcome.schedule_lag_ms = lag_ms
            record_outcome(self.environment, stop.outcome)
            raise
        outcome.schedule_lag_ms = lag_ms
        record_outcome(self.environment, outcome)

    def execute(self, spec: CallSpec) -> Outcome:
        """Make one logical call (retries included) and return its Outcome.

        A GreenletExit (the run's stop killing this user) mid-call is raised on as CallCancelled,
        carrying the call's Outcome with kind `cancelled`: the caller records it.
        """
        if self.vertex is not None:
            with contextlib.suppress(AuthError):  # logged; the call goes out and the API refuses it
                self.vertex.wait_valid()
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
            request_id=self.request_id_for(spec),
        )
        started = time.perf_counter()
        timers: list[CallTimer] = []
        progress = RetryProgress()
        held = HeldTime()
        # The policy governs the run's model and its quota: a tier's escalation to another model
        # (its own quota) is neither held, counted nor redirected by it.
        policy = self.policy if spec.model == self.settings.model else None
        if policy is not None:
            out.policy = policy.label

        def attempt() -> CallResult:
            if policy is not None:
                return self._attempt_through(policy, spec, out, progress, held, timers)
            timers.append(CallTimer(request_id=out.request_id))
            return self.transport.call(spec, timers[-1])

        try:
            result, out.attempts, out.backoff_ms = self.retry_policy.run(attempt, progress=progress)
            # The reply's end is when its last bytes arrived (a kernel stamp), not when it was read.
            out.e2e_ms = (timers[-1].mark() - started) * 1000.0
            # Chunk times count from the start of the logical call: what the caller waited,
            # earlier failed attempts and backoff included.
            self._fill(out, result)
            self._fill_timing(out, timers[-1], started)
            if result.block_reason or result.finish_reason == "SAFETY":
                out.error_kind = kinds.BLOCKED
            else:
                self.judge(spec, result, out)
        except CallError as err:
            if self.vertex is not None:
                self.vertex.refused(err.http_status)
            out.e2e_ms = out.e2e_ms or (time.perf_counter() - started) * 1000.0
            out.error_kind = err.kind
            out.error_message = err.message
            out.http_status = err.http_status or out.http_status
            out.attempts = max(1, progress.attempts)
            if isinstance(err, Shed):
                # The policy's refusal is no attempt: only requests sent count, and their kinds.
                progress.errors.pop()
                out.attempts = progress.attempts
                out.policy_action = "shed"
            out.backoff_ms = progress.backoff_ms
            if timers and out.chunk_count == 0:
                # A stream cut mid-way keeps the timing of the chunks that did arrive.
                self._fill_timing(out, timers[-1], started)
            if len(progress.errors) < out.attempts:  # the answer came, and judge() refused it
                progress.errors.append(err)
        except GreenletExit as kill:
            raise CallCancelled(self._cancelled(out, progress, timers, started, held)) from kill
        held.end(time.perf_counter())  # a shed call's wait before the refusal
        out.throttle_ms = held.throttle_ms
        out.attempt_kinds = _joined_kinds(progress.errors)
        return out

    def _attempt_through(
        self,
        policy: PolicyChain,
        spec: CallSpec,
        out: Outcome,
        progress: RetryProgress,
        held: HeldTime,
        timers: list[CallTimer],
    ) -> CallResult:
        """One attempt through the client policy: admitted (it may wait, be shed or go to the
        breaker's fallback model), sent, then settled with what happened to it. RetryPolicy counted
        it as started; it is an attempt only once admitted, since a shed one never reaches the server."""
        progress.attempts -= 1
        ticket = Attempt(spec.scenario, spec.model, spec.request_bytes)
        held.begin(time.perf_counter())
        policy.admit(ticket)
        try:
            # As before the first attempt (one_call): a stop's kill on its way while the policy held
            # the call lands here, before a request the server might never see is counted as sent.
            gevent.sleep(0)
        except BaseException:
            policy.settle(ticket, NOT_SENT)
            raise
        held.end(time.perf_counter())
        progress.attempts += 1
        target = spec
        out.model, out.policy_action = ticket.model, ""
        if ticket.fallback:
            target = spec_for_model(self.environment, spec, ticket.model)
            out.policy_action = "fallback"
        out.request_bytes = target.request_bytes  # this attempt's: a retry may leave the fallback
        timers.append(CallTimer(request_id=out.request_id))
        try:
            result = self.transport.call(target, timers[-1])
        except CallError as err:
            policy.settle(ticket, Settlement(True, err.kind, err.http_status, err.retry_after_s))
            raise
        except BaseException:
            policy.settle(ticket, Settlement(True, kinds.CANCELLED))
            raise
        policy.settle(ticket, Settlement(True, "", result.http_status, None, result.prompt_tokens))
        return result

    def _cancelled(
        self,
        out: Outcome,
        progress: RetryProgress,
        timers: list[CallTimer],
        started: float,
        held: HeldTime | None = None,
    ) -> Outcome:
        """The Outcome of a call cut off by the run's stop: every attempt it made, the kinds of
        those that failed, `cancelled` for one in flight, and the timing of chunks that arrived."""
        now = time.perf_counter()
        in_flight = progress.in_flight
        was_held = held is not None and held.end(now)
        out.throttle_ms = held.throttle_ms if held is not None else 0.0
        out.error_kind = kinds.CANCELLED
        out.e2e_ms = (now - started) * 1000.0
        out.attempts = progress.attempts
        out.backoff_ms = progress.waited_ms(now)
        out.attempt_kinds = _joined_kinds(progress.errors, also=kinds.CANCELLED if in_flight else "")
        if in_flight and timers:
            self._fill_timing(out, timers[-1], started)
        tried = f"{progress.attempts} attempt{'s' if progress.attempts != 1 else ''}"
        where = "with an attempt in flight" if in_flight else "while backing off to retry"
        if was_held:
            where = "while the client policy held it"
        message = f"the run stopped {where}, after {tried}"
        if progress.errors:
            last = progress.errors[-1]
            status = f" (HTTP {last.http_status})" if last.http_status else ""
            message += f"; the last that failed: {last.kind}{status}"
        out.error_message = message  # kinds and counts only: nothing to redact
        return out

    def _fill(self, out: Outcome, result: CallResult) -> None:
        out.http_status = result.http_status
        out.prompt_tokens = result.prompt_tokens
        out.output_tokens = result.output_tokens
        out.thoughts_tokens = result.thoughts_tokens
        out.cached_tokens = result.cached_tokens
        out.finish_reason = result.finish_reason
        out.block_reason = result.block_reason
        out.response_bytes = result.response_bytes
        out.cost_usd, out.thoughts_cost_usd = self.prices.cost(
            out.model, out.prompt_tokens, out.output_tokens, out.thoughts_tokens, out.cached_tokens
        )
        out.cached_saving_usd = self.prices.cached_saving(out.model, out.prompt_tokens, out.cached_tokens)

    @staticmethod
    def _fill_timing(out: Outcome, timer: CallTimer, started: float) -> None:
        """The chunk timing of one attempt (the last), counted from the start of the logical call."""
        offset_ms = (timer.started - started) * 1000.0
        out.chunk_count = len(timer.chunk_offsets_ms)
        out.ttft_ms = _shifted(timer.first_text_ms, offset_ms)
        out.first_thought_ms = _shifted(timer.first_thought_ms, offset_ms)
        out.last_chunk_ms = _shifted(timer.last_chunk_ms, offset_ms)
        out.gaps_ms = timer.gaps_ms
        out.arrival_clock = timer.arrival_clock
        out.read_delay_ms = timer.read_delay_ms


def _shifted(value: float | None, offset_ms: float) -> float | None:
    return None if value is None else value + offset_ms


def _joined_kinds(errors: list[CallError], also: str = "") -> str:
    names = [err.kind for err in errors]
    if also:
        names.append(also)
    return kinds.ATTEMPT_KINDS_SEPARATOR.join(names)
