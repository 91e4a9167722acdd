"""The lean front for the generate routes (emulator.fastpath): what it serves itself, what it hands
to aiohttp and how, and that a client sees the same answers from either front."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest
from emu_http import FLASH, MODEL, call, comparable, exchange, text_request

from emulator.fastpath import FastProtocol
from emulator.profiles import load_profile
from emulator.server import Emulator
from tests.waiting import wait_until

BODY = json.dumps(text_request("Is this post fine?")).encode()
GENERATE = f"{FLASH}:generateContent"
COUNT = f"{FLASH}:countTokens"


def request(
    target: str = GENERATE, body: bytes = BODY, *, head: str = "", verb: str = "POST", http: str = "HTTP/1.1"
) -> bytes:
    lines = f"{verb} {target} {http}\r\nHost: emu\r\nx-goog-api-key: k\r\nContent-Length: {len(body)}\r\n"
    return (lines + head + "\r\n").encode() + body


class Recorder(asyncio.Protocol):
    """Stands in for aiohttp's protocol: what a connection handed over brings with it."""

    def __init__(self) -> None:
        self.received = b""
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data


class Wire(asyncio.Transport):
    """A transport that keeps what is written, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.protocol: asyncio.BaseProtocol | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def fast(feed: Callable[[FastProtocol], None]) -> tuple[Wire, Recorder, Emulator]:
    """Run `feed` on a FastProtocol over an in-memory transport (profile `fast`: nothing waits)."""
    recorder = Recorder()
    emulator = Emulator(load_profile("fast"), time_scale=0.0, seed=1)
    wire = Wire()

    async def main() -> None:
        protocol = FastProtocol(emulator, lambda: recorder, set(), {})
        protocol.connection_made(wire)
        feed(protocol)

    asyncio.run(main())
    return wire, recorder, emulator


def statuses(data: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


@pytest.mark.parametrize(
    "raw",
    [
        request(COUNT),
        request(verb="GET"),
        request(http="HTTP/1.0"),
        request(f"{FLASH}%3AgenerateContent"),
        request(GENERATE + "?%24alt=sse"),
        request(head="Transfer-Encoding: chunked\r\n"),
        request(head="Expect: 100-continue\r\n"),
        request(head="Connection: upgrade\r\nUpgrade: h2c\r\n"),
        request(head="X-Folded: a\r\n b\r\n"),
        request(head=f"Content-Length: {len(BODY)}\r\n"),
        request(body=b"x" * (1 << 19)),  # larger than the lean front takes
        b"POST " + GENERATE.encode() + b" HTTP/1.1\r\nHost: emu\r\n\r\n",  # no Content-Length
    ],
    ids=[
        "countTokens",
        "GET",
        "HTTP/1.0",
        "escaped",
        "escaped query",
        "chunked",
        "expect",
        "upgrade",
        "folded",
        "two lengths",
        "large",
        "no length",
    ],
)
def test_anything_but_a_plain_generate_request_goes_to_aiohttp_whole(raw: bytes) -> None:
    wire, recorder, emulator = fast(lambda protocol: protocol.data_received(raw))
    assert wire.protocol is recorder and recorder.transport is wire, "the connection was handed over"
    assert recorder.received == raw and not wire.writes and emulator.stats.requests == 0


def test_pipelined_requests_are_answered_in_order_then_the_rest_handed_over() -> None:
    first, second, rest = request(), request(f"{FLASH}:streamGenerateContent?alt=sse"), request(COUNT)
    tail = request()  # after the hand-over, aiohttp serves everything on the connection
    wire, recorder, emulator = fast(lambda protocol: protocol.data_received(first + second + rest + tail))
    assert len(wire.writes) == 1, "the answers of one read leave in one write"
    data = wire.writes[0]
    assert statuses(data) == [200, 200] and data.index(b"Content-Length") < data.index(b"chunked")
    assert data.endswith(b"0\r\n\r\n") and recorder.received == rest + tail
    assert emulator.stats.by_route == {
        "v1beta/models.generateContent": 1,
        "v1beta/models.streamGenerateContent": 1,
    }


def test_a_request_in_pieces_is_answered_once_it_is_whole() -> None:
    raw = request() + request()

    def byte_by_byte(protocol: FastProtocol) -> None:
        for i in range(len(raw)):
            protocol.data_received(raw[i : i + 1])

    wire, recorder, _ = fast(byte_by_byte)
    assert statuses(b"".join(wire.writes)) == [200, 200] and wire.protocol is None


def test_connection_close_is_honoured_after_the_answer() -> None:
    raw = request(head="Connection: close\r\n") + request()
    wire, _, emulator = fast(lambda protocol: protocol.data_received(raw))
    data = b"".join(wire.writes)
    assert statuses(data) == [200] and b"Connection: close\r\n" in data and wire.closed
    assert emulator.stats.requests == 1


@pytest.mark.parametrize(
    ("method", "body", "key"),
    [
        (":generateContent", BODY, "k"),
        (":streamGenerateContent?alt=sse", BODY, "k"),
        (":streamGenerateContent", BODY, "k"),
        (":generateContent", b"{not json", "k"),
        (":generateContent", BODY, ""),
    ],
    ids=["unary", "sse", "array", "bad json", "no key"],
)
def test_both_fronts_send_the_same_bytes(start_emulator, method: str, body: bytes, key: str) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0, seed=3)
    replies = []
    for colon in (":", "%3A"):  # the escaped colon goes to aiohttp
        target = FLASH + colon + method.removeprefix(":")
        key_header = f"x-goog-api-key: {key}\r\n" if key else ""
        head = f"POST {target} HTTP/1.1\r\nHost: emu\r\n{key_header}Content-Length: {len(body)}\r\n"
        replies.append(exchange(emu.url, (head + "Connection: close\r\n\r\n").encode() + body))
    assert comparable(replies[0]) == comparable(replies[1]), replies
    assert emu.stats()["requests_total"] == 2


def test_one_connection_moves_to_aiohttp_and_keeps_its_order(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0)
    host, port = emu.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request() + request(COUNT) + request() + request(head="Connection: close\r\n"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert statuses(data) == [200, 200, 200, 200] and b'"totalTokens"' in data
    assert data.index(b'"candidates"') < data.index(b'"totalTokens"') < data.rindex(b'"candidates"')


@pytest.mark.parametrize("path", [":generateContent", ":streamGenerateContent?alt=sse"])
def test_a_client_gone_mid_answer_frees_its_slot_and_counts_499(start_emulator, path: str) -> None:  # noqa: ANN001
    # No thinking and one token a chunk at 4 tokens/s: the first chunk after 0.25 s, the answer in
    # tens of seconds.
    config = {"model_defaults": {"chunk_tokens": 1, "output_tokens_per_s": 4, "thoughts_tokens_median": 0}}
    emu = start_emulator(config, profile="fast", time_scale=1.0)
    host, port = emu.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(request(FLASH + path))
    if "stream" in path:
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK"), "the stream has begun"
    else:
        wait_until(lambda: emu.stats()["in_flight"] == 1, what="the request under way")
    sock.close()

    def freed() -> bool:
        stats = emu.stats()
        return stats["in_flight"] == 0 and stats["responses_by_status"].get("499") == 1

    wait_until(freed, what="the request cancelled by the client's leaving")
    assert emu.stats()["slots"][MODEL]["busy"] == 0
    assert call(emu.url, "/healthz", key=None)[0] == 200
