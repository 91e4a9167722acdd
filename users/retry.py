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

`RetryProgress` says how far a call got at any moment: when the run stops and Locust kills the user
in the middle of an attempt or a backoff, GeminiUser reads it to record the call as `cancelled`
with every attempt it made.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import gevent

from core import outcome
from users.errors import CallError

T = TypeVar("T")

RETRYABLE_KINDS = frozenset({outcome.RATE_LIMITED, outcome.SERVER_ERROR, outcome.TIMEOUT, outcome.CONNECTION})


@dataclass(slots=True)
class RetryProgress:
    """How far one logical call has got, kept up to date by RetryPolicy.run as it goes."""

    attempts: int = 0  # attempts started (the one under way included)
    errors: list[CallError] = field(default_factory=list)  # each failed attempt's error, in order
    backoff_ms: float = 0.0  # the backoffs completed
    backing_off_since: float | None = None  # perf_counter() when the current backoff began

    @property
    def in_flight(self) -> bool:
        """An attempt is under way: started, and neither failed nor waiting to be retried."""
        return self.backing_off_since is None and len(self.errors) < self.attempts

    def waited_ms(self, now: float | None = None) -> float:
        """The backoff so far, a backoff under way counted up to `now`."""
        if self.backing_off_since is None:
            return self.backoff_ms
        now = time.perf_counter() if now is None else now
        return self.backoff_ms + max(0.0, now - self.backing_off_since) * 1000.0


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
        self,
        attempt: Callable[[], T],
        sleep: Callable[[float], object] = gevent.sleep,
        progress: RetryProgress | None = None,
    ) -> tuple[T, int, float]:
        """Call `attempt` until it returns, retrying retryable CallErrors.

        Returns (result, attempts, backoff_ms). On final failure raises the last CallError with
        `.attempts` and `.backoff_ms` set, so the Outcome can still say how hard we tried.
        `progress`, when given, follows every step, so a caller cut off mid-way knows them too.
        """
        progress = RetryProgress() if progress is None else progress
        while True:
            progress.attempts += 1
            try:
                return attempt(), progress.attempts, progress.backoff_ms
            except CallError as err:
                progress.errors.append(err)
                delay = None
                if progress.attempts <= self.retries and self.should_retry(err):
                    delay = self.delay_s(progress.attempts, err)
                if delay is None:
                    err.attempts = progress.attempts  # type: ignore[attr-defined]
                    err.backoff_ms = progress.backoff_ms  # type: ignore[attr-defined]
                    raise
                progress.backing_off_since = time.perf_counter()
                sleep(delay)
                progress.backing_off_since = None
                progress.backoff_ms += delay * 1000.0
