"""Keep-alive HTTP/1.1 connections on gevent sockets, for the raw HTTP transport and the app user.

Reads hand over whatever recv() returned, so the SSE parser above sees each byte as it arrives;
that is what makes the http transport's TTFT exact (see raw_http.py). A stamped connection reads
with recvmsg, so each read also carries the kernel's arrival stamp of its bytes (users/arrival.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import SplitResult

from gevent import socket as gsocket
from gevent import ssl as gssl

from core import outcome
from users import arrival
from users.errors import CallError, redact, timeout_error
from users.transports import tls_pipe
from users.transports.tls_pipe import TlsPipe

READ_SIZE = 65536  # recv returns what has arrived, up to this: no waiting for a full buffer
MAX_HEAD_BYTES = 65536
IDLE_CHECK_S = 1.0  # a connection idle this long is checked for a server-side close before reuse


class ProtocolError(Exception):
    """The server's bytes are not a well-formed HTTP/1.1 response, or it closed mid-response."""


class Connection:
    """One HTTP/1.1 connection: send a request, read a head, then iterate the body as it arrives."""

    __slots__ = ("sock", "buf", "reusable", "last_used", "stamped")

    def __init__(self, sock: Any, *, stamped: bool = False) -> None:
        self.sock = sock  # a gevent socket, or a TlsPipe (which stamps its own reads)
        self.buf = b""
        self.reusable = True
        self.last_used = time.perf_counter()
        self.stamped = stamped  # the kernel stamps what arrives (arrival.enable): read with recvmsg

    def close(self) -> None:
        self.reusable = False
        with contextlib.suppress(OSError):
            self.sock.close()

    def peer_closed(self) -> bool:
        """True when an idle connection has been closed (or written to) by the server."""
        return tls_pipe.peer_closed(getattr(self.sock, "raw", self.sock))

    def send(self, head: bytes, body: bytes) -> None:
        # One write for small requests (one packet); two for large ones, to avoid copying the body.
        if len(body) < 65536:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)

    def _recv(self) -> bytes:
        return arrival.recv(self.sock, READ_SIZE) if self.stamped else self.sock.recv(READ_SIZE)

    def _fill(self) -> None:
        data = self._recv()
        if not data:
            self.reusable = False
            raise ProtocolError("server closed the connection before the response was complete")
        self.buf = self.buf + data if self.buf else data

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2 :]
                return line
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ProtocolError("response line too long")
            self._fill()

    def read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ProtocolError("response headers too large")
            self._fill()
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4 :]
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close" or status_line[0] == "HTTP/1.0":
            self.reusable = False
        return int(status_line[1]), headers

    def iter_body(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The body's bytes (de-chunked) in the pieces they arrived in."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._iter_chunked()
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length[:40]!r}")
            return self._iter_length(int(length))
        self.reusable = False
        return self._iter_until_close()

    def read_body(self, headers: dict[str, str]) -> bytes:
        return b"".join(self.iter_body(headers))

    def _take(self, limit: int) -> bytes:
        if not self.buf:
            self._fill()
        piece, self.buf = self.buf[:limit], self.buf[limit:]
        return piece

    def _iter_length(self, remaining: int) -> Iterator[bytes]:
        while remaining > 0:
            piece = self._take(remaining)
            remaining -= len(piece)
            yield piece

    def _iter_chunked(self) -> Iterator[bytes]:
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                remaining = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if remaining == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return
            while remaining > 0:
                piece = self._take(remaining)
                remaining -= len(piece)
                yield piece
            if self._line():
                raise ProtocolError("chunk not followed by CRLF")

    def _iter_until_close(self) -> Iterator[bytes]:
        if self.buf:
            piece, self.buf = self.buf, b""
            yield piece
        while data := self._recv():
            yield data


def tls_context() -> Any:
    """Certificate-checking TLS whose sockets yield to the hub. (gevent.ssl.create_default_context
    hands back the stdlib's context unless gevent has monkey-patched ssl: its handshake would block.)"""
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names
    context.load_default_certs()
    return context


def endpoint_of(url: SplitResult) -> tuple[tuple[str, int], str]:
    """Where an http(s) URL connects, (host, port), the scheme's port when it names none; and its
    Host header (an IPv6 literal in brackets)."""
    host = url.hostname or ""
    port = url.port
    address = (host, port or (443 if url.scheme == "https" else 80))
    shown = f"[{host}]" if ":" in host else host
    return address, shown if port is None else f"{shown}:{port}"


def pool_for(url: SplitResult, *, timeout_s: float, secrets: tuple[str, ...]) -> tuple[ConnectionPool, str]:
    """A keep-alive pool to an http(s) URL's server, stamping arrivals (TLS through memory BIOs for
    https), and the Host header its requests carry."""
    arrival.prime()
    tls = tls_context() if url.scheme == "https" else None
    address, host_header = endpoint_of(url)
    return ConnectionPool(address, tls=tls, timeout_s=timeout_s, secrets=secrets), host_header


class ConnectionPool:
    """Idle keep-alive connections to one server; `lease()` lends one for one exchange, with its
    failures classified like a call's (timeout, connection). Not shared between greenlets: each
    user holds its own pool, as each holds its own transport."""

    def __init__(
        self, address: tuple[str, int], *, tls: Any, timeout_s: float, secrets: tuple[str, ...]
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.secrets = secrets
        self._tls = tls
        self._idle: list[Connection] = []

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def lease(self) -> Lease:
        return Lease(self)

    def connection(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()
            if time.perf_counter() - conn.last_used < IDLE_CHECK_S or not conn.peer_closed():
                return conn
            conn.close()
        sock = gsocket.create_connection(self.address, timeout=self.timeout_s)
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        if self._tls is not None:
            # TLS through memory BIOs: the pipe reads the socket itself, so its reads stay stamped.
            return Connection(TlsPipe(sock, self._tls, server_hostname=self.address[0]))
        return Connection(sock, stamped=arrival.enable(sock))

    def give_back(self, conn: Connection) -> None:
        conn.last_used = time.perf_counter()
        self._idle.append(conn)

    def classified(self, exc: ProtocolError | OSError) -> CallError:
        if isinstance(exc, TimeoutError):
            return timeout_error(f"no data from the server for {self.timeout_s:g} s", ())
        return CallError(outcome.CONNECTION, redact(f"{type(exc).__name__}: {exc}", self.secrets))


class Lease:
    """A pooled connection for one exchange: failures classified like a call's (timeout, connection),
    and the connection back in the pool only when the whole reply was read (`complete`)."""

    __slots__ = ("_pool", "conn", "complete")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.complete = False

    def __enter__(self) -> Lease:
        try:
            self.conn = self._pool.connection()
        except (ProtocolError, OSError) as exc:
            raise self._pool.classified(exc) from exc
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        conn = self.conn
        if self.complete and conn.reusable and not conn.buf:
            self._pool.give_back(conn)
        else:
            conn.close()
        if isinstance(exc, ProtocolError | OSError):
            raise self._pool.classified(exc) from exc
