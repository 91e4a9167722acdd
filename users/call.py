"""What one call sends (CallSpec) and what the transport saw (CallResult), timed by CallTimer.

Transports fill a CallResult; the GeminiUser base turns it into an Outcome. Keeping the raw reply
facts apart from the Outcome lets every transport share one classification and costing path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class InlineImage:
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A ready-to-send request. Built once per fixture item, outside the timed path."""

    scenario: str
    model: str
    parts: tuple[str | InlineImage, ...]
    stream: bool = False
    system_instruction: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    thinking_budget: int | None = None  # None: the model's default
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None  # JSON Schema, sent as responseJsonSchema
    safety_settings: tuple[tuple[str, str], ...] = ()  # (HARM_CATEGORY_*, BLOCK_*)
    # Context carried onto the Outcome, not sent.
    variant: str = ""
    item_id: str = ""
    expected: str = ""
    prep_ms: float = 0.0
    request_bytes: int = 0


@dataclass(slots=True)
class CallResult:
    """Facts from the server's reply; None where the server did not say."""

    text: str = ""
    http_status: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    thoughts_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str = ""
    block_reason: str = ""
    response_bytes: int = 0


@dataclass(slots=True)
class CallTimer:
    """Marks time offsets (ms) from the start of one attempt, with perf_counter."""

    started: float = field(default_factory=time.perf_counter)
    first_text_ms: float | None = None
    first_thought_ms: float | None = None
    last_chunk_ms: float | None = None
    chunk_offsets_ms: list[float] = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
        now = self.elapsed_ms()
        self.chunk_offsets_ms.append(now)
        self.last_chunk_ms = now
        if has_text and self.first_text_ms is None:
            self.first_text_ms = now
        if has_thought and self.first_thought_ms is None:
            self.first_thought_ms = now

    @property
    def gaps_ms(self) -> list[float]:
        offsets = self.chunk_offsets_ms
        return [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
