"""limiter: client-side token buckets from the known quota, so the run paces itself under the
project's requests and input tokens per minute instead of learning them from 429s.

Two buckets, requests and input tokens, each refilled at its rate per second and holding at most
BURST_S seconds of it (at least one request's worth, so a call bigger than the burst still goes
once the bucket is full, then leaves it in debt). An attempt takes one request and its estimated
prompt tokens: what the server last reported (usageMetadata) for the same scenario, or the request's
bytes / 4 before any answer. Attempts wait their turn first come first served. A worker takes 1/N
of the run's rates, N from the master's signal (users/policies/shared.py). Each change of the rates
in force is a `rate` event in the policy log.
"""

from __future__ import annotations

from collections.abc import Callable

from gevent.lock import Semaphore

from users.policies import PolicyKind, register_policy
from users.policies.chain import Attempt, BuildContext, Clock, EventLog, Settlement
from users.policies.options import LimiterSettings

NAME = "limiter"
BURST_S = 1.0
BYTES_PER_TOKEN = 4


class TokenBucket:
    """Pure arithmetic on `now` (seconds): the caller waits."""

    def __init__(self, per_s: float, now: float) -> None:
        self.per_s = per_s
        self.capacity = max(1.0, per_s * BURST_S)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_s)
        self.updated = now

    def wait_s(self, cost: float, now: float) -> float:
        """Seconds until `cost` may be taken (a cost over the burst needs a full bucket)."""
        self.refill(now)
        needed = min(cost, self.capacity)
        return max(0.0, (needed - self.level) / self.per_s)

    def take(self, cost: float, now: float) -> None:
        self.refill(now)
        self.level -= cost

    def set_rate(self, per_s: float, now: float) -> None:
        self.refill(now)
        self.per_s = per_s
        self.capacity = max(1.0, per_s * BURST_S)
        self.level = min(self.level, self.capacity)


class Limiter:
    name = NAME

    def __init__(
        self, settings: LimiterSettings, clock: Clock, sleep: Callable[[float], object], log: EventLog
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.workers = 1
        now = clock()
        self.requests = TokenBucket(settings.rpm / 60.0, now)
        self.tokens = TokenBucket(settings.tpm / 60.0, now)
        self.prompt_tokens: dict[str, int] = {}  # by scenario: the server's last count
        self._turn = Semaphore(1)  # gevent's is FIFO
        self._log_rates()

    def estimate(self, attempt: Attempt) -> float:
        known = self.prompt_tokens.get(attempt.scenario)
        return float(known) if known is not None else attempt.request_bytes / BYTES_PER_TOKEN

    def admit(self, attempt: Attempt) -> None:
        cost = self.estimate(attempt)
        with self._turn:
            for bucket, amount in ((self.requests, 1.0), (self.tokens, cost)):
                wait = bucket.wait_s(amount, self.clock())
                if wait > 0:
                    self.sleep(wait)
            now = self.clock()
            self.requests.take(1.0, now)
            self.tokens.take(cost, now)

    def settle(self, attempt: Attempt, settlement: Settlement) -> None:
        if settlement.prompt_tokens:
            self.prompt_tokens[attempt.scenario] = settlement.prompt_tokens

    def share(self, workers: int) -> None:
        """This process's part of the run's rates: 1/`workers` of each."""
        workers = max(1, workers)
        if workers == self.workers:
            return
        self.workers = workers
        now = self.clock()
        self.requests.set_rate(self.settings.rpm / 60.0 / workers, now)
        self.tokens.set_rate(self.settings.tpm / 60.0 / workers, now)
        self._log_rates()

    def _log_rates(self) -> None:
        rpm, tpm = self.requests.per_s * 60.0, self.tokens.per_s * 60.0
        detail = f"rpm={rpm:g} tpm={tpm:g} workers={self.workers} ({self.settings.source})"
        self.log.event(NAME, "rate", rpm, detail)


def build(context: BuildContext) -> Limiter:
    return Limiter(context.settings.limiter, context.clock, context.sleep, context.log)


register_policy(
    PolicyKind(NAME, 20, "client-side token buckets from the quota (--limit-rpm, --limit-tpm)", build)
)
