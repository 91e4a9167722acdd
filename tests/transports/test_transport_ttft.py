"""Streaming timing is exact on every transport: each chunk is seen as soon as it arrives.

A gated server replays a real emulator stream (3 chunks) and sends chunk k+1 only once the client
has reported chunk k to its CallTimer. A client that held back bytes (geventhttpclient waits for
about 1 KB) or read ahead (the legacy SDK's GenerativeModel iterator waits for the next chunk)
never reports chunk k, so the gate times out and the test fails: an event, not a latency bound.
The server also waits a known time before the first chunk and between chunks; a busy machine can
only make the client see them later, so TTFT and every gap are checked as lower bounds.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import gevent
import gevent.event
import pytest
from gevent.server import StreamServer
from transport_helpers import TRANSPORT_NAMES, make_transport, spec

from emulator.generation import _frame
from users.call import CallTimer

MODEL = "gemini-3.5-flash-lite"
FIRST_CHUNK_S = 0.1
GAP_S = 0.05
GATE_TIMEOUT_S = (
    5.0  # how long the server waits for the client to report a chunk; only a broken client waits it
)
CALLS = 2


class Gate:
    """One event per chunk of the call in progress: set when the client has reported that chunk."""

    def __init__(self) -> None:
        self.seen: list[gevent.event.Event] = []
        self.opened: list[bool] = []  # per later chunk: did the client report the one before in time?

    def new_call(self, chunks: int) -> None:
        self.seen = [gevent.event.Event() for _ in range(chunks)]
        self.opened = []


class GatedTimer(CallTimer):
    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
        super().chunk(has_text=has_text, has_thought=has_thought)
        index = len(self.chunk_offsets_ms) - 1
        if index < len(self.gate.seen):
            self.gate.seen[index].set()


def _read_request(sock, pending: bytes) -> tuple[str, bytes] | None:  # noqa: ANN001
    """(request target, bytes after this request) or None when the client closed the connection."""
    while b"\r\n\r\n" not in pending:
        more = sock.recv(65536)
        if not more:
            return None
        pending += more
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert "chunked" not in headers.get("transfer-encoding", ""), "request bodies come with a length"
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return lines[0].split(" ")[1], rest[length:]


def serve_gated(frames: list[str], gate: Gate):  # noqa: ANN201
    def handle(sock, addr) -> None:  # noqa: ANN001
        pending = b""
        while (request := _read_request(sock, pending)) is not None:
            target, pending = request
            sse = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("alt") == ["sse"]
            kind = "text/event-stream" if sse else "application/json"
            time.sleep(FIRST_CHUNK_S)  # why: the server's time to first token, which TTFT must include
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n"
            sock.sendall(head.encode())
            for index, frame in enumerate(frames):
                if index:
                    gate.opened.append(gate.seen[index - 1].wait(GATE_TIMEOUT_S))
                    time.sleep(GAP_S)  # why: a known gap between chunks, which the client's gaps must show
                payload = _frame(frame, sse, index, index == len(frames) - 1)
                sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            sock.sendall(b"0\r\n\r\n")

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    return server


@pytest.fixture(scope="module")
def recorded_frames(start_emulator) -> list[str]:  # noqa: ANN001
    """The JSON of each chunk of a real 72-token emulator stream (24 tokens per chunk)."""
    chunked = {"output_tokens_per_s": 240.0, "chunk_tokens": 24, "thinking": False, "output_tokens_min": 72}
    emu = start_emulator("fast", {"models": {MODEL: chunked}}, time_scale=0.0)
    body = {
        "contents": [{"role": "user", "parts": [{"text": "timing"}]}],
        "generationConfig": {"maxOutputTokens": 72},
    }
    request = urllib.request.Request(
        f"{emu.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read().decode()
    frames = [event.removeprefix("data: ") for event in text.split("\r\n\r\n") if event]
    assert len(frames) == 3
    return frames


@pytest.mark.parametrize("transport_name", TRANSPORT_NAMES)
def test_every_chunk_is_seen_before_the_next_is_sent(recorded_frames, transport_name) -> None:  # noqa: ANN001
    gate = Gate()
    server = serve_gated(recorded_frames, gate)
    transport = make_transport(transport_name, f"http://127.0.0.1:{server.server_port}")
    try:
        for i in range(CALLS):
            gate.new_call(len(recorded_frames))
            timer = GatedTimer(gate)
            result = transport.call(
                spec(f"timing {i}", model=MODEL, max_output_tokens=72, stream=True), timer
            )
            assert gate.opened == [True, True], "the client kept a chunk back until the next one came"
            assert result.output_tokens == 72 and len(timer.chunk_offsets_ms) == 3
            assert timer.first_text_ms is not None and timer.first_text_ms >= FIRST_CHUNK_S * 1000
            assert all(gap >= GAP_S * 1000 for gap in timer.gaps_ms), timer.gaps_ms
    finally:
        transport.close()
        server.stop()
