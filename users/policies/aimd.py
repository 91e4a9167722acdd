"""aimd: an adaptive concurrency limit, as TCP adapts its window (additive increase, multiplicative
decrease), so a run finds the concurrency the project's quota and the service bear.

- +1 for every `floor(limit)` answered attempts (one more per round of the window);
- x`--aimd-decrease` on a 429 or a 503, at most once per COOLDOWN_S: a burst of errors from one
  round of simultaneous attempts is one signal, not a collapse to the minimum;
- a 429 with RetryInfo holds every new attempt until the server's time (they wait; throttle_ms);
- attempts wait FIFO while `floor(limit)` are in flight (gate.ConcurrencyGate).

Alone (a local run) the process's AimdController decides. Under a master, N workers must not each
overshoot one quota: a worker only counts (answered, congested, the longest RetryInfo) for the
master (users/policies/shared.py), which runs the one controller on the sums, and its limit is
exactly the share the master sends; it still honours its own 429s' RetryInfo at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from users.policies import PolicyKind, register_policy
from users.policies.chain import Attempt, BuildContext, Clock, EventLog, Settlement
from users.policies.gate import ConcurrencyGate
from users.policies.options import AimdSettings

NAME = "aimd"
COOLDOWN_S = 1.0


class AimdController:
    """The limit arithmetic, pure: no waiting, no I/O; `now` from the caller's clock."""

    def __init__(
        self, settings: AimdSettings, minimum: float | None = None, maximum: float | None = None
    ) -> None:
        self.decrease = settings.decrease
        self.minimum = settings.minimum if minimum is None else minimum
        self.maximum = max(self.minimum, settings.maximum if maximum is None else maximum)
        self.limit = min(self.maximum, max(self.minimum, settings.start))
        self._answered = 0.0
        self._last_decrease = -math.inf

    def answered(self, count: float = 1) -> bool:
        """`count` answered attempts; True when the limit grew."""
        before = self.limit
        self._answered += count
        while self._answered >= math.floor(self.limit) and self.limit < self.maximum:
            self._answered -= math.floor(self.limit)
            self.limit = min(self.maximum, self.limit + 1.0)
        if self.limit >= self.maximum:
            self._answered = 0.0
        return self.limit != before

    def congested(self, now: float) -> bool:
        """A 429 or 503 at `now`; True when the limit shrank (not within COOLDOWN_S of the last)."""
        if now - self._last_decrease < COOLDOWN_S:
            return False
        self._last_decrease = now
        self._answered = 0.0
        before = self.limit
        self.limit = max(self.minimum, self.limit * self.decrease)
        return self.limit != before

    def bound(self, minimum: float, maximum: float) -> bool:
        """New bounds (a master whose number of workers changed); True when the limit moved."""
        before = self.limit
        self.minimum, self.maximum = minimum, max(minimum, maximum)
        self.limit = min(self.maximum, max(self.minimum, self.limit))
        return self.limit != before


@dataclass(slots=True)
class Counts:
    """What a worker tells the master since its last message."""

    answered: int = 0
    congested: int = 0
    hold_until: float = 0.0  # wall clock (epoch s) the latest RetryInfo asks to wait until

    def __bool__(self) -> bool:
        return bool(self.answered or self.congested or self.hold_until)


class AimdPolicy:
    name = NAME

    def __init__(
        self,
        settings: AimdSettings,
        clock: Clock,
        sleep: object,
        log: EventLog,
        *,
        follower: bool = False,
        wall_clock: Clock = time.time,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.log = log
        self.controller = None if follower else AimdController(settings)
        self.limit = settings.minimum if follower else self.controller.limit  # type: ignore[union-attr]
        self.gate = ConcurrencyGate(_places(self.limit), clock, sleep)  # type: ignore[arg-type]
        self.pending = Counts()
        if not follower:
            self.log.event(NAME, "limit", self.limit)

    def admit(self, attempt: Attempt) -> None:
        self.gate.acquire()

    def settle(self, attempt: Attempt, settlement: Settlement) -> None:
        self.gate.release()
        if not settlement.sent:
            return
        now = self.clock()
        if settlement.retry_after_s and settlement.congestion:
            self.gate.hold(now + settlement.retry_after_s)
        if self.controller is None:
            if settlement.retry_after_s and settlement.congestion:
                until = self.wall_clock() + settlement.retry_after_s
                self.pending.hold_until = max(self.pending.hold_until, until)
            self.pending.answered += settlement.answered
            self.pending.congested += settlement.congestion
            return
        changed = False
        if settlement.congestion:
            changed = self.controller.congested(now)
        elif settlement.answered:
            changed = self.controller.answered()
        if changed:
            self._set_limit(self.controller.limit)

    def follow(self, share: float, detail: str) -> None:
        """A worker's limit is exactly its share of the master's signal (logged on every signal)."""
        self.limit = share
        self.gate.set_capacity(_places(share))
        self.log.event(NAME, "limit", share, detail)

    def hold_until(self, wall_time: float) -> None:
        """Hold new attempts until `wall_time` (epoch s: it comes from another process)."""
        seconds = wall_time - self.wall_clock()
        if seconds > 0:
            self.gate.hold(self.clock() + seconds)

    def drain(self) -> Counts:
        counts, self.pending = self.pending, Counts()
        return counts

    def _set_limit(self, limit: float) -> None:
        self.limit = limit
        self.gate.set_capacity(_places(limit))
        self.log.event(NAME, "limit", limit)


def _places(limit: float) -> int:
    return max(1, math.floor(limit + 1e-9))


def build(context: BuildContext) -> AimdPolicy:
    return AimdPolicy(
        context.settings.aimd, context.clock, context.sleep, context.log, follower=context.follower
    )


register_policy(PolicyKind(NAME, 30, "adaptive concurrency limit (AIMD)", build))
