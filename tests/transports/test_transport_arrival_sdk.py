"""Every transport dates a streamed chunk by its arrival in the kernel, not by when it was read.

The late-reader test holds the whole process (the gevent hub included) while a reply's first chunk
reaches the kernel. The server runs in an OS thread on unpatched sockets, so it sends while the
process's greenlets are held; the test and the server hand each other the steps through real locks
(events, not waits for time). Only the hold itself is a known duration, and it is real blocking.
TLS connections carry no stamps: they still work and are timed when read.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import gevent
import pytest
from gevent import monkey
from gevent.server import StreamServer
from transport_helpers import TRANSPORT_NAMES, make_transport, self_signed_cert, spec

from tests.waiting import wait_for_kernel_stamps
from users import arrival
from users.call import CallTimer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the kernel stamps arrivals on Linux only")

_real_socket = monkey.get_original("socket", "socket")
_real_lock = monkey.get_original("_thread", "allocate_lock")
_real_thread = monkey.get_original("_thread", "start_new_thread")
_real_sleep = monkey.get_original("time", "sleep")

MODEL = "gemini-3.5-flash-lite"
HOLD_S = 0.3  # how long the process is held while the first chunk waits in the kernel
WAIT_S = 20.0  # how long a step may take before the test gives up: only a broken client waits it
FRAMES = (
    {"candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}]},
    {
        "candidates": [
            {"content": {"parts": [{"text": " world"}], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
    },
)


def _chunk(index: int, sse: bool) -> bytes:
    """One frame as one HTTP chunk: an SSE event, or an element of the JSON array the legacy SDK reads."""
    text = json.dumps(FRAMES[index], separators=(",", ":"))
    last = index == len(FRAMES) - 1
    if sse:
        payload = f"data: {text}\r\n\r\n".encode()
    else:
        payload = (("[" if index == 0 else "\n,\r\n") + text + ("\n]" if last else "")).encode()
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _head(sse: bool) -> bytes:
    kind = "text/event-stream" if sse else "application/json"
    return f"HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def _read_request(recv: Any) -> str | None:
    """The request's target, its body read off by its length; None when the client closed."""
    pending = b""
    while b"\r\n\r\n" not in pending:
        more = recv(65536)
        if not more:
            return None
        pending += more
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0
    )
    while len(rest) < length:
        rest += recv(65536)
    return lines[0].split(" ")[1]


