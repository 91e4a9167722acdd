"""TLS over a plain socket through memory BIOs, so the socket's reads stay ours and keep their stamps.

An SSLSocket reads the network itself: its decrypted bytes carry no kernel arrival stamp (recvmsg
is refused on it), so every HTTPS call would be timed when read. Here the encrypted bytes are read
with users.arrival and fed to an ssl.SSLObject, which hands out one record's bytes per read: what
it decrypts is dated by the arrival of the bytes it came in. The raw socket is gevent's, so the
handshake and every read yield to the hub.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from users import arrival

READ_SIZE = 65536


class TlsPipe:
    """The socket-like object http11.Connection reads and writes: recv, sendall, close, timeouts."""

    __slots__ = ("raw", "stamped", "tls", "_incoming", "_outgoing")

    def __init__(self, raw: Any, context: ssl.SSLContext, server_hostname: str) -> None:
        self.raw = raw
        self.stamped = arrival.enable(raw)
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        try:
            self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
            self._drive(self.tls.do_handshake)
        except BaseException:
            raw.close()  # a refused handshake holds no connection (an SSLSocket closed it too)
            raise

    def gettimeout(self) -> float | None:
        timeout: float | None = self.raw.gettimeout()
        return timeout

    def settimeout(self, value: float | None) -> None:
        self.raw.settimeout(value)

    def close(self) -> None:
        self.raw.close()

    def peer_closed(self) -> bool:
        return peer_closed(self.raw)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._drive(self.tls.write, view)
            view = view[written:]

    def recv(self, size: int) -> bytes:
        """Decrypted bytes, up to size: from the record already fed, else from the next one."""
        try:
            data: bytes = self._drive(self.tls.read, size, end_ok=True)
            return data
        except ssl.SSLZeroReturnError:  # the server's close_notify: a clean end of stream
            return b""

    def _drive(self, operation: Any, *args: Any, end_ok: bool = False) -> Any:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                if self._feed():
                    continue
                # A close without close_notify between records ends a read as an SSLSocket's does
                # (suppress_ragged_eofs): the HTTP framing above says whether the reply was whole.
                if end_ok and not self._incoming.pending:
                    return b""
                raise ssl.SSLEOFError("the server closed the connection in the middle of TLS") from None
            self._flush()
            return result

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self.raw.sendall(pending)

    def _feed(self) -> bool:
        """What has arrived into the incoming BIO; False at the server's close."""
        data = arrival.recv(self.raw, READ_SIZE) if self.stamped else self.raw.recv(READ_SIZE)
        self._incoming.write(data)
        return bool(data)


def peer_closed(raw: Any) -> bool:
    """True when an idle connection's plain socket shows a close (or bytes nobody asked for) from
    the server. Peeking at raw bytes is enough under TLS too."""
    timeout = raw.gettimeout()
    try:
        raw.settimeout(0.0)
        raw.recv(1, socket.MSG_PEEK)
        return True  # b"" = closed; any data on an idle connection is unexpected as well
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True
    finally:
        raw.settimeout(timeout)
