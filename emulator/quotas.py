"""Rate limits as the real API counts them: per project and model, requests and input tokens per
minute over a rolling window, and requests per day up to midnight America/Los_Angeles.

A project is a set of keys (the config's `projects`); a key no project lists is a project of its
own. Quotas follow the project, as the real API's do: a second key of one project adds nothing.

The minute window is 60 s of emulated time (60 * time scale real seconds). The day is emulated time
too: the emulator's wall clock starts at the real time and runs 1 / time scale as fast, so at a
time scale of 0.001 a day passes in 86 real seconds, and a test with a manual clock reaches the
reset by advancing it.

A request over any limit gets one 429 RESOURCE_EXHAUSTED listing every broken limit as a
violation of one google.rpc.QuotaFailure, then google.rpc.Help, then google.rpc.RetryInfo, the
last only when every broken limit is a per-minute one: waiting retryDelay (real seconds, rounded
up so a client that honours it under a time scale waits long enough) frees a slot. A broken daily
limit has no RetryInfo, like the real API's: nothing frees it before midnight Pacific. A rejected
request is not counted. TPM counts input (prompt) tokens only, as the real API does.

Vertex AI callers (emulator.vertex) come in by name too. An express caller is its key: the tier's
limits, in the same windows as that key's Developer API calls. A project route's caller is
"projects/P/locations/L" (every token of a project shares one window per location) and is held to
limits of its own, which emulator.vertex chooses and admit() is given (`limits`): Vertex's shared
quota has no requests per minute or per day, only a floor of input tokens per minute, counted
here in the same rolling window. Either way the refusal is reworded to Vertex's 429 (no
QuotaFailure, no RetryInfo) by emulator.vertex.refusal, so this module knows nothing of Vertex.

Keys are only ever used as dictionary keys here; they never reach stats, logs or error bodies.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from emulator import lineup
from emulator.errors import HELP, QUOTA_FAILURE, RETRY_INFO, ApiError
from emulator.profiles import Profile

WINDOW_S = 60.0
PACIFIC = ZoneInfo("America/Los_Angeles")
RATE_LIMITS_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"

# Requests per day per project and model, by tier and model family: the emulator's modelled
# figures (the catalogue has only requests and tokens per minute, and core/ is not the emulator's
# to change). Sources, read 2026-11:
# - https://ai.google.dev/gemini-api/docs/rate-limits: RPD is one of the three limits, counted per
#   project (not per key) and reset at midnight Pacific time. A stored (older, 2025) copy lists
#   tier 1: 2.5 Flash 10,000 and 2.5 Pro 1,000 RPD; free: 2.5 Flash 500 (preview), 2.0 Flash 1,500.
# - the suite's wire reference (gemini-wire.md): 2.5 Flash free 250, tier 1 10k, tier 2 100k, tier 3 none.
# - github.com/sh2/extension-summarize-translate-gemini/issues/36 (2025-12-07): the free tier's
#   2.5 Flash was cut from 250 to 20 requests a day; third-party guides (aifreeapi.com) give 2.5 Pro
#   100 a day on the free tier after the cut.
# Not found: Flash-Lite's free figure after the cut (modelled as Flash's 20), tier 2 Pro and
# Flash-Lite (modelled as 50k and 100k). Tier 3 publishes no daily limit. A config's
# `quotas.{model}.rpd` overrides any of these.
RPD_BY_TIER: dict[str, dict[str, int]] = {
    "free": {"pro": 100, "flash": 20, "flash-lite": 20},
    "tier1": {"pro": 1_000, "flash": 10_000, "flash-lite": 10_000},
    "tier2": {"pro": 50_000, "flash": 100_000, "flash-lite": 100_000},
}

# The real API's names for each limit: (quotaId stem, metric suffix, stats name).
_REQUESTS_PER_MINUTE = "GenerateRequestsPerMinutePerProjectPerModel"
_TOKENS_PER_MINUTE = "GenerateContentInputTokensPerModelPerMinute"
_REQUESTS_PER_DAY = "GenerateRequestsPerDayPerProjectPerModel"
# ApiError.fault per limit, as /emulator/stats' limits_hit counts them (the first broken one).
FAULTS = {"rpm": "quota_requests", "tpm": "quota_tokens", "rpd": "quota_requests_per_day"}


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None

    @property
    def none(self) -> bool:
        return self.rpm is None and self.tpm is None and self.rpd is None


@dataclass(frozen=True, slots=True)
class Violation:
    limit: str  # rpm, tpm or rpd
    value: int
    retry_s: float | None  # real seconds until enough leaves the minute window; None for rpd


def daily_limit(profile: Profile, model: str) -> int | None:
    """Requests per day for a model: the config's override, else the tier's figure for its family."""
    override = profile.quotas.get(model) or profile.quotas.get("*") or {}
    if "rpd" in override:
        return override["rpd"]
    table = RPD_BY_TIER.get(profile.quota_tier)
    family = lineup.family(model) if table else None
    return table.get(family) if table and family else None


class _Window:
    """Admitted requests of one (project, model) in the minute window, and today's count."""

    __slots__ = ("events", "tokens", "day", "today")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.tokens = 0
        self.day: date | None = None
        self.today = 0

    def prune(self, now: float, window: float, day: date) -> None:
        events = self.events
        while events and events[0][0] <= now - window:
            self.tokens -= events.popleft()[1]
        if day != self.day:
            self.day, self.today = day, 0


