"""Counters behind GET /emulator/stats: requests by route, model, status and fault; tokens served;
access tokens issued and refused (emulator.oauth, emulator.auth).

One Stats per emulator process, shared by the server (requests, statuses) and the generator
(faults, limits, tokens, chunks); POST /emulator/stats/reset zeroes it in place for that reason.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any


class Stats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # epoch seconds: started_at and uptime_s
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter. in_flight is a gauge, not a counter: calls under way still end."""
        self.started_at = self.clock()
        self.requests = 0
        self.by_route: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_fault: Counter[str] = Counter()
        self.by_limit: Counter[str] = Counter()  # quota_requests, quota_tokens, queue_timeout, queue_full
        # Quota 429s by each limit they broke (rpm, tpm, rpd): one 429 can break several.
        self.by_quota: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.chunks = 0
        # POST /token (not an API call: not in requests_total) and the Vertex routes' auth refusals.
        self.tokens_issued = 0
        self.grants_refused = 0  # token requests refused
        self.auth_refusals: Counter[str] = Counter()  # by status: 401, 403 (400: a bad express key)
        self.max_in_flight = self.in_flight

    def begin(self, route: str, model: str | None) -> None:
        self.requests += 1
        self.by_route[route] += 1
        if model:
            self.by_model[model] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self, status: int | str) -> None:
        self.in_flight -= 1
        self.by_status[str(status)] += 1

    def served(self, prompt: int, output: int, thoughts: int) -> None:
        self.tokens["prompt"] += prompt
        self.tokens["output"] += output
        self.tokens["thoughts"] += thoughts

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "started_at": self.started_at,
            "uptime_s": round(self.clock() - self.started_at, 3),
            "requests_total": self.requests,
            "requests_by_route": dict(self.by_route),
            "requests_by_model": dict(self.by_model),
            "responses_by_status": dict(self.by_status),
            "faults_injected": dict(self.by_fault),
            "limits_hit": dict(self.by_limit),
            "quota_429s_by_limit": {k: self.by_quota.get(k, 0) for k in ("rpm", "tpm", "rpd")},
            "tokens_served": {k: self.tokens.get(k, 0) for k in ("prompt", "output", "thoughts")},
            "chunks_streamed": self.chunks,
            # Counts only: a token never appears in stats (they are written into results folders).
            # The names stay clear of the report's secret-name filter (reports.metadata.scrub),
            # which would hide an `auth` or `token_...` entry.
            "oauth": {
                "tokens_issued": self.tokens_issued,
                "grants_refused": self.grants_refused,
                "refusals_by_status": {"401": 0, "403": 0, **self.auth_refusals},
            },
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }
        if extra:
            data.update(extra)
        return data
