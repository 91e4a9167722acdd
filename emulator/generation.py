"""generateContent and streamGenerateContent without HTTP: the checked request, its admission
(injected faults, quota, a capacity slot) and the timed answer, as bytes for the server to write.

Order per request, like the real service: the server checks body size, key and model; then here
the request checks (400), injected faults, quota (429), a capacity slot (queue; 503/504 on
timeout), then the answer. The Generator owns every piece of state that decides an answer (the
fault injector, the quota windows, the slots, the latency draws, the answer cache) and counts what
it does in the Stats it is given; it knows nothing of the server. When the answer is a dropped
connection (an injected fault) it raises DropConnection, and the server resets the TCP connection.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from emulator import protocol, responses, tokens, vertex
from emulator.caching import CacheStore, Prefixes
from emulator.content import Answer, answer_for
from emulator.errors import ApiError, server_error
from emulator.faults import NO_FAULT, OVERLOAD_503, Draw, Faults
from emulator.files import FileStore
from emulator.latency import ZERO_PLAN, Clock, Plan, Slots, is_instant, pause, plan_for
from emulator.profiles import ModelProfile, Profile
from emulator.quotas import Limits, Quotas
from emulator.sends import SendRecord
from emulator.stats import Stats

CACHE_SIZE = 4096
RAW_KEY_MAX = 4096  # bodies up to this size key the answer cache themselves
_ERROR_FRAME = responses.dumps(server_error(500).body())

# Two answers to one prepared request differ only in their responseId, so bodies and frames are
# built once with this stand-in and the id is swapped in per request (JSON never escapes it).
RID_PLACEHOLDER = "@@response-id@@"
_RID_PLACEHOLDER = RID_PLACEHOLDER.encode()


class DropConnection(Exception):
    """The answer is a dropped connection (connection_reset, stream_cut): nothing more is sent."""


class Prepared:
    """A checked request and its answer; identical bodies give identical answers, so it is cached
    together with its response bodies and stream frames, built on first use."""

    __slots__ = (
        "prompt_tokens",
        "details",
        "answer",
        "file_ids",
        "cache_name",
        "explicit_cached",
        "prefixes",
        "_full",
        "_frames",
        "_wire",
        "_thoughts",
    )

    def __init__(self, prompt_tokens: int, details: list[dict[str, Any]], answer: Answer) -> None:
        self.prompt_tokens = prompt_tokens
        self.details = details
        self.answer = answer
        # Files its fileData parts name: whether they still exist is decided per request.
        self.file_ids: tuple[str, ...] = ()
        # Context caching (emulator.caching): the cachedContent it names and that cache's tokens,
        # else the prefixes an implicit hit may cover. A hit or a miss is decided per request, so
        # bodies and frames are kept per count of cached tokens (0: a miss; one hit count per body).
        self.cache_name = ""
        self.explicit_cached = 0
        self.prefixes: Prefixes = ()
        self._full: dict[int, bytes] = {}
        self._frames: dict[int, list[str]] = {}
        self._wire: dict[tuple[bool, int], list[bytes]] = {}
        self._thoughts = -1

    def full_body(self, model: str, rid: bytes, cached: int = 0) -> bytes:
        full = self._full.get(cached)
        if full is None:
            body = responses.full_response(
                self.answer, self.prompt_tokens, self.details, model, RID_PLACEHOLDER, cached=cached
            )
            full = self._full[cached] = responses.dumps(body, pretty=True).encode()
        return full.replace(_RID_PLACEHOLDER, rid)

    def frames(self, model: str, profile: ModelProfile, cached: int = 0) -> list[str]:
        """The JSON text of every chunk, with RID_PLACEHOLDER for the responseId."""
        frames = self._frames.get(cached)
        if frames is None:
            args = (self.answer, self.prompt_tokens, self.details, model, RID_PLACEHOLDER, profile)
            frames = self._frames[cached] = responses.stream_frames(*args, cached=cached)
        return frames

    def thought_frames(self, profile: ModelProfile) -> int:
        """How many of the stream's first frames carry the thought summary."""
        if self._thoughts < 0:
            self._thoughts = len(responses.thought_pieces(self.answer, profile))
        return self._thoughts

    def wire_frames(self, model: str, profile: ModelProfile, sse: bool, cached: int = 0) -> list[bytes]:
        """The chunks as sent (SSE events, or pieces of one JSON array), RID_PLACEHOLDER inside.

        The profile is fixed per model for the emulator's life and the cache key holds the whole
        model id, so the frames of one Prepared never change."""
        wire = self._wire.get((sse, cached))
        if wire is None:
            frames = self.frames(model, profile, cached)
            if not sse:
                frames = [responses.pretty(text) for text in frames]
            last = len(frames) - 1
            wire = self._wire[sse, cached] = [
                _frame(text, sse, i, i == last) for i, text in enumerate(frames)
            ]
        return wire


