"""The two fronts' side of a generate request: what Emulator.generate_route reads and writes.

emulator.fastpath serves the hot routes on its own lean HTTP/1.1 protocol; aiohttp serves the rest
(and every request on a connection fastpath handed over). Both answer a generate request through a
Wire, so checks, counters, answers and send stamps are the same code whichever parsed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import typing
from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator import protocol


class Wire(typing.Protocol):
    """What generate_route needs of the front that parsed the request: its key, Authorization
    header (the Vertex routes' bearer token), id and alt=sse, its body, and a way to answer (a whole
    body, or a chunked stream), or to reset the connection."""

    api_key: str | None
    authorization: str | None
    request_id: str | None
    sse: bool

    async def body(self) -> bytes: ...

    async def send(self, status: int, body: bytes) -> None:
        """A whole JSON response, written before this returns."""

    async def write(self, chunk: bytes) -> None:
        """One piece of a chunked stream (the headers go with the first), written before this returns."""

    async def end(self) -> None: ...

    def reset(self) -> None: ...


class AiohttpWire:
    """The Wire of a request that aiohttp parsed (emulator.fastpath hands it every request it does
    not serve itself). It writes the response before the handler returns, so the stamps are true."""

    __slots__ = ("request", "response", "api_key", "authorization", "request_id", "sse", "_read")

    def __init__(self, request: web.Request, read: Callable[[web.Request], Awaitable[bytes]]) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self.api_key = protocol.api_key_of(request.headers, request.query)
        self.authorization = request.headers.get("Authorization")
        self.request_id = request.headers.get("x-request-id")
        self.sse = request.query.get("alt") == "sse"
        self._read = read

    async def body(self) -> bytes:
        return await self._read(self.request)

    async def send(self, status: int, body: bytes) -> None:
        response = web.Response(status=status, body=body, content_type="application/json", charset="UTF-8")
        self.response = response
        await response.prepare(self.request)
        await response.write_eof()

    async def write(self, chunk: bytes) -> None:
        if self.response is None:
            response = self.response = web.StreamResponse(status=200)
            response.content_type = "text/event-stream" if self.sse else "application/json"
            response.charset = "UTF-8"
            await response.prepare(self.request)
        await self.response.write(chunk)

    async def end(self) -> None:
        assert self.response is not None, "a stream has at least one chunk"
        await self.response.write_eof()

    def reset(self) -> None:
        reset_transport(self.request.transport)


def reset_transport(transport: asyncio.BaseTransport | None) -> None:
    """Drop the TCP connection with a RST (SO_LINGER 0), so the client sees a reset, not a clean close."""
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
