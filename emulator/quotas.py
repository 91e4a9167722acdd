"""Rate limits: requests and input tokens per minute, per API key per model, over a rolling window.

The window is 60 s of emulated time (60 * time scale real seconds). A request over either limit
gets 429 RESOURCE_EXHAUSTED with the real error's details: google.rpc.QuotaFailure (which metric,
which limit), google.rpc.Help (a link) and google.rpc.RetryInfo (retryDelay: when enough of the
counted requests leave the window, in real seconds, rounded up so a client that honours it under
a time scale waits the right amount). A rejected request is not counted.

The window's clock is time.monotonic unless another is given (tests pass a manual one).

Keys are only ever used as dictionary keys here; they never reach stats, logs or error bodies.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from emulator.errors import HELP, QUOTA_FAILURE, RETRY_INFO, ApiError
from emulator.profiles import Profile

WINDOW_S = 60.0


class _Window:
    """Admitted requests of one (key, model) in the window: timestamps and their token counts."""

    __slots__ = ("events", "tokens")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def prune(self, now: float, window: float) -> None:
        events = self.events
        while events and events[0][0] <= now - window:
            self.tokens -= events.popleft()[1]


class Quotas:
    def __init__(
        self, profile: Profile, time_scale: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.profile = profile
        self.window = WINDOW_S * time_scale
        self.clock = clock  # real seconds, only ever compared with itself
        self._windows: dict[tuple[str, str], _Window] = {}
        self._limits: dict[str, tuple[int | None, int | None]] = {}

    def limits(self, model: str) -> tuple[int | None, int | None]:
        if model not in self._limits:
            self._limits[model] = self.profile.quota_for(model)
        return self._limits[model]

    def admit(self, key: str, model: str, tokens: int, now: float | None = None) -> None:
        """Count one request of `tokens` input tokens, or raise the 429 the real API would send."""
        rpm, tpm = self.limits(model)
        if (rpm is None and tpm is None) or self.window <= 0:
            return
        now = self.clock() if now is None else now
        window = self._windows.get((key, model))
        if window is None:
            window = self._windows[(key, model)] = _Window()
        window.prune(now, self.window)
        if rpm is not None and len(window.events) >= rpm:
            raise self._exhausted(model, "requests", rpm, self._retry_after(window, now, lambda _: True))
        if tpm is not None and window.tokens + tokens > tpm and window.events:
            needed = window.tokens + tokens - tpm
            raise self._exhausted(model, "tokens", tpm, self._retry_after(window, now, _freed_enough(needed)))
        window.events.append((now, tokens))
        window.tokens += tokens

    def _retry_after(self, window: _Window, now: float, enough: Any) -> float:
        freed = 0
        for stamp, tokens in window.events:
            freed += tokens
            if enough(freed):
                return max(0.0, stamp + self.window - now)
        return self.window

    def _exhausted(self, model: str, what: str, limit: int, retry_s: float) -> ApiError:
        free = self.profile.quota_tier == "free"
        tier = "free_tier" if free else "paid_tier"
        if what == "requests":
            metric = f"generativelanguage.googleapis.com/generate_content_{tier}_requests"
            quota_id = "GenerateRequestsPerMinutePerProjectPerModel" + ("-FreeTier" if free else "")
        else:
            metric = f"generativelanguage.googleapis.com/generate_content_{tier}_input_token_count"
            quota_id = "GenerateContentInputTokensPerModelPerMinute" + ("-FreeTier" if free else "")
        delay = _duration(retry_s)
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
            "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n"
            f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
            f"Please retry in {retry_s:.6g}s."
        )
        details = [
            {
                "@type": QUOTA_FAILURE,
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": quota_id,
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": str(limit),
                    }
                ],
            },
            {
                "@type": HELP,
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": RETRY_INFO, "retryDelay": delay},
        ]
        error = ApiError(429, message, details)
        error.fault = f"quota_{what}"
        return error


def _freed_enough(needed: int) -> Any:
    return lambda freed: freed >= needed


def _duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON: whole seconds as "22s", else milliseconds as "0.250s".

    Always rounded up: a client that waits exactly this long finds the slot free.
    """
    if seconds >= 1:
        return f"{math.ceil(seconds)}s"
    return f"{max(math.ceil(seconds * 1000 - 1e-6), 1) / 1000:.3f}s"
