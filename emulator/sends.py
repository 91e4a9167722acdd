"""When the emulator sent each piece of an answer, per request id: GET /emulator/sends.

A client's TTFT error mixes two kinds of lateness: the emulator writing late (its CPU shared with
the load generator) and the client reading late. A generate request that carries `x-request-id`
is stamped here, so a benchmark can join both ends by that id and tell them apart:
- `received`: wall clock (time.time()) when the handler began;
- `first_due`: wall time at which the latency model meant the first body byte to leave (the whole
  body, for a unary reply); null when no answer was planned (a refusal, an injected error);
- `sent`: wall time right after each body piece was handed to the transport: every SSE event or
  JSON-array piece of a stream, the single body of a unary reply or an error;
- `status`: the HTTP status, "reset" for an injected TCP reset, 499 when the client went away.
A request without the header is not recorded at all. A repeated id keeps its latest request.
At most `limit` ids are kept, the oldest dropped first and counted in `dropped`.
"""

from __future__ import annotations

import time
from typing import Any

LIMIT = 100_000


class SendRecord:
    __slots__ = ("received", "first_due", "sent", "status")

    def __init__(self, received: float) -> None:
        self.received = received
        self.first_due: float | None = None
        self.sent: list[float] = []
        self.status: int | str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "first_due": self.first_due,
            "sent": self.sent,
            "status": self.status,
        }


class SendLog:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = max(1, limit)
        self._records: dict[str, SendRecord] = {}  # insertion order is age: the first is the oldest
        self.dropped = 0

    def open(self, request_id: str) -> SendRecord:
        record = SendRecord(time.time())
        records = self._records
        records.pop(request_id, None)  # re-inserted: a repeated id counts as new, not as oldest
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
    connections) keeps its latest request, like one worker's log would."""
    sends: dict[str, dict[str, Any]] = {}
    dropped = 0
    for snapshot in snapshots:
        dropped += snapshot.get("dropped", 0)
        for rid, record in snapshot.get("sends", {}).items():
            if rid not in sends or record["received"] > sends[rid]["received"]:
                sends[rid] = record
    return {"sends": sends, "dropped": dropped}
