"""When a reply's bytes arrived, from the kernel: not when a busy generator got round to reading them.

Under load one gevent process reads late: a chunk that reached the socket at t is handed over after
the hub's backlog, and a TTFT taken at read time is the generator's queueing, not the model's. With
SO_TIMESTAMPNS the kernel stamps every received segment (CLOCK_REALTIME), and recvmsg returns the
stamp of the last segment a read took: the arrival of the bytes that read completed.

A stamp is exact while the generator reads each piece before the next arrives. Bytes that wait in
the kernel's queue are merged with those arriving after them, and the merge keeps the newest stamp:
a chunk read later than its successor arrived is dated by its successor. That is an upper bound,
never later than the read time, and `read_delay_ms` (read time - stamp) says when it happens.

A transport reads through `recv` / `recv_into` here; the stamp goes to the reading greenlet's slot,
where the call's CallTimer (the same greenlet: a user's call runs in its greenlet, SDK reads
included) takes it when the transport hands a chunk over. So the SDK transports, whose HTTP stacks
read for them, need only route their socket reads through this module.

Where there is no stamp (an SSLSocket, whose decrypted reads cannot carry one: the legacy SDK's
https; a platform without SO_TIMESTAMPNS) a timer falls back to its read time and says so
(`CallTimer.arrival_clock`). The http and genai transports run TLS over their own stamped socket
reads (users/transports/tls_pipe.py).
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

from gevent.local import local

KERNEL = "kernel"  # every time of the call was the kernel's arrival stamp
READ = "read"  # some time of the call was when it was read (no stamp): the generator's lateness is in it
# Linux's value (asm-generic, x86 and arm): Python's socket module does not name it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds and nanoseconds, native longs
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_SUPPORTED = sys.platform == "linux"

_slot = local()  # per greenlet: `arrived` and `read`, perf_counter seconds of the last stamped read


_keeper: list[socket.socket] = []  # one idle socket asking for stamps for the process's life


def prime() -> None:
    """Turn the kernel's receive stamping on now, ahead of the first call's reads.

    The first socket on a host to ask for stamps switches them on through deferred kernel work, so
    bytes read in the next moments may have none (and are timed when read). A transport calls this
    when it is built, before the run; an idle UDP socket then keeps stamping on until exit, so the
    sockets that follow get stamps from their first byte.
    """
    if _keeper or not _SUPPORTED:
        return
    try:
        keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return
    _keeper.append(keeper)


def enable(sock: Any) -> bool:
    """Ask the kernel to stamp what this plain TCP socket receives; False where it cannot."""
    if not _SUPPORTED:
        return False
    prime()
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return bool(sock.getsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS))
    except OSError:
        return False


def _note(ancillary: list[tuple[int, int, bytes]]) -> bool:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            # Both clocks read together: the stamp is CLOCK_REALTIME, the timers count perf_counter.
            late_s = (time.time_ns() - seconds * 1_000_000_000 - nanoseconds) / 1e9
            read = time.perf_counter()
            _slot.read = read
            _slot.arrived = read - max(0.0, late_s)
            return True
    return False


def _noted(data_read: int, ancillary: list[tuple[int, int, bytes]]) -> None:
    # Bytes read without a stamp leave none behind: an earlier read's stamp would misdate them.
    if data_read and not (ancillary and _note(ancillary)):
        _slot.read = time.perf_counter()
        _slot.arrived = None


def recv(sock: Any, size: int) -> bytes:
    """sock.recv(size), noting the kernel's arrival stamp of the bytes for this greenlet."""
    data, ancillary, _, _ = sock.recvmsg(size, _ANCILLARY_SPACE)
    _noted(len(data), ancillary)
    return data


def recv_into(sock: Any, buffer: Any, nbytes: int = 0) -> int:
    """sock.recv_into(buffer, nbytes), noting the arrival stamp as `recv` does."""
    view = memoryview(buffer)
    if nbytes:
        view = view[:nbytes]
    count, ancillary, _, _ = sock.recvmsg_into([view], _ANCILLARY_SPACE)
    _noted(count, ancillary)
    return count


def latest(since: float) -> tuple[float, float] | None:
    """(arrival, read) in perf_counter seconds of the last read this greenlet made at or after
    `since`, or None: that read had no stamp, or the stamp is from before the attempt and belongs
    to another reply."""
    read = getattr(_slot, "read", None)
    if read is None or read < since or _slot.arrived is None:
        return None
    return _slot.arrived, read
