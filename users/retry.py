"""Client-side retries: exponential backoff with full jitter, capped, honouring RetryInfo.

Why hand-written and not tenacity (installed with google-genai): the common path is "the first
attempt succeeds", and tenacity builds a RetryCallState and runs its strategy chain on every call,
about 10-20 µs of CPU in the hot loop of a load generator. Here a successful first attempt costs one
try/except. The policy itself is a few lines and is easier to read than the strategy composition.

Delays (AWS "full jitter"): before retry n (n = 1, 2, ...) wait uniform(0, min(cap_s, base_s * 2**(n-1))).
When the server said when to come back (google.rpc.RetryInfo.retryDelay, carried as
CallError.retry_after_s), that wins: wait retry_after_s, stretched by up to `retry_info_jitter`
(10 %) so users that hit the same quota window do not all come back in the same instant. A server
that asks for more than `max_retry_after_s` is not waited for: the error is raised at once (a load
test should record the 429, not sleep for minutes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import gevent

from core import outcome
from users.errors import CallError

T = TypeVar("T")

RETRYABLE_KINDS = frozenset({outcome.RATE_LIMITED, outcome.SERVER_ERROR, outcome.TIMEOUT, outcome.CONNECTION})


@dataclass(slots=True)
class RetryPolicy:
    retries: int = 0  # extra attempts after the first; 0 = never retry
    base_s: float = 0.5
    cap_s: float = 8.0
    honor_retry_info: bool = True
    retry_info_jitter: float = 0.1
    max_retry_after_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError(f"retry base and cap must be >= 0 seconds, got {self.base_s} and {self.cap_s}")

    def should_retry(self, err: CallError) -> bool:
        return err.kind in RETRYABLE_KINDS

    def delay_s(self, retry_number: int, err: CallError) -> float | None:
        """Seconds to wait before retry `retry_number` (1-based); None means give up now."""
        if self.honor_retry_info and err.retry_after_s is not None and err.retry_after_s >= 0:
            if err.retry_after_s > self.max_retry_after_s:
                return None
            return err.retry_after_s * (1.0 + self.retry_info_jitter * self.rng.random())
        ceiling = min(self.cap_s, self.base_s * (2.0 ** (retry_number - 1)))
        return self.rng.uniform(0.0, ceiling)

    def run(
        self, attempt: Callable[[], T], sleep: Callable[[float], object] = gevent.sleep
    ) -> tuple[T, int, float]:
        """Call `attempt` until it returns, retrying retryable CallErrors.

        Returns (result, attempts, backoff_ms). On final failure raises the last CallError with
        `.attempts` and `.backoff_ms` set, so the Outcome can still say how hard we tried.
        """
        attempts = 0
        backoff_ms = 0.0
        while True:
            attempts += 1
            try:
                return attempt(), attempts, backoff_ms
            except CallError as err:
                delay = None
                if attempts <= self.retries and self.should_retry(err):
                    delay = self.delay_s(attempts, err)
                if delay is None:
                    err.attempts = attempts  # type: ignore[attr-defined]
                    err.backoff_ms = backoff_ms  # type: ignore[attr-defined]
                    raise
                sleep(delay)
                backoff_ms += delay * 1000.0
