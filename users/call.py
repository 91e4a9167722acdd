"""What one call sends (CallSpec) and what the transport saw (CallResult), timed by CallTimer.

Transports fill a CallResult; the GeminiUser base turns it into an Outcome. Keeping the raw reply
facts apart from the Outcome lets every transport share one classification and costing path.

`rest_body` is the one description of what a spec sends. Every transport encodes from it (the http
transport sends it as is, the SDK transports read their request objects out of it), so a new
CallSpec field that reaches the wire is added here twice: the field, and its line in `rest_body`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from users import arrival

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InlineImage:
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class FileImage:
    """An image already uploaded through the Files API, sent as a fileData part naming it."""

    mime_type: str
    uri: str


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A ready-to-send request. Built once per fixture item, outside the timed path."""

    scenario: str
    model: str
    parts: tuple[str | InlineImage | FileImage, ...]
    stream: bool = False
    system_instruction: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    thinking_budget: int | None = None  # None: the model's default
    thinking_level: str | None = None  # None: the model's default
    media_resolution: str | None = None  # MEDIA_RESOLUTION_*; None: the model's default
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None  # JSON Schema, sent as responseJsonSchema
    safety_settings: tuple[tuple[str, str], ...] = ()  # (HARM_CATEGORY_*, BLOCK_*)
    cached_content: str | None = None  # cachedContents/...: an explicit cache the call names
    # Context carried onto the Outcome, not sent.
    variant: str = ""
    item_id: str = ""
    expected: str = ""
    prep_ms: float = 0.0
    request_bytes: int = 0
    # Each transport's encoding of this spec (REST bytes, SDK request objects), made on first use and
    # shared by every user that sends the spec. Kept on the spec, not in a module-level table, so it
    # lives and dies with the spec; dataclasses.replace() starts a fresh, empty one.
    payloads: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def payload(self, encoding: str, encode: Callable[[CallSpec], T]) -> T:
        """This spec encoded by `encode`, built on the first call for `encoding` and reused after.

        Two greenlets racing on a first use both build it and the last one is kept: harmless, as
        the results are equal, and cheaper than a lock on every call.
        """
        try:
            return self.payloads[encoding]
        except KeyError:
            value = self.payloads[encoding] = encode(self)
            return value


def rest_body(spec: CallSpec, image_data: Callable[[bytes], str] | None = None) -> dict[str, Any]:
    """The generateContent body of a spec in the REST API's own casing (camelCase, enum names).

    The one description of what a spec sends: the http transport encodes it, and the request size
    recorded on every Outcome is measured from it.
    """
    encode = image_data or (lambda data: base64.b64encode(data).decode("ascii"))
    parts: list[dict[str, Any]] = []
    for part in spec.parts:
        if isinstance(part, InlineImage):
            parts.append({"inlineData": {"mimeType": part.mime_type, "data": encode(part.data)}})
        elif isinstance(part, FileImage):
            parts.append({"fileData": {"mimeType": part.mime_type, "fileUri": part.uri}})
        else:
            parts.append({"text": part})
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if spec.system_instruction is not None:
        body["systemInstruction"] = {"parts": [{"text": spec.system_instruction}]}
    config: dict[str, Any] = {}
    if spec.max_output_tokens is not None:
        config["maxOutputTokens"] = spec.max_output_tokens
    if spec.temperature is not None:
        config["temperature"] = spec.temperature
    if spec.thinking_budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": spec.thinking_budget}
    if spec.thinking_level is not None:
        config["thinkingConfig"] = {"thinkingLevel": spec.thinking_level}
    if spec.media_resolution is not None:
        config["mediaResolution"] = spec.media_resolution
    if spec.response_mime_type is not None:
        config["responseMimeType"] = spec.response_mime_type
    if spec.response_schema is not None:
        config["responseJsonSchema"] = spec.response_schema
    if config:
        body["generationConfig"] = config
    if spec.cached_content is not None:
        body["cachedContent"] = spec.cached_content
    if spec.safety_settings:
        body["safetySettings"] = [{"category": c, "threshold": t} for c, t in spec.safety_settings]
    return body


def rest_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


REST_JSON = "rest_json"  # the payloads key of the encoded REST body


def rest_payload(spec: CallSpec) -> bytes:
    """The spec's REST JSON body, images inline as base64: encoded once, kept on the spec, and
    shared by every transport that sends REST JSON itself."""
    return spec.payload(REST_JSON, lambda s: rest_json(rest_body(s)))


def with_request_bytes(spec: CallSpec) -> CallSpec:
    """The spec with request_bytes set to the size of its REST body, images inline as base64.

    The base64 text itself is not built (for an 8K photo that is megabytes): only its length counts.
    """
    size = len(rest_json(rest_body(spec, image_data=lambda data: "")))
    size += sum(4 * ((len(p.data) + 2) // 3) for p in spec.parts if isinstance(p, InlineImage))
    return dataclasses.replace(spec, request_bytes=size)


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
    """Marks time offsets (ms) from the start of one attempt, with perf_counter.

    A mark is when the bytes arrived, from the kernel's receive stamp (users.arrival), where the
    transport's socket gives one; otherwise when they were read. `read_delay_ms` is how much later
    than their arrival the generator read them (its recv), at worst over the attempt's marks.
    """

    started: float = field(default_factory=time.perf_counter)
    first_text_ms: float | None = None
    first_thought_ms: float | None = None
    last_chunk_ms: float | None = None
    chunk_offsets_ms: list[float] = field(default_factory=list)
    read_delay_ms: float | None = None
    stamped_marks: int = 0
    read_marks: int = 0
    request_id: str = ""  # sent as x-request-id by the http transport when set (benchmarks join on it)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def mark(self) -> float:
        """Now, as perf_counter seconds: the arrival of the bytes just read when the kernel stamped them."""
        stamp = arrival.latest(self.started)
        if stamp is None:
            self.read_marks += 1
            return time.perf_counter()
        self.stamped_marks += 1
        arrived, read = stamp
        late_ms = (read - arrived) * 1000.0
        if self.read_delay_ms is None or late_ms > self.read_delay_ms:
            self.read_delay_ms = late_ms
        return arrived

    @property
    def arrival_clock(self) -> str:
        """`kernel` when every mark was an arrival stamp, `read` when any was a read time, else ""."""
        if self.read_marks:
            return arrival.READ
        return arrival.KERNEL if self.stamped_marks else ""

    def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
        now = (self.mark() - self.started) * 1000.0
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