class Generator:
    """Admission and answers for every model of one emulator process."""

    def __init__(self, profile: Profile, stats: Stats, clock: Clock, seed: int | None = None) -> None:
        self.profile = profile
        self.stats = stats
        self.clock = clock
        self.seed = seed
        self.rng = random.Random(seed)  # latency draws; answers have their own per-prompt RNG
        self.faults = Faults(profile.faults, seed, clock.now)
        self.quotas = Quotas(profile, clock.time_scale)
        self._vertex_limits: dict[str, Limits] = {}
        self.slots = {name: Slots(m.capacity, m.queue_limit) for name, m in profile.models.items()}
        self._cache: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()
        self._ids = responses.ResponseIds()
        self.files = FileStore(profile, clock)  # the Files API's uploads (emulator.files)
        self.caches = CacheStore(profile, clock.now, seed)  # cachedContents, implicit hits

    def prepare(self, raw: bytes, model: str, profile: ModelProfile) -> Prepared:
        """The checked request and its answer (cached by body); raises the 400 the real API sends."""
        # The whole model id is part of the key: the same body to another model is another answer
        # (another modelVersion, thinking count and text). Not blake2b's `person`, which holds only
        # 16 bytes: gemini-2.5-flash-lite cut to 16 bytes is gemini-2.5-flash. The body, the model,
        # its profile (fixed per model for the emulator's life) and the seed decide an answer.
        # A small body is its own key (bytes hash faster than blake2b digests them); a large one,
        # its digest, so the cache never holds megabytes of images. The shapes differ, so a body
        # never meets another's digest.
        key: tuple[Any, ...] = (
            (model, raw)
            if len(raw) <= RAW_KEY_MAX
            else (model, hashlib.blake2b(raw, digest_size=16).digest(), len(raw))
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        body = protocol.parse_generate_request(raw)
        file_ids = self.files.attach(body)  # before counting: an uploaded image counts by its size
        cache = self.caches.merge_into(body, model) if body.get("cachedContent") else None
        count, details = tokens.prompt_tokens(body, profile.image_rule)
        if count > profile.input_token_limit:
            raise ApiError(
                400,
                f"The input token count ({count}) exceeds the maximum number of tokens allowed "
                f"({profile.input_token_limit}).",
            )
        prepared = Prepared(count, details, answer_for(body, model, profile, self.seed))
        prepared.file_ids = file_ids
        if cache is not None:
            prepared.cache_name, prepared.explicit_cached = cache.name, cache.tokens
        else:
            prepared.prefixes = self.caches.prefixes(body, model, profile)
        self._cache[key] = prepared
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return prepared

    def vertex_limits(self, model: str) -> Limits:
        """A Vertex project caller's limits for `model` (emulator.vertex.quota_for), built once."""
        limits = self._vertex_limits.get(model)
        if limits is None:
            limits = self._vertex_limits[model] = Limits(*vertex.quota_for(self.profile, model))
        return limits

    async def admit(
        self,
        key: str,
        model: str,
        profile: ModelProfile,
        prompt_tokens: int,
        stream: bool,
        limits: Limits | None = None,
    ) -> Draw:
        """Draw the faults, then take quota and a slot of `model`; the caller releases the slot.
        `limits`: the caller's own instead of the tier's (vertex_limits), as Quotas.admit takes them.

        Raises ApiError for an injected server error or a refusal (quota, full queue, queue
        timeout), DropConnection for an injected reset. Every fault and refusal is counted."""
        draw = self.faults.draw(stream)
        if draw is not NO_FAULT:
            for name in draw.names():
                self.stats.by_fault[name] += 1
            if draw.episodes:
                self.stats.by_fault["overload_episodes"] += draw.episodes
            if draw.slow_first_byte:
                await pause(self.clock.scaled(self.faults.params["slow_first_byte_seconds"]))
            if draw.replace_with == "connection_reset":
                raise DropConnection(draw.replace_with)
            if draw.replace_with:
                code = 503 if draw.replace_with == OVERLOAD_503 else int(draw.replace_with[-3:])
                error = server_error(code)
                error.fault = draw.replace_with
                raise error
        try:
            self.quotas.admit(key, model, prompt_tokens, limits=limits)
            slots = self.slots[model]
            if not slots.try_acquire():
                await slots.acquire(self.clock.scaled(profile.queue_timeout_s), profile.queue_timeout_status)
        except ApiError as refusal:
            self.stats.by_limit[refusal.fault] += 1
            raise
        return draw

    def _cached_tokens(self, prepared: Prepared, key: str, model: str) -> int:
        """Prompt tokens this call reads from a cache: the explicit one's, or an implicit hit's."""
        if prepared.explicit_cached:
            return prepared.explicit_cached
        return self.caches.implicit_hit(key, model, prepared.prefixes) if prepared.prefixes else 0

    def _plan(
        self, prepared: Prepared, profile: ModelProfile, slots: Slots, draw: Draw, cached: int = 0
    ) -> Plan:
        if is_instant(profile):  # the `fast` profile: all zeros, nothing drawn
            return ZERO_PLAN
        answer = prepared.answer
        plan = plan_for(
            profile,
            self.rng,
            self.clock,
            prepared.prompt_tokens - cached,  # cached tokens need no prefill
            answer.output_tokens,
            answer.thoughts_tokens,
            slots.busy_fraction,
            draw.slowdown,
        )
        if answer.block_reason:
            plan = Plan(plan.first_delay_s - plan.thinking_s, 0.0, [])
        return plan

    async def generate(
        self,
        raw: bytes,
        key: str,
        model: str,
        profile: ModelProfile,
        record: SendRecord | None = None,
        limits: Limits | None = None,
    ) -> bytes:
        """The generateContent JSON body, after admission and the answer's whole latency.
        `record` (a request with an id, emulator.sends) gets the time it was admitted, the time the
        body was due and, answered, its tokens; `limits`: the caller's own quota, if not the
        tier's (admit)."""
        prepared = self.prepare(raw, model, profile)
        if prepared.file_ids:
            self.files.require(prepared.file_ids, key)  # deleted since the body was cached: 403
        if prepared.cache_name:
            self.caches.get(prepared.cache_name, key)  # expired, deleted or another project's: 403
        draw = await self.admit(key, model, profile, prepared.prompt_tokens, stream=False, limits=limits)
        if record is not None:
            record.admitted = time.time()
        slots = self.slots[model]
        try:
            cached = self._cached_tokens(prepared, key, model)
            plan = self._plan(prepared, profile, slots, draw, cached)
            rid = self._ids.next()
            total = plan.total_s
            if record is not None:
                record.first_due = time.time() + total
            if total > 0:
                await pause(total)
            body = prepared.full_body(model, rid, cached)
            if draw.malformed_json:
                body = body[: len(body) // 2]
            answer = prepared.answer
            self.stats.served(prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
            if record is not None:
                record.tokens = (prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
            return body
        finally:
            slots.release()

    async def stream(
        self,
        raw: bytes,
        key: str,
        model: str,
        profile: ModelProfile,
        sse: bool,
        record: SendRecord | None = None,
        limits: Limits | None = None,
    ) -> AsyncIterator[bytes]:
        """The streamGenerateContent chunks as wire bytes, each yielded when it is due; `record`
        (a request with an id, emulator.sends) gets the time it was admitted, the time the first
        chunk was due and, the whole answer sent, its tokens; `limits` as generate's.

        Refusals raise before the first chunk, so the server can still answer with an error; the
        slot is held until the iterator ends or is closed (close it: contextlib.aclosing)."""
        prepared = self.prepare(raw, model, profile)
        if prepared.file_ids:
            self.files.require(prepared.file_ids, key)  # deleted since the body was cached: 403
        if prepared.cache_name:
            self.caches.get(prepared.cache_name, key)  # expired, deleted or another project's: 403
        draw = await self.admit(key, model, profile, prepared.prompt_tokens, stream=True, limits=limits)
        if record is not None:
            record.admitted = time.time()
        slots = self.slots[model]
        try:
            cached = self._cached_tokens(prepared, key, model)
            plan = self._plan(prepared, profile, slots, draw, cached)
            rid = self._ids.next()
            answer = prepared.answer
            frames = prepared.wire_frames(model, profile, sse, cached)
            thought_frames = prepared.thought_frames(profile)
            middle = len(frames) // 2
            cut_at = draw.cut_at  # an overload episode starting while this stream is under way
            first_delay = plan.first_delay_s - (plan.thinking_s if thought_frames else 0.0)
            if record is not None:
                record.first_due = time.time() + max(0.0, first_delay)
            await pause(first_delay)
            for index, frame in enumerate(frames):
                if index:
                    gap = _gap_before(plan, thought_frames, index)
                    if gap > 0:
                        await pause(gap)
                if cut_at is not None and index and self.clock.now() >= cut_at:
                    self.stats.by_fault["overload_stream_cut"] += 1
                    raise DropConnection("overload_stream_cut")
                if index == middle and draw is not NO_FAULT:
                    if index and draw.stream_stall:
                        await pause(self.clock.scaled(self.faults.params["stall_seconds"]))
                    if index and draw.stream_cut:
                        raise DropConnection("stream_cut")
                    if index and draw.stream_error_frame:
                        yield _frame(_ERROR_FRAME, sse, index, True)
                        return
                    if draw.malformed_json:
                        text = prepared.frames(model, profile, cached)[index]
                        text = text if sse else responses.pretty(text)
                        text = text.replace(RID_PLACEHOLDER, rid.decode())
                        frame = _frame(text[: len(text) // 2], sse, index, index == len(frames) - 1)
                yield frame.replace(_RID_PLACEHOLDER, rid)
                self.stats.chunks += 1
            self.stats.served(prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
            if record is not None:
                record.tokens = (prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
        finally:
            slots.release()


def _gap_before(plan: Plan, thought_frames: int, index: int) -> float:
    """Real seconds between frame index-1 and frame index (index >= 1): thinking is spread over the
    thought-summary frames and the first answer frame; answer frames follow the plan's delays."""
    if index <= thought_frames:
        return plan.thinking_s / thought_frames
    later = index - thought_frames - 1  # answer frames after the first
    return plan.chunk_delays_s[later] if 0 <= later < len(plan.chunk_delays_s) else 0.0


def count_tokens(
    raw: bytes, profile: ModelProfile, files: FileStore | None = None, key: str = ""
) -> dict[str, Any]:
    """The countTokens reply for a request body to a model; raises ApiError(400) like the real API
    (and the 403 for a fileData part naming a file `key` cannot read)."""
    body = protocol.parse_count_tokens_request(raw)
    if files is not None:
        files.require(files.attach(body), key)
    total, details = tokens.prompt_tokens(body, profile.image_rule)
    out: dict[str, Any] = {"totalTokens": total}
    if details:
        out["promptTokensDetails"] = details
    return out


def _frame(text: str, sse: bool, index: int, last: bool) -> bytes:
    """SSE: `data: {json}\\r\\n\\r\\n`. Without alt=sse: one JSON array, `[{..}\\n,\\r\\n{..}\\n]`."""
    if sse:
        return f"data: {text}\r\n\r\n".encode()
    return (("[" if index == 0 else "\n,\r\n") + text + ("\n]" if last else "")).encode()
