"""The raw HTTP client's own parts: body encoding and caching, HTTP/1.1 framing, incremental SSE."""

from __future__ import annotations

import base64
import json

import pytest
from gevent.server import StreamServer
from transport_helpers import API_KEY, rich_spec, self_signed_cert, spec

from core import outcome
from tests.waiting import wait_until
from users.call import CallTimer, rest_payload
from users.errors import CallError
from users.transports import http11
from users.transports.http11 import Connection, ProtocolError
from users.transports.raw_http import RawHttpTransport, encode_request


class ScriptedSocket:
    """Hands out the scripted byte pieces one recv() at a time, as a slow network would."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.sent = b""

    def recv(self, size: int) -> bytes:
        return self.pieces.pop(0)[:size] if self.pieces else b""

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        pass


def _chunked(payload: bytes, sizes: int) -> bytes:
    out = b""
    for i in range(0, len(payload), sizes):
        piece = payload[i : i + sizes]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _event(text: str, finish: str | None = None, output: int = 2) -> bytes:
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body = {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": output},
    }
    return b"data: " + json.dumps(body).encode() + b"\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _read_stream(wire: bytes, piece_size: int) -> tuple[object, CallTimer, Connection]:
    pieces = [wire[i : i + piece_size] for i in range(0, len(wire), piece_size)]
    conn = Connection(ScriptedSocket(pieces))
    status, headers = conn.read_head()
    assert status == 200
    timer = CallTimer()
    transport = RawHttpTransport(base_url="http://127.0.0.1:1", api_key=API_KEY, timeout_s=1.0)
    return transport._read_stream(conn, headers, timer), timer, conn


@pytest.mark.parametrize("piece_size", [1, 2, 7, 64, 100_000])
def test_sse_parsed_the_same_whatever_the_network_split(piece_size) -> None:  # noqa: ANN001
    payload = _event("Hello", output=1) + _event(" world", output=2) + _event("!", "STOP", output=3)
    wire = HEAD + _chunked(payload, 13) + b"HTTP/1.1 200 OK"  # the next response's bytes stay buffered
    result, timer, conn = _read_stream(wire, piece_size)
    assert (result.text, result.output_tokens, result.finish_reason) == ("Hello world!", 3, "STOP")
    assert len(timer.chunk_offsets_ms) == 3 and timer.first_text_ms is not None
    assert result.response_bytes == len(payload)
    # Bytes after the body are not eaten: they belong to whatever comes next on the connection.
    assert conn.reusable and b"HTTP/1.1 200 OK".startswith(conn.buf)


def test_sse_tolerates_lf_only_comments_and_a_last_event_without_blank_line() -> None:
    body = json.dumps({"candidates": [{"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"}]})
    payload = b": keep-alive comment\n\nevent: message\ndata:" + body.encode()
    wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + payload
    result, timer, conn = _read_stream(wire, 5)
    assert (result.text, result.finish_reason) == ("A", "STOP")
    assert not conn.reusable, "a body delimited by the close cannot share its connection"


def test_sse_error_frame_and_bad_json() -> None:
    frame = b'data: {"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}\r\n\r\n'
    with pytest.raises(CallError) as caught:
        _read_stream(HEAD + _chunked(_event("Hi") + frame, 50), 10)
    assert (caught.value.kind, caught.value.http_status) == (outcome.SERVER_ERROR, 503)
    with pytest.raises(CallError) as bad:
        _read_stream(HEAD + _chunked(b'data: {"candidates": [\r\n\r\n', 50), 10)
    assert bad.value.kind == outcome.INVALID_RESPONSE


def test_garbled_framing_is_a_connection_error() -> None:
    conn = Connection(ScriptedSocket([HEAD + b"zz\r\nnot a chunk"]))
    _, headers = conn.read_head()
    with pytest.raises(ProtocolError):
        list(conn.iter_body(headers))
    conn = Connection(ScriptedSocket([b"SSH-2.0-OpenSSH\r\n\r\n"]))
    with pytest.raises(ProtocolError):
        conn.read_head()


def test_request_body_is_rest_camel_case_and_encoded_once() -> None:
    call = rich_spec(response_schema={"type": "object"})
    body = json.loads(encode_request(call))
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "look"},
                    {
                        "inlineData": {
                            "mimeType": "image/png",
                            "data": base64.b64encode(b"\x89PNG-bytes").decode(),
                        }
                    },
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {
            "maxOutputTokens": 10,
            "temperature": 0.5,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
    }
    assert rest_payload(call) is rest_payload(call), "the body is built once and shared"


def test_bad_base_url_and_key_get_one_line_errors() -> None:
    with pytest.raises(ValueError, match="must look like"):
        RawHttpTransport(base_url="ftp://example", api_key="k", timeout_s=1)
    with pytest.raises(ValueError, match="line break"):
        RawHttpTransport(base_url="http://127.0.0.1:1", api_key="k\r\nX-Evil: 1", timeout_s=1)


def test_refused_connection_is_a_connection_error() -> None:
    server = StreamServer(("127.0.0.1", 0), lambda sock, addr: None)
    server.start()
    port = server.server_port
    server.stop()  # nothing listens on the port now
    transport = RawHttpTransport(base_url=f"http://127.0.0.1:{port}", api_key=API_KEY, timeout_s=1.0)
    with pytest.raises(CallError) as caught:
        transport.call(spec(), CallTimer())
    assert caught.value.kind == outcome.CONNECTION and API_KEY not in caught.value.message


def _reply(sock, close_after: bool) -> None:  # noqa: ANN001
    """A minimal server: answer requests on one connection, optionally closing after the first."""
    body = json.dumps(
        {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]}
    ).encode()
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                return
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(
            [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1]
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        data = rest[length:]
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        if close_after:
            sock.close()
            return


@pytest.mark.parametrize("close_after", [False, True])
def test_keep_alive_reuse_and_stale_connection(monkeypatch, close_after) -> None:  # noqa: ANN001
    accepted: list[object] = []
    closed: list[object] = []

    def handle(sock, addr) -> None:  # noqa: ANN001
        accepted.append(addr)
        _reply(sock, close_after)
        if close_after:
            closed.append(addr)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    monkeypatch.setattr(http11, "IDLE_CHECK_S", 0.0)  # check every reused connection
    transport = RawHttpTransport(
        base_url=f"http://127.0.0.1:{server.server_port}", api_key=API_KEY, timeout_s=2
    )
    try:
        for calls in range(1, 4):
            assert transport.call(spec(), CallTimer()).text == "ok"
            if close_after:  # the server has closed its end (the FIN is on its way) before the next call
                wait_until(lambda n=calls: len(closed) == n, timeout=10, what="the server to close")
    finally:
        transport.close()
        server.stop()
    # Keep-alive: one connection for three calls; a server that closes gets a fresh one each time.
    assert len(accepted) == (3 if close_after else 1)


def test_https_verifies_certificates_and_keeps_connections(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from gevent import ssl as gssl

    cert, key = self_signed_cert(tmp_path)
    accepted: list[object] = []

    def handle(sock, addr) -> None:  # noqa: ANN001
        accepted.append(addr)
        _reply(sock, close_after=False)

    context = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = StreamServer(("127.0.0.1", 0), handle, ssl_context=context)
    server.start()
    base_url = f"https://localhost:{server.server_port}"
    try:
        # The default context trusts the system's CAs only: a self-signed server is refused.
        untrusting = RawHttpTransport(base_url=base_url, api_key=API_KEY, timeout_s=2)
        with pytest.raises(CallError) as refused:
            untrusting.call(spec(), CallTimer())
        assert (
            refused.value.kind == outcome.CONNECTION and "CERTIFICATE_VERIFY_FAILED" in refused.value.message
        )
        # Trusting the test certificate: the handshake yields to the hub (a blocking handshake
        # would deadlock with this in-process server) and the connection is kept alive.
        trusting = RawHttpTransport(base_url=base_url, api_key=API_KEY, timeout_s=2)
        trusting._pool._tls = gssl.SSLContext(gssl.PROTOCOL_TLS_CLIENT)
        trusting._pool._tls.load_verify_locations(cert)
        monkeypatch.setattr(http11, "IDLE_CHECK_S", 0.0)
        assert [trusting.call(spec(), CallTimer()).text for _ in range(3)] == ["ok"] * 3
        trusting.close()
    finally:
        server.stop()
    assert len(accepted) == 1, (
        "one kept-alive connection for three calls (the refused one never got past TLS)"
    )
