"""breaker: a circuit breaker on the error rate of the run's attempts, so a failing service is given
room to recover instead of a stream of doomed calls.

closed     attempts go; each is counted in a sliding window of --breaker-window seconds. When the
           window holds at least --breaker-min-calls attempts and their error rate (429, 5xx,
           timeout, connection) reaches --breaker-threshold, it opens.
open       for --breaker-cooldown seconds every call is shed at once (kind shed) or, with a model
           as --breaker-fallback, sent to that model instead (policy_action fallback).
half_open  one probe attempt at a time goes to the run's model (the others as when open): an
           answer closes the breaker, an error opens it again. Any other answer (a 400, a blocked
           prompt) shows the service answering, so it counts as an answer.
Every change is a `state` event in the policy log (value: the window's error rate).
"""

from __future__ import annotations

from collections import deque

from core import outcome as kinds
from users.policies import PolicyKind, register_policy
from users.policies.chain import Attempt, BuildContext, Clock, EventLog, Settlement, Shed
from users.policies.options import FAIL, BreakerSettings

NAME = "breaker"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
COUNTED_ERRORS = frozenset({kinds.RATE_LIMITED, kinds.SERVER_ERROR, kinds.TIMEOUT, kinds.CONNECTION})


class CircuitBreaker:
    name = NAME

    def __init__(self, settings: BreakerSettings, clock: Clock, log: EventLog) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log
        self.state = CLOSED
        self.opened_at = 0.0
        self.probing = False
        self._window: deque[tuple[float, bool]] = deque()  # (when, failed)
        self._failures = 0

    def error_rate(self) -> float:
        self._prune(self.clock())
        return self._failures / len(self._window) if self._window else 0.0

    def admit(self, attempt: Attempt) -> None:
        if self.state == OPEN and self.clock() - self.opened_at >= self.settings.cooldown_s:
            self._change(HALF_OPEN)
        if self.state == CLOSED:
            return
        if self.state == HALF_OPEN and not self.probing:
            self.probing = attempt.probe = True
            return
        if self.settings.fallback == FAIL:
            raise Shed(
                f"the client's circuit breaker is {self.state.replace('_', '-')}: the call was not sent"
            )
        attempt.model = self.settings.fallback
        attempt.fallback = True

    def settle(self, attempt: Attempt, settlement: Settlement) -> None:
        if attempt.fallback:
            return  # another model's answer says nothing about this one
        probe = attempt.probe
        if probe:
            attempt.probe = self.probing = False
        if not settlement.sent or settlement.kind == kinds.CANCELLED:
            return  # cut off (a probe: the next attempt probes instead): no verdict on the service
        failed = settlement.kind in COUNTED_ERRORS
        now = self.clock()
        self._window.append((now, failed))
        self._failures += failed
        self._prune(now)
        if probe and self.state == HALF_OPEN:
            if failed:
                self._open(now)
            else:
                self._window.clear()
                self._failures = 0
                self._change(CLOSED)
        elif self.state == CLOSED and self._tripped():
            self._open(now)

    def _tripped(self) -> bool:
        calls = len(self._window)
        return calls >= self.settings.min_calls and self._failures / calls >= self.settings.threshold

    def _open(self, now: float) -> None:
        self.opened_at = now
        self._change(OPEN)

    def _change(self, state: str) -> None:
        self.state = state
        rate = self._failures / len(self._window) if self._window else 0.0
        self.log.event(NAME, "state", rate, state)

    def _prune(self, now: float) -> None:
        horizon = now - self.settings.window_s
        while self._window and self._window[0][0] < horizon:
            self._failures -= self._window.popleft()[1]


def build(context: BuildContext) -> CircuitBreaker:
    return CircuitBreaker(context.settings.breaker, context.clock, context.log)


register_policy(
    PolicyKind(NAME, 10, "circuit breaker: sheds or falls back while the error rate is high", build)
)