class Signal:
    """A one-shot event on a real lock, shared by the server's OS thread and the test's greenlets."""

    def __init__(self) -> None:
        self._lock = _real_lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait_blocking(self, timeout: float) -> bool:
        """Wait holding the whole process (the hub too)."""
        if not self._lock.acquire(True, timeout):
            return False
        self._lock.release()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait in a pool thread: other greenlets run meanwhile."""
        return bool(gevent.get_hub().threadpool.apply(self.wait_blocking, (timeout,)))


class LateReaderServer:
    """One streamed reply on one connection, sent step by step as the test allows."""

    def __init__(self) -> None:
        self.received = Signal()  # the whole request is in
        self.held = Signal()  # the test holds the process: send the first chunk
        self.first_sent = Signal()
        self.reported = Signal()  # the client's timer has the first chunk: send the rest
        self.done = Signal()
        self.errors: list[BaseException] = []
        self._listener = _real_socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(WAIT_S)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        _real_thread(self._serve, ())

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
            with conn:
                conn.settimeout(WAIT_S)
                target = _read_request(conn.recv)
                assert target is not None, "the client closed before its request"
                sse = "alt=sse" in target
                self.received.set()
                assert self.held.wait_blocking(WAIT_S), "the test never held the process"
                conn.sendall(_head(sse) + _chunk(0, sse))  # one write: head and first chunk arrive together
                self.first_sent.set()
                # Nothing more until the first chunk was reported: a later segment reaching the
                # kernel before the read would be merged into the first one's, with its later stamp.
                assert self.reported.wait_blocking(WAIT_S), "the client never reported the first chunk"
                conn.sendall(_chunk(1, sse) + b"0\r\n\r\n")
        except BaseException as exc:  # noqa: BLE001 - the test thread reports it
            self.errors.append(exc)
        finally:
            self.done.set()

    def close(self) -> None:
        self.held.set()
        self.reported.set()
        assert self.done.wait(WAIT_S), "the server thread did not finish"
        self._listener.close()
        assert not self.errors, self.errors


class ReportingTimer(CallTimer):
    """Notes when each chunk was handed over (read), and tells the server the first one was."""

    def __init__(self, reported: Signal) -> None:
        super().__init__()
        self.reported = reported
        self.read_at_ms: list[float] = []

    def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
        self.read_at_ms.append(self.elapsed_ms())
        super().chunk(has_text=has_text, has_thought=has_thought)
        self.reported.set()


@pytest.fixture(autouse=True)
def _stamping_on() -> None:
    wait_for_kernel_stamps()


@pytest.fixture(scope="module")
def emulator(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast")


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_a_streamed_call_is_dated_by_the_kernel(emulator, transport_name) -> None:  # noqa: ANN001
    transport = make_transport(transport_name, emulator.url)
    try:
        for i in range(2):  # a new connection, then a kept-alive one
            timer = CallTimer()
            result = transport.call(spec(f"arrival {i}", stream=True), timer)
            assert result.output_tokens and timer.chunk_offsets_ms
            assert timer.arrival_clock == arrival.KERNEL
            assert timer.stamped_marks == len(timer.chunk_offsets_ms) and timer.read_marks == 0
            assert timer.read_delay_ms is not None and timer.read_delay_ms >= 0.0
    finally:
        transport.close()


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_a_late_reader_is_dated_by_arrival_not_by_its_read(transport_name) -> None:  # noqa: ANN001
    server = LateReaderServer()
    transport = make_transport(transport_name, server.url)
    timer = ReportingTimer(server.reported)
    try:
        caller = gevent.spawn(transport.call, spec("late", model=MODEL, stream=True), timer)
        assert server.received.wait(WAIT_S), "the request never reached the server"
        # The caller now waits for its reply. From here to caller.get nothing else in this process
        # runs: the first chunk reaches the kernel, and its reader is late by at least HOLD_S.
        server.held.set()
        assert server.first_sent.wait_blocking(WAIT_S)
        _real_sleep(HOLD_S)  # why: the known lateness the arrival stamp must see through
        result = caller.get(timeout=WAIT_S)
    finally:
        transport.close()
        server.close()
    hold_ms = HOLD_S * 1000.0
    assert result.text == "Hello world" and len(timer.chunk_offsets_ms) == 2
    assert timer.arrival_clock == arrival.KERNEL
    assert timer.first_text_ms is not None
    # Read at least HOLD_S after the chunk arrived; dated by the arrival (margins for a busy machine
    # are on the safe side: the true figure is at least hold_ms).
    assert timer.read_at_ms[0] - timer.first_text_ms >= 0.8 * hold_ms, (timer.read_at_ms, timer.first_text_ms)
    assert timer.read_delay_ms is not None and timer.read_delay_ms >= 0.8 * hold_ms
    # The second chunk was sent only after the late read: the gap shows the hold, not a merged read.
    assert timer.chunk_offsets_ms[1] - timer.chunk_offsets_ms[0] >= 0.8 * hold_ms, timer.chunk_offsets_ms


@pytest.mark.parametrize("transport_name", ["genai", "legacy"])
def test_tls_calls_work_and_say_where_their_times_came_from(tmp_path, monkeypatch, transport_name) -> None:  # noqa: ANN001
    """genai runs TLS through memory BIOs over its own stamped socket (users/transports/tls_pipe.py);
    the legacy SDK's TLS is urllib3's SSLSocket, whose decrypted reads carry no stamp."""
    from gevent import ssl as gssl

    from users.transports import genai_sdk

    cert, key = self_signed_cert(tmp_path)
    accepted: list[object] = []

    def handle(sock, addr) -> None:  # noqa: ANN001
        accepted.append(addr)
        while (target := _read_request(sock.recv)) is not None:
            sse = "alt=sse" in target
            sock.sendall(_head(sse) + _chunk(0, sse) + _chunk(1, sse) + b"0\r\n\r\n")

    context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = StreamServer(("127.0.0.1", 0), handle, ssl_context=context)
    server.start()
    # Each SDK trusting the test certificate as an app would: genai through the transport's shared
    # context, legacy (requests) through REQUESTS_CA_BUNDLE.
    trusting = gssl.create_default_context(cafile=cert)
    monkeypatch.setattr(genai_sdk, "_shared_ssl_context", lambda: trusting)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    asked: list[object] = []
    enable = arrival.enable
    monkeypatch.setattr(arrival, "enable", lambda sock: asked.append(sock) or enable(sock))
    transport = make_transport(transport_name, f"https://localhost:{server.server_port}")
    try:
        for i in range(2):
            timer = CallTimer()
            result = transport.call(spec(f"tls {i}", model=MODEL, stream=True), timer)
            assert result.text == "Hello world"
            if transport_name == "genai":
                assert timer.arrival_clock == arrival.KERNEL and timer.read_marks == 0
                assert timer.read_delay_ms is not None
            else:
                assert timer.arrival_clock == arrival.READ and timer.stamped_marks == 0
                assert timer.read_delay_ms is None
    finally:
        transport.close()
        server.stop()
    # genai's one connection stamps its plain socket, under TLS; urllib3's TLS socket is never asked.
    assert len(asked) == (1 if transport_name == "genai" else 0)
    assert len(accepted) == 1, "one kept-alive TLS connection for both calls"
