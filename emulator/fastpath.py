"""A lean HTTP/1.1 front for the two routes that take nearly all the traffic.

Why: per non-streaming request, aiohttp's machinery (its protocol, request and response objects,
router, a task per request) cost about three times the emulator's own work (cProfile under
`python -m benchmarks emulator`), so a dry run at the suite's top rate measured the emulator.

Every connection starts on FastProtocol, which serves generateContent and streamGenerateContent in
their plain form, on the Developer API's routes and on Vertex AI's (emulator.fasthead says which
requests exactly). At the first request that is anything else the connection is handed to aiohttp's
own protocol, at a request boundary (answers under way written first), with every byte not yet
answered, and stays there: aiohttp then serves it as before, generate routes included. Both fronts
answer a generate request through Emulator.generate_route (emulator.wire), so checks (a Vertex
request's auth included), counters, faults, quotas, timing and send stamps are one code; a
response's bytes are the ones aiohttp writes (status line, headers, chunked framing), and an idle
connection is closed after aiohttp's 75 s.

A request's coroutine runs eagerly in data_received (emulator.eager) and gets a task only when it
waits (latency, a queue slot, a slow reader): with no latency to play, as in benchmarks, most never
do. The answers to pipelined requests read together leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from aiohttp.http import SERVER_SOFTWARE

from emulator.eager import start_eagerly
from emulator.fasthead import FAST_BODY_MAX, Head, parse_head
from emulator.server import Emulator
from emulator.vertex import VertexTarget
from emulator.wire import reset_transport

MAX_HEAD = 1 << 15  # a longer head goes to aiohttp, which answers it as it always did
MAX_WAITING = 1 << 20  # pipelined bytes held while a request waits before reading pauses
HEADS_KEPT = 4096
KEEPALIVE_S = 75.0  # aiohttp's keepalive_timeout: an idle connection is closed after it

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_TAIL = b"Server: " + SERVER_SOFTWARE.encode() + b"\r\n"
_JSON = b"application/json; charset=UTF-8"
_STREAM_TYPES = {True: b"text/event-stream; charset=utf-8", False: b"application/json; charset=utf-8"}
_CLOSE = b"Connection: close\r\n"
_FAILED = b"500 Internal Server Error\n\nServer got itself in trouble"
_log = logging.getLogger(__name__)


class _Date:
    """The Date header line, formatted once a second rather than per response."""

    second = -1
    line = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second = second
            cls.line = b"Date: " + formatdate(second, usegmt=True).encode() + b"\r\n"
        return cls.line


class FastProtocol(asyncio.Protocol):
    """One client connection while it asks only for the hot routes; it is also the Wire
    (emulator.wire) of the request under way, since a connection runs one request at a time."""

    def __init__(
        self,
        emulator: Emulator,
        fallback: Callable[[], asyncio.Protocol],
        live: set[FastProtocol],
        heads: dict[bytes, Head],
    ) -> None:
        self.emulator = emulator
        # Parsed heads of requests without an id, shared by the site's connections: a client sends
        # the same few heads again and again (they differ by target and Content-Length only).
        self.heads = heads
        self.fallback = fallback  # aiohttp's protocol factory, for a connection handed over
        self.live = live
        self.body_max = min(FAST_BODY_MAX, emulator.profile.max_request_bytes)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.task: asyncio.Future[Any] | None = None  # the request under way, when it waits
        self.done = False  # closed, reset or handed over: nothing more is served here
        self.write_paused = False
        self.read_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.last_active = self.loop.time()  # of the last bytes read (FastSite closes idle ones)
        # Answers written while serve() runs, sent in one write when it returns: pipelined requests
        # cost one send, not one each. A request with an id writes at once, so its stamps are true.
        self.pending: list[bytes] | None = None
        # The request under way (the Wire's fields).
        self.api_key: str | None = None
        self.authorization: str | None = None
        self.target: VertexTarget | None = None  # a Vertex route's (emulator.vertex), else None
        self.request_id: str | None = None
        self.sse = False
        self.raw = b""
        self.close_after = False
        self.started = False  # a stream's head is out

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as aiohttp does
        self.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.live.discard(self)
        self.done = True
        if self.task is not None:
            # Soon, not now: a task not yet started would drop the cancellation before the request
            # saw it (and keep its capacity slot); by then it has run to its first wait.
            self.loop.call_soon(self.task.cancel)
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        self.buffer = self.buffer + data if self.buffer else data
        if self.task is None and not self.write_paused:
            self.serve()
        elif len(self.buffer) > MAX_WAITING and not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; a request under way finds it closing, as under aiohttp

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if self.task is None and not self.done:
            self.serve()

    # ---- requests ------------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer every complete request in the buffer, in order, until one has to wait."""
        self.pending = []
        try:
            self._serve()
        finally:
            self.flush()
            self.pending = None

    def _serve(self) -> None:
        buffer, start = self.buffer, 0
        while not self.done and not self.write_paused:
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                if len(buffer) - start > MAX_HEAD:
                    return self.hand_over(buffer[start:])
                break
            head = self.parse(buffer, start, end)
            if head is None:
                return self.hand_over(buffer[start:])
            body_end = end + 4 + head.length
            if len(buffer) < body_end:
                break
            self.raw = buffer[end + 4 : body_end]
            start = body_end
            if not self.run(head.version, head.model, head.method, head.target):
                break  # it waits; resumed() serves the rest
        self.buffer = buffer[start:] if start else buffer
        if self.read_paused and self.task is None and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def flush(self) -> None:
        pending = self.pending
        if pending:
            data = b"".join(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            if self.transport is not None:
                self.transport.write(data)

    def out(self, data: bytes) -> None:
        if self.pending is not None and self.request_id is None:
            self.pending.append(data)
        else:
            self.flush()
            self._writable().write(data)

    def parse(self, buffer: bytes, start: int, end: int) -> Head | None:
        """The head of a request this front serves, else None; sets the Wire's fields."""
        head_bytes = buffer[start:end]
        head = self.heads.get(head_bytes)
        if head is None:
            head = parse_head(head_bytes, self.body_max)
            if head is None:
                return None
            if head.request_id is None:  # an id is new each time: no use keeping its head
                if len(self.heads) >= HEADS_KEPT:
                    self.heads.clear()
                self.heads[head_bytes] = head
        self.api_key, self.request_id, self.sse, self.close_after = head[4:8]
        self.authorization, self.target = head.authorization, head.target
        self.started = False
        return head

    def run(self, version: str, model: str, method: str, target: VertexTarget | None) -> bool:
        """Start one request; True when it is already answered."""
        try:
            route = self.emulator.generate_route(self, version, model, method, target)
            task = start_eagerly(route, self.loop)
        except Exception as exc:  # noqa: BLE001 - ended() tells a client gone from a bug
            self.ended(exc)
            return True
        if task is not None and not task.done():
            self.task = task
            task.add_done_callback(self.resumed)
            return False
        if task is not None and not task.cancelled():
            self.ended(task.exception())
        self.finish()
        return True

    def resumed(self, task: asyncio.Future[Any]) -> None:
        self.task = None
        self.last_active = self.loop.time()  # idle from the end of a long answer, not its start
        if not task.cancelled():
            self.ended(task.exception())
        self.finish()
        if not self.done and not self.write_paused and self.buffer:
            self.serve()

    def ended(self, exc: BaseException | None) -> None:
        """A request's own end: nothing, a client gone (already counted as 499), or a bug."""
        if isinstance(exc, ConnectionResetError):
            self.done = True  # as aiohttp, which ignores a premature client disconnection
        elif exc is not None:
            self.crashed(exc)

    def finish(self) -> None:
        if self.close_after and not self.done and self.transport is not None:
            self.done = True
            self.flush()
            self.transport.close()

    def crashed(self, exc: BaseException) -> None:
        """A bug, not an answer: logged, and the client gets aiohttp's plain 500 or a cut stream."""
        _log.error("error handling a generate request", exc_info=exc)
        self.flush()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.done = True
        if self.started:
            transport.abort()
            return
        head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
        length = b"Content-Length: %d\r\n" % len(_FAILED)
        transport.write(head + length + _Date.now() + _TAIL + _CLOSE + b"\r\n" + _FAILED)
        transport.close()

    def hand_over(self, unread: bytes) -> None:
        """From now on aiohttp serves this connection, starting with `unread`."""
        self.done = True
        self.buffer = b""
        self.live.discard(self)
        self.flush()  # our answers before aiohttp's
        transport = self.transport
        assert transport is not None
        protocol = self.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.read_paused:
            transport.resume_reading()
        if unread:
            protocol.data_received(unread)

    def idle_since(self) -> float | None:
        """When this connection last read, if nothing is under way or waiting to be read."""
        return None if self.task is not None or self.buffer else self.last_active

    def close(self) -> None:
        """At shutdown or when idle: stop a request under way and close."""
        self.done = True
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.transport.close()

    # ---- the Wire (emulator.wire) --------------------------------------------------------------

    async def body(self) -> bytes:
        return self.raw

    async def send(self, status: int, body: bytes) -> None:
        self._writable()
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            status,
            _REASONS.get(status, b"Unknown"),
            _JSON,
            len(body),
        )
        close = _CLOSE if self.close_after else b""
        self.out(head + _Date.now() + _TAIL + close + b"\r\n" + body)

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return  # an empty chunk would end the stream
        self._writable()
        piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        if not self.started:
            self.started = True
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                % (_STREAM_TYPES[self.sse])
            )
            close = _CLOSE if self.close_after else b""
            piece = head + _Date.now() + _TAIL + close + b"\r\n" + piece
        self.out(piece)
        if self.write_paused:
            await self._drain()

    async def end(self) -> None:
        self._writable()
        self.out(b"0\r\n\r\n")

    def reset(self) -> None:
        self.done = True
        self.flush()  # earlier pipelined answers go first, as they would have unbatched
        reset_transport(self.transport)

    def _writable(self) -> asyncio.Transport:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")  # aiohttp's words
        return transport

    async def _drain(self) -> None:
        waiter = self.drain_waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self.drain_waiter = None
        self._writable()

    def _wake_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class FastSite:
    """Serves `emulator` on a listening socket: FastProtocol per connection, aiohttp's `runner`
    behind it. Start after runner.setup(); stop before runner.cleanup()."""

    def __init__(self, emulator: Emulator, runner: Any, sock: socket.socket) -> None:
        self.emulator = emulator
        self.runner = runner
        self.sock = sock
        self.live: set[FastProtocol] = set()
        self.heads: dict[bytes, Head] = {}
        self.server: asyncio.Server | None = None
        self.sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        fallback = self.runner.server  # aiohttp's RequestHandler factory
        emulator, live, heads = self.emulator, self.live, self.heads
        self.server = await asyncio.get_running_loop().create_server(
            lambda: FastProtocol(emulator, fallback, live, heads), sock=self.sock, backlog=4096
        )
        self.sweeper = asyncio.create_task(self.close_idle())

    async def close_idle(self) -> None:
        """Close connections idle for KEEPALIVE_S, in one sweep now and then (aiohttp keeps a timer
        per connection, re-armed per request: a cost per request here)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(KEEPALIVE_S / 5)
            now = loop.time()
            for connection in list(self.live):
                since = connection.idle_since()
                if since is not None and now - since > KEEPALIVE_S:
                    connection.close()

    async def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.server is not None:
            self.server.close()
        for connection in list(self.live):
            connection.close()
