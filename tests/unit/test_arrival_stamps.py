"""Kernel arrival stamps (users/arrival.py) and the CallTimer that takes them: bytes that reached a
loopback socket while the reader was blocked are dated when they arrived, not when they were read."""

from __future__ import annotations

import socket
import time

import pytest

from tests.waiting import wait_for_kernel_stamps
from users import arrival
from users.call import CallTimer

BLOCKED_S = 0.2


@pytest.fixture
def connected():
    wait_for_kernel_stamps()
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            yield client, peer


def test_a_late_read_is_dated_by_the_arrival(connected) -> None:
    reader, writer = connected
    assert arrival.enable(reader)
    timer = CallTimer()
    writer.sendall(b"first chunk")  # loopback: in the reader's queue when sendall returns
    sent = time.perf_counter()
    time.sleep(BLOCKED_S)  # why: a late reader, not a wait: the bytes are already queued
    assert arrival.recv(reader, 64) == b"first chunk"
    timer.chunk(has_text=True)
    assert timer.arrival_clock == arrival.KERNEL
    assert timer.first_text_ms is not None
    assert timer.first_text_ms <= (sent - timer.started) * 1000.0 + 1.0
    assert timer.read_delay_ms is not None and timer.read_delay_ms >= BLOCKED_S * 1000.0 * 0.9


def test_recv_into_notes_the_stamp_too(connected) -> None:
    reader, writer = connected
    assert arrival.enable(reader)
    timer = CallTimer()
    writer.sendall(b"abc")
    time.sleep(BLOCKED_S)  # why: a late reader, not a wait: the bytes are already queued
    buffer = bytearray(8)
    assert arrival.recv_into(reader, buffer, 8) == 3 and bytes(buffer[:3]) == b"abc"
    timer.mark()
    assert timer.read_delay_ms is not None and timer.read_delay_ms >= BLOCKED_S * 1000.0 * 0.9


def test_no_stamp_falls_back_to_read_time_and_says_so(connected) -> None:
    reader, writer = connected  # stamps never enabled: recvmsg carries none
    earlier = CallTimer()
    writer.sendall(b"x")
    assert arrival.recv(reader, 8) == b"x"
    timer = CallTimer()  # started after that read: its stamp, had there been one, is not this reply's
    before = time.perf_counter()
    marked = timer.mark()
    assert marked >= before
    assert timer.arrival_clock == arrival.READ and timer.read_delay_ms is None
    assert earlier.arrival_clock == ""  # nothing marked yet


def test_a_stamp_from_before_the_attempt_is_not_used(connected) -> None:
    reader, writer = connected
    assert arrival.enable(reader)
    writer.sendall(b"old reply")
    arrival.recv(reader, 64)
    timer = CallTimer()  # a new attempt on the same greenlet: that stamp belongs to the last one
    timer.mark()
    assert timer.arrival_clock == arrival.READ


def test_bytes_read_without_a_stamp_are_not_dated_by_an_earlier_one(connected) -> None:
    reader, writer = connected
    assert arrival.enable(reader)
    timer = CallTimer()
    writer.sendall(b"stamped")
    assert arrival.recv(reader, 64) == b"stamped"
    reader.setsockopt(socket.SOL_SOCKET, arrival.SO_TIMESTAMPNS, 0)  # as a socket that gives none
    writer.sendall(b"not stamped")
    assert arrival.recv(reader, 64) == b"not stamped"
    timer.mark()
    assert timer.arrival_clock == arrival.READ


def test_a_tiered_call_is_timed_at_read_time_if_either_tier_was() -> None:
    from core.outcome import Outcome
    from users.tiering import escalated

    def tier(clock: str, delay: float | None) -> Outcome:
        return Outcome("moderation", "m", "http", 0.0, arrival_clock=clock, read_delay_ms=delay)

    both = escalated(tier(arrival.READ, None), tier(arrival.KERNEL, 3.0))
    assert both.arrival_clock == arrival.READ and both.read_delay_ms == 3.0
    both = escalated(tier(arrival.KERNEL, 9.0), tier(arrival.KERNEL, 3.0))
    assert both.arrival_clock == arrival.KERNEL and both.read_delay_ms == 9.0