class Quotas:
    """The limits of every (project, model). `clock` is real monotonic seconds (tests pass a
    manual one); `wall` gives the epoch seconds the emulated day starts from, read once."""

    def __init__(
        self,
        profile: Profile,
        time_scale: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self.time_scale = time_scale
        self.window = WINDOW_S * time_scale
        self.clock = clock  # real seconds, only ever compared with itself
        self._start = clock()
        self._epoch = wall()
        self._windows: dict[tuple[tuple[str, str], str], _Window] = {}
        self._limits: dict[str, Limits] = {}
        # A project's name and a key's own project are kept apart: a key may be named like a project.
        self._projects = {key: ("project", name) for name, keys in profile.projects.items() for key in keys}

    def limits(self, model: str) -> Limits:
        if model not in self._limits:
            rpm, tpm = self.profile.quota_for(model)
            self._limits[model] = Limits(rpm, tpm, daily_limit(self.profile, model))
        return self._limits[model]

    def emulated_time(self, now: float) -> datetime:
        """The emulator's wall clock at real monotonic `now`, in Pacific time."""
        seconds = self._epoch + (now - self._start) / self.time_scale
        return datetime.fromtimestamp(seconds, PACIFIC)

    def admit(
        self, key: str, model: str, tokens: int, now: float | None = None, limits: Limits | None = None
    ) -> None:
        """Count one request of `tokens` input tokens, or raise the 429 the real API would send.
        `limits`: the caller's own instead of the tier's (a Vertex project's: emulator.vertex)."""
        limits = self.limits(model) if limits is None else limits
        if limits.none or self.window <= 0:
            return
        now = self.clock() if now is None else now
        scope = (self._projects.get(key, ("key", key)), model)
        window = self._windows.get(scope)
        if window is None:
            window = self._windows[scope] = _Window()
        window.prune(now, self.window, self.emulated_time(now).date())
        broken: list[Violation] = []
        if limits.rpm is not None and len(window.events) >= limits.rpm:
            broken.append(Violation("rpm", limits.rpm, self._retry_after(window, now, 1, count=True)))
        # A request bigger than the whole TPM is let through on an empty window, or it never could be.
        if limits.tpm is not None and window.tokens + tokens > limits.tpm and window.events:
            needed = window.tokens + tokens - limits.tpm
            broken.append(Violation("tpm", limits.tpm, self._retry_after(window, now, needed, count=False)))
        if limits.rpd is not None and window.today >= limits.rpd:
            broken.append(Violation("rpd", limits.rpd, None))
        if broken:
            raise self._exhausted(model, broken)
        window.events.append((now, tokens))
        window.tokens += tokens
        window.today += 1

    def _retry_after(self, window: _Window, now: float, needed: int, *, count: bool) -> float:
        """Real seconds until `needed` requests (count) or tokens leave the minute window."""
        freed = 0
        for stamp, tokens in window.events:
            freed += 1 if count else tokens
            if freed >= needed:
                return max(0.0, stamp + self.window - now)
        return self.window

    def _exhausted(self, model: str, broken: list[Violation]) -> ApiError:
        free = self.profile.quota_tier == "free"
        tier = "free_tier" if free else "paid_tier"
        suffix = "-FreeTier" if free else ""
        violations = []
        lines = []
        for violation in broken:
            if violation.limit == "tpm":
                metric = f"generativelanguage.googleapis.com/generate_content_{tier}_input_token_count"
                quota_id = _TOKENS_PER_MINUTE + suffix
            else:
                metric = f"generativelanguage.googleapis.com/generate_content_{tier}_requests"
                quota_id = (_REQUESTS_PER_DAY if violation.limit == "rpd" else _REQUESTS_PER_MINUTE) + suffix
            violations.append(
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(violation.value),
                }
            )
            lines.append(f"* Quota exceeded for metric: {metric}, limit: {violation.value}, model: {model}\n")
        waits = [v.retry_s for v in broken]
        # Only when every broken limit frees itself within the minute is there a time to come back.
        retry_s = None if None in waits else max(w for w in waits if w is not None)
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more "
            f"information on this error, head to: {RATE_LIMITS_URL}. "
            "To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n" + "".join(lines)
        )
        details = [
            {"@type": QUOTA_FAILURE, "violations": violations},
            {
                "@type": HELP,
                "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_URL}],
            },
        ]
        if retry_s is not None:
            message += f"Please retry in {retry_s:.6g}s."
            details.append({"@type": RETRY_INFO, "retryDelay": _duration(retry_s)})
        else:
            message = message.rstrip("\n")
        error = ApiError(429, message, details)
        error.fault = FAULTS[broken[0].limit]
        error.limits = tuple(v.limit for v in broken)
        return error


def _duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON: whole seconds as "22s", else milliseconds as "0.250s".

    Always rounded up: a client that waits exactly this long finds the slot free.
    """
    if seconds >= 1:
        return f"{math.ceil(seconds)}s"
    return f"{max(math.ceil(seconds * 1000 - 1e-6), 1) / 1000:.3f}s"
