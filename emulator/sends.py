"""When the emulator sent each piece of an answer, and what the model side did, per request id:
GET /emulator/sends.

A client's TTFT error mixes two kinds of lateness: the emulator writing late (its CPU shared with
the load generator) and the client reading late. A generate request that carries `x-request-id`
is stamped here, so a benchmark can join both ends by that id and tell them apart. The same id
also splits an app's latency: the suite's app user sends an id to the user's service, the service
forwards it on its model calls to the emulator, and the app user joins these figures with its own
calls by that id into "before the model call + model time + after".

Per id, of its latest request (a repeated id keeps its latest request):
- `received`: wall clock (time.time()) when the handler began;
- `first_due`: wall time at which the latency model meant the first body byte to leave (the whole
  body, for a unary reply); null when no answer was planned (a refusal, an injected error);
- `sent`: wall time right after each body piece was handed to the transport: every SSE event or
  JSON-array piece of a stream, the single body of a unary reply or an error;
- `status`: the HTTP status, "reset" for an injected TCP reset, 499 when the client went away;
  null while it is under way;
- `model`: the model its route named;
- `admitted`: wall time when it got past admission (injected faults, quota, a free slot of the
  model); null if it never did (refused, or still queued).
Summed over every finished request (call) that carried the id: a service that retries, or makes
several model calls per user request (in turn or at once), forwards one id several times:
- `calls`: how many finished;
- `first_received`: the earliest `received` among them (null while none finished);
- `last_end`: the latest end among them: its last body piece sent, or when it ended having sent
  nothing (null while none finished). With calls at once, the last to end need not be the latest;
- `queue_ms`: admitted - received per call; a call refused before admission counts its whole
  time (received to its refusal) as queue, for it waited for nothing else;
- `model_ms`: its last body piece sent - received per call (the end, for a call that sent
  nothing: a reset, a client gone), so it includes `queue_ms`;
- `prompt_tokens`, `output_tokens`, `thoughts_tokens`: what usageMetadata said, over the calls
  answered in full (cached tokens are part of the prompt's); 0 when none was.
A request without the header is not recorded at all and costs nothing here. At most `limit` ids
are kept, the oldest dropped first (sums included) and counted in `dropped`.
"""

from __future__ import annotations

import time
from typing import Any

LIMIT = 100_000
_SUMMED = ("calls", "queue_ms", "model_ms", "prompt_tokens", "output_tokens", "thoughts_tokens")


class SendTotals:
    """One id's sums over its finished requests, shared by every request with that id."""

    __slots__ = (
        "calls",
        "first_received",
        "last_end",
        "queue_s",
        "model_s",
        "prompt_tokens",
        "output_tokens",
        "thoughts_tokens",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.first_received: float | None = None
        self.last_end: float | None = None
        self.queue_s = 0.0
        self.model_s = 0.0
        self.prompt_tokens = 0
        self.output_tokens = 0
        self.thoughts_tokens = 0


class SendRecord:
    """One request with an id. `tokens` (prompt, output, thoughts) is set when it was answered."""

    __slots__ = ("received", "first_due", "sent", "status", "model", "admitted", "tokens", "totals")

    def __init__(self, received: float, model: str = "", totals: SendTotals | None = None) -> None:
        self.received = received
        self.first_due: float | None = None
        self.sent: list[float] = []
        self.status: int | str | None = None
        self.model = model
        self.admitted: float | None = None
        self.tokens: tuple[int, int, int] | None = None
        self.totals = SendTotals() if totals is None else totals

    def finish(self, status: int | str) -> None:
        """The request ended with `status`: add it to its id's sums. Requests with one id may
        overlap, so each adds its own figures when it ends; one whose id was dropped meanwhile
        (the limit, a reset) adds them to sums nobody reads."""
        self.status = status
        end = self.sent[-1] if self.sent else time.time()
        received = self.received
        totals = self.totals
        totals.calls += 1
        if totals.first_received is None or received < totals.first_received:
            totals.first_received = received
        if totals.last_end is None or end > totals.last_end:
            totals.last_end = end
        admitted = self.admitted
        totals.queue_s += (end if admitted is None else admitted) - received
        totals.model_s += end - received
        if self.tokens is not None:
            prompt, output, thoughts = self.tokens
            totals.prompt_tokens += prompt
            totals.output_tokens += output
            totals.thoughts_tokens += thoughts

    def as_dict(self) -> dict[str, Any]:
        totals = self.totals
        return {
            "received": self.received,
            "first_due": self.first_due,
            "sent": self.sent,
            "status": self.status,
            "model": self.model,
            "admitted": self.admitted,
            "calls": totals.calls,
            "first_received": totals.first_received,
            "last_end": totals.last_end,
            "queue_ms": round(totals.queue_s * 1000, 3),
            "model_ms": round(totals.model_s * 1000, 3),
            "prompt_tokens": totals.prompt_tokens,
            "output_tokens": totals.output_tokens,
            "thoughts_tokens": totals.thoughts_tokens,
        }


class SendLog:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = max(1, limit)
        self._records: dict[str, SendRecord] = {}  # insertion order is age: the first is the oldest
        self.dropped = 0

    def open(self, request_id: str, model: str = "") -> SendRecord:
        """A new request with `request_id` to `model`: now the id's latest, sharing its sums.
        Call its finish() when it ends."""
        records = self._records
        # Re-inserted: a repeated id counts as new, not as oldest.
        previous = records.pop(request_id, None)
        record = SendRecord(time.time(), model, None if previous is None else previous.totals)
        records[request_id] = record
        if len(records) > self.limit:
            del records[next(iter(records))]
            self.dropped += 1
        return record

    def __len__(self) -> int:
        return len(self._records)

    def snapshot(self) -> dict[str, Any]:
        return {"sends": {rid: r.as_dict() for rid, r in self._records.items()}, "dropped": self.dropped}

    def reset(self) -> None:
        self._records.clear()
        self.dropped = 0


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' snapshots as one: an id seen by two (a client reusing it across
    connections) keeps its latest request's fields, like one worker's log would, and sums the
    rest (calls, queue_ms, model_ms, tokens; the earliest first_received, the latest last_end)."""
    sends: dict[str, dict[str, Any]] = {}
    dropped = 0
    for snapshot in snapshots:
        dropped += snapshot.get("dropped", 0)
        for rid, record in snapshot.get("sends", {}).items():
            seen = sends.get(rid)
            if seen is None:
                sends[rid] = record
                continue
            latest = record if record["received"] > seen["received"] else seen
            combined = dict(latest)
            for name in _SUMMED:
                combined[name] = seen.get(name, 0) + record.get(name, 0)
            for name in ("queue_ms", "model_ms"):  # as one log rounds them
                combined[name] = round(combined[name], 3)
            firsts = [r["first_received"] for r in (seen, record) if r.get("first_received") is not None]
            combined["first_received"] = min(firsts) if firsts else None
            lasts = [r["last_end"] for r in (seen, record) if r.get("last_end") is not None]
            combined["last_end"] = max(lasts) if lasts else None
            sends[rid] = combined
    return {"sends": sends, "dropped": dropped}
