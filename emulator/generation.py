"""generateContent and streamGenerateContent: admission (faults, quota, capacity), then the answer.

Order per request, like the real service: body size, key, model, request checks (400), injected
faults, quota (429), a capacity slot (queue; 503/504 on timeout), then the timed answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulator import protocol, responses, tokens
from emulator.content import Answer, answer_for
from emulator.errors import ApiError, server_error
from emulator.faults import Draw
from emulator.latency import Plan, pause, plan_for
from emulator.profiles import ModelProfile

if TYPE_CHECKING:
    from emulator.server import Emulator

CACHE_SIZE = 4096
_ERROR_FRAME = responses.dumps(server_error(500).body())


RID_PLACEHOLDER = "@@response-id@@"


class Prepared:
    """A checked request and its answer; identical bodies give identical answers, so it is cached
    together with its response bodies (only the responseId differs between two answers)."""

    __slots__ = ("prompt_tokens", "details", "answer", "_full", "_frames")

    def __init__(self, prompt_tokens: int, details: list[dict[str, Any]], answer: Answer) -> None:
        self.prompt_tokens = prompt_tokens
        self.details = details
        self.answer = answer
        self._full: str | None = None
        self._frames: list[str] | None = None

    def full_body(self, model: str, rid: str) -> str:
        if self._full is None:
            body = responses.full_response(
                self.answer, self.prompt_tokens, self.details, model, RID_PLACEHOLDER
            )
            self._full = responses.dumps(body)
        return self._full.replace(RID_PLACEHOLDER, rid)

    def frames(self, model: str, rid: str, profile: ModelProfile) -> list[str]:
        if self._frames is None:
            args = (self.answer, self.prompt_tokens, self.details, model, RID_PLACEHOLDER, profile)
            self._frames = responses.stream_frames(*args)
        return [frame.replace(RID_PLACEHOLDER, rid) for frame in self._frames]


class Generator:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._cache: OrderedDict[bytes, Prepared] = OrderedDict()

    def prepare(self, raw: bytes, model: str, profile: ModelProfile) -> Prepared:
        # The model is part of the key: the same body to another model is another answer.
        key = hashlib.blake2b(raw, digest_size=16, person=model.encode()[:16]).digest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        body = protocol.parse_generate_request(raw)
        count, details = tokens.prompt_tokens(body)
        if count > profile.input_token_limit:
            raise ApiError(
                400,
                f"The input token count ({count}) exceeds the maximum number of tokens allowed "
                f"({profile.input_token_limit}).",
            )
        prepared = Prepared(count, details, answer_for(body, model, profile, self.emulator.seed))
        self._cache[key] = prepared
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return prepared

    async def handle(
        self, request: web.Request, raw: bytes, key: str, model: str, profile: ModelProfile, stream: bool
    ) -> web.StreamResponse:
        emu = self.emulator
        prepared = self.prepare(raw, model, profile)
        draw = emu.faults.draw(stream)
        if draw.names():
            for name in draw.names():
                emu.stats.by_fault[name] += 1
            if draw.slow_first_byte:
                await pause(emu.clock.scaled(emu.faults.params["slow_first_byte_seconds"]))
            if draw.replace_with == "connection_reset":
                return reset_connection(request)
            if draw.replace_with:
                error = server_error(int(draw.replace_with.removeprefix("server_")))
                error.fault = draw.replace_with
                raise error
        emu.quotas.admit(key, model, prepared.prompt_tokens)
        slots = emu.slots[model]
        await slots.acquire(emu.clock.scaled(profile.queue_timeout_s), profile.queue_timeout_status)
        try:
            answer = prepared.answer
            plan = plan_for(
                profile,
                emu.rng,
                emu.clock,
                prepared.prompt_tokens,
                answer.output_tokens,
                answer.thoughts_tokens,
                slots.busy_fraction,
            )
            if answer.block_reason:
                plan = Plan(plan.first_delay_s - plan.thinking_s, 0.0, [])
            rid = responses.response_id()
            if stream:
                return await self.stream(request, prepared, plan, model, rid, profile, draw)
            await pause(plan.total_s)
            text = prepared.full_body(model, rid)
            if draw.malformed_json:
                text = text[: len(text) // 2]
            emu.stats.served(prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
            return web.Response(body=text.encode(), content_type="application/json", charset="UTF-8")
        finally:
            slots.release()

    async def stream(
        self,
        request: web.Request,
        prepared: Prepared,
        plan: Plan,
        model: str,
        rid: str,
        profile: ModelProfile,
        draw: Draw,
    ) -> web.StreamResponse:
        emu = self.emulator
        answer = prepared.answer
        sse = request.query.get("alt") == "sse"
        frames = responses.stream_frames(
            answer, prepared.prompt_tokens, prepared.details, model, rid, profile
        )
        response = web.StreamResponse(status=200)
        response.content_type = "text/event-stream" if sse else "application/json"
        response.charset = "UTF-8"
        thought_first = bool(answer.thought_summary)
        await pause(plan.first_delay_s - (plan.thinking_s if thought_first else 0.0))
        await response.prepare(request)
        middle = len(frames) // 2
        last = len(frames) - 1
        for index, frame in enumerate(frames):
            if index == 1 and thought_first:
                await pause(plan.thinking_s)
            elif index:
                delay_index = index - (2 if thought_first else 1)
                if 0 <= delay_index < len(plan.chunk_delays_s):
                    await pause(plan.chunk_delays_s[delay_index])
            if index == middle and index:
                if draw.stream_stall:
                    await pause(emu.clock.scaled(emu.faults.params["stall_seconds"]))
                if draw.stream_cut:
                    reset_connection(request, response)
                if draw.stream_error_frame:
                    await response.write(_frame(_ERROR_FRAME, sse, index, True))
                    await response.write_eof()
                    return response
            text = frame
            if draw.malformed_json and index == middle:
                text = frame[: len(frame) // 2]
            await response.write(_frame(text, sse, index, index == last))
            emu.stats.chunks += 1
        emu.stats.served(prepared.prompt_tokens, answer.output_tokens, answer.thoughts_tokens)
        await response.write_eof()
        return response


def _frame(text: str, sse: bool, index: int, last: bool) -> bytes:
    """SSE: `data: {json}\\r\\n\\r\\n`. Without alt=sse: one JSON array, `[{..}\\n,\\r\\n{..}\\n]`."""
    if sse:
        return f"data: {text}\r\n\r\n".encode()
    return (("[" if index == 0 else "\n,\r\n") + text + ("\n]" if last else "")).encode()


def reset_connection(request: web.Request, response: web.StreamResponse | None = None) -> web.Response:
    """Drop the TCP connection with a RST (SO_LINGER 0), so the client sees a reset, not a clean close."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise InjectedReset(response)


class InjectedReset(ConnectionResetError):
    """Raised after the emulator dropped a connection on purpose (a fault, not a client going away)."""

    def __init__(self, response: web.StreamResponse | None) -> None:
        super().__init__("injected connection reset")
        self.response = response
