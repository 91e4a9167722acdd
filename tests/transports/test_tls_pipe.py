"""TLS through memory BIOs (users/transports/tls_pipe.py): HTTPS replies keep the kernel's arrival
stamps, one TLS record at a time, so a reply read late over TLS is still dated when it arrived."""

from __future__ import annotations

import time

import pytest
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.event import Event
from gevent.server import StreamServer
from transport_helpers import self_signed_cert

from tests.waiting import wait_for_kernel_stamps
from users import arrival
from users.call import CallTimer
from users.transports.tls_pipe import TlsPipe

BLOCKED_S = 0.2


@pytest.fixture(autouse=True)
def _stamping_on() -> None:
    wait_for_kernel_stamps()


def _server(tmp_path, records: list[bytes], after_each: list[Event], *, linger: bool = True):  # noqa: ANN001, ANN202
    """A TLS server that answers "ping" with the records, one write each: after record i it sets
    after_each[i], then waits for `server.go_on` before the next."""
    cert, key = self_signed_cert(tmp_path)
    context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.options |= gssl.OP_NO_TICKET  # no TLS 1.3 session tickets trailing the handshake

    def handle(sock, addr) -> None:  # noqa: ANN001
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)  # each write leaves at once
        assert sock.recv(64) == b"ping"
        for record, written in zip(records, after_each, strict=True):
            sock.sendall(record)  # one write: one TLS record
            written.set()
            go_on.wait(timeout=30)
            go_on.clear()
        if linger:
            sock.recv(64)  # until the client closes
        # else the handler returns and the server closes the socket with no close_notify

    go_on = Event()
    server = StreamServer(("127.0.0.1", 0), handle, ssl_context=context)
    server.go_on = go_on
    server.start()
    client_context = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cert)
    return server, client_context


def test_a_tls_reply_read_late_is_dated_by_its_arrival(tmp_path) -> None:  # noqa: ANN001
    first, second = Event(), Event()
    server, context = _server(tmp_path, [b"first event", b"second event"], [first, second])
    try:
        raw = gsocket.create_connection(("127.0.0.1", server.server_port), timeout=5)
        pipe = TlsPipe(raw, context, server_hostname="localhost")
        assert pipe.stamped
        timer = CallTimer()
        pipe.sendall(b"ping")
        assert first.wait(timeout=30)
        server.go_on.set()
        assert second.wait(timeout=30)
        arrived_by = time.perf_counter()  # both records are in the kernel's queue by now
        time.sleep(BLOCKED_S)  # why: a late reader, not a wait: both records are already queued
        assert pipe.recv(65536) == b"first event"  # one record per read, not both at once
        timer.chunk(has_text=True)
        assert pipe.recv(65536) == b"second event"
        timer.chunk(has_text=True)
        server.go_on.set()
        assert timer.arrival_clock == arrival.KERNEL
        assert max(timer.chunk_offsets_ms) <= (arrived_by - timer.started) * 1000.0
        assert timer.read_delay_ms is not None and timer.read_delay_ms >= BLOCKED_S * 1000.0 * 0.9
        pipe.close()
    finally:
        server.stop()


def test_a_close_without_close_notify_ends_a_read(tmp_path) -> None:  # noqa: ANN001
    """Servers often just close: between records that is an end of stream, as for an SSLSocket."""
    written = Event()
    server, context = _server(tmp_path, [b"whole reply"], [written], linger=False)
    try:
        raw = gsocket.create_connection(("127.0.0.1", server.server_port), timeout=5)
        pipe = TlsPipe(raw, context, server_hostname="localhost")
        pipe.sendall(b"ping")
        assert pipe.recv(65536) == b"whole reply"
        server.go_on.set()  # the handler returns: its socket closes with no close_notify
        assert pipe.recv(65536) == b""
        pipe.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("trusted", "host_name", "reason"),
    [
        (False, "localhost", "certificate verify failed"),  # a certificate nobody vouches for
        (True, "not-localhost.example", "match|mismatch"),  # a certificate for another name
    ],
)
def test_a_certificate_refused_closes_the_connection(tmp_path, trusted, host_name, reason) -> None:  # noqa: ANN001
    server, trusting = _server(tmp_path, [b"never"], [Event()])
    try:
        raw = gsocket.create_connection(("127.0.0.1", server.server_port), timeout=5)
        context = trusting if trusted else gssl.create_default_context()
        with pytest.raises(gssl.SSLCertVerificationError, match=reason):
            TlsPipe(raw, context, server_hostname=host_name)
        assert raw.fileno() == -1, "the refused connection was closed"
    finally:
        server.stop()


def test_genai_over_https_refuses_a_certificate_it_does_not_trust(tmp_path) -> None:  # noqa: ANN001
    from transport_helpers import make_transport, spec

    from core import outcome
    from users.errors import CallError

    server, _ = _server(tmp_path, [b"never"], [Event()])
    transport = make_transport("genai", f"https://localhost:{server.server_port}")
    try:
        with pytest.raises(CallError) as refused:
            transport.call(spec("untrusted"), CallTimer())
        assert refused.value.kind == outcome.CONNECTION
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message
    finally:
        transport.close()
        server.stop()
