"""The Outcome: one record per logical Gemini call, after retries.

It is the hand-off between users/ (who make the call) and metrics/ (who count it). Plain data only,
so it can be written to the per-request log as one CSV row and read back by reports/ with pandas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Error kinds (DESIGN.md). A blocked answer is an answer, not an API failure: it is counted apart.
# A cancelled call is neither: the run stopped (its user was killed) while the call was in flight,
# retrying or backing off. It says nothing about the service, so it is counted apart too.
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION = "connection"
CLIENT_ERROR = "client_error"
BLOCKED = "blocked"
INVALID_RESPONSE = "invalid_response"
CANCELLED = "cancelled"
# The client's own policy (users/policies: an open circuit breaker) chose not to send the call: no
# answer, so a failure, but the client's decision, never the server's; reports count it apart from
# the server's 429s and 5xx.
SHED = "shed"
ERROR_KINDS = (
    RATE_LIMITED, SERVER_ERROR, TIMEOUT, CONNECTION, CLIENT_ERROR, BLOCKED, INVALID_RESPONSE, CANCELLED, SHED,
)  # fmt: skip
# Kinds counted apart, never as failures of the API: an answer (blocked), or no verdict (cancelled).
APART_KINDS = frozenset({BLOCKED, CANCELLED})
# Kinds that count as failures of the API in Locust's stats (everything but `blocked` and `cancelled`).
FAILURE_KINDS = frozenset(ERROR_KINDS) - APART_KINDS
ATTEMPT_KINDS_SEPARATOR = ";"
ITEM_SEPARATOR = ";"  # between the items of a batched call in item_id, verdict and expected


@dataclass(slots=True)
class Outcome:
    scenario: str
    model: str
    transport: str
    start_time: float  # wall clock, epoch seconds, when the first attempt began
    e2e_ms: float = 0.0  # what the caller waited, retries and backoff included
    ttft_ms: float | None = None  # first chunk with non-empty answer text (streaming)
    first_thought_ms: float | None = None
    last_chunk_ms: float | None = None
    chunk_count: int = 0
    prompt_tokens: int | None = None  # from usageMetadata; None when the server did not say
    output_tokens: int | None = None
    thoughts_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str = ""
    block_reason: str = ""
    http_status: int | None = None
    error_kind: str = ""  # one of ERROR_KINDS, or "" for success
    error_message: str = ""  # redacted: never holds an API key
    attempts: int = 1  # requests sent for this call, the one in flight at a stop included
    backoff_ms: float = 0.0
    # The error kind of every attempt that got no answer, in order, ";"-joined: each failed attempt's
    # kind, then `cancelled` for an attempt the stop cut off in flight. A call that failed or was
    # cancelled in flight lists one kind per attempt; an answered one lists those before its answer.
    attempt_kinds: str = ""
    request_bytes: int = 0
    response_bytes: int = 0
    prep_ms: float = 0.0  # client-side preparation outside the timed call (image resizing...)
    cost_usd: float = 0.0
    thoughts_cost_usd: float = 0.0  # the part of cost_usd paid for thinking tokens
    # What context caching saved: cached prompt tokens at the full input price minus the cached one
    # (cost_usd + this = the same call at the full input price).
    cached_saving_usd: float = 0.0
    # Scenario context, so reports can split by lever and check moderation answers.
    variant: str = ""  # e.g. image mode raw|optimized, prompt size bucket
    item_id: str = ""  # which fixture item was sent
    verdict: str = ""  # parsed answer, for moderation
    expected: str = ""  # the fixture's label
    stage: str = ""  # load-shape stage when the call started
    schedule_lag_ms: float | None = None  # open-model runs: how late the call started
    gaps_ms: list[float] = field(default_factory=list)  # between consecutive chunks (streaming)
    # Where the times above came from (users/arrival.py): "kernel" when every one was the kernel's
    # receive stamp of the bytes, "read" when any was the time the generator read them (the legacy
    # SDK over https, a proxy, no SO_TIMESTAMPNS), "" when no reply was read. read_delay_ms: how long
    # after the bytes arrived the generator read them, at worst over the call's last attempt.
    arrival_clock: str = ""
    read_delay_ms: float | None = None
    # The client policy (users/policies): what the client itself decided about this call.
    policy: str = ""  # the run's --client-policy, e.g. "aimd+breaker"; "" or "retry": retries only
    throttle_ms: float = 0.0  # time the policy held the call's attempts (limiter, aimd) before sending
    policy_action: str = ""  # "" | "fallback" (a breaker sent it to its fallback model) | "shed"
    # Model tiering (users/tiering.py): the answer's own confidence (0..1, from the answer's JSON),
    # and, for a tiered call, the first (cheap) tier's part; e2e, cost and verdict above are blended.
    confidence: float | None = None
    tier: str = ""  # "" untiered | "first" (the first tier's answer stood) | "escalated"
    first_model: str = ""
    first_verdict: str = ""
    first_confidence: float | None = None
    first_e2e_ms: float | None = None
    first_cost_usd: float | None = None
    # The app user (users/app.py): the request id it sent to the user's own service, which the
    # service forwards on its model calls; the emulator files them under it (model_calls.csv).
    request_id: str = ""
    # Batching: items one call carried (moderation --batch-size); item_id, verdict and expected
    # then hold one value per item, ";"-joined in the same order.
    batch_size: int = 1

    @property
    def ok(self) -> bool:
        return not self.error_kind

    @property
    def failed(self) -> bool:
        return self.error_kind in FAILURE_KINDS

    @property
    def cancelled(self) -> bool:
        return self.error_kind == CANCELLED

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first: (last - first) / (output tokens - 1)."""
        if self.ttft_ms is None or self.last_chunk_ms is None or not self.output_tokens:
            return None
        if self.output_tokens < 2:
            return None
        return (self.last_chunk_ms - self.ttft_ms) / (self.output_tokens - 1)

    def as_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["gaps_ms"] = " ".join(f"{g:.1f}" for g in self.gaps_ms)
        row["tpot_ms"] = self.tpot_ms
        return row


OUTCOME_COLUMNS: tuple[str, ...] = (*(f.name for f in dataclasses.fields(Outcome)), "tpot_ms")
