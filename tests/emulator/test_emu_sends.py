"""GET /emulator/sends: when each piece of a generate answer left, for requests with x-request-id,
so a benchmark can tell the emulator's lateness from the client's (emulator.sends)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emu_http import FLASH, call, call_json, sse_events, text_request

from emulator import sends
from emulator.launcher import EmulatorProcess
from tests.waiting import wait_until

# time.time() stamps on both sides of an asyncio sleep: the loop may fire a timer up to its clock's
# granularity early (uvloop: a millisecond).
TOLERANCE_S = 0.005
# Several answer chunks, each after a modelled delay (time scale 0.01 of the realistic profile).
STORY = text_request("Tell me a long story about a lighthouse.", generationConfig={"maxOutputTokens": 4000})
# The same route with its colon escaped: aiohttp serves it, not the lean front (emulator.fastpath).
FRONTS = {"fast": ":", "aiohttp": "%3A"}


def get_sends(base: str, **kwargs: Any) -> dict[str, Any]:
    status, data = call_json(base, "/emulator/sends", key=None, **kwargs)
    assert status == 200, data
    return data


def array_pieces(data: bytes) -> list[dict[str, Any]]:
    return json.loads(data)


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("sse", [True, False], ids=["sse", "array"])
def test_a_stream_with_an_id_is_stamped_once_per_chunk_in_order(emulator, front: str, sse: bool) -> None:  # noqa: ANN001
    rid = f"stream-{front}-{sse}"
    path = f"{FLASH}{FRONTS[front]}streamGenerateContent" + ("?alt=sse" if sse else "")
    status, data, _ = call(emulator.url, path, STORY, headers={"x-request-id": rid})
    assert status == 200, data
    pieces = sse_events(data) if sse else array_pieces(data)
    record = get_sends(emulator.url)["sends"][rid]
    sent = record["sent"]
    assert record["status"] == 200 and len(pieces) > 2 and len(sent) == len(pieces), record
    assert sent == sorted(sent) and sent[0] >= record["received"], record
    assert record["first_due"] > record["received"], "the model planned a first-token delay"
    assert sent[0] >= record["first_due"] - TOLERANCE_S, record


@pytest.mark.parametrize("front", FRONTS)
def test_a_unary_answer_with_an_id_has_one_stamp_after_it_was_due(emulator, front: str) -> None:  # noqa: ANN001
    rid = f"unary-{front}"
    status, data, _ = call(
        emulator.url, f"{FLASH}{FRONTS[front]}generateContent", STORY, headers={"x-request-id": rid}
    )
    assert status == 200, data
    record = get_sends(emulator.url)["sends"][rid]
    assert record["status"] == 200 and len(record["sent"]) == 1, record
    assert record["received"] < record["first_due"] <= record["sent"][0] + TOLERANCE_S, record


def test_a_refusal_is_stamped_with_its_status_and_no_due_time(emulator) -> None:  # noqa: ANN001
    status, _, _ = call(
        emulator.url, "/v1beta/models/nope:generateContent", STORY, headers={"x-request-id": "refused"}
    )
    assert status == 404
    record = get_sends(emulator.url)["sends"]["refused"]
    assert record["status"] == 404 and record["first_due"] is None and len(record["sent"]) == 1, record


def test_only_requests_with_an_id_are_recorded_and_reset_clears(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0)
    for path in (":generateContent", ":streamGenerateContent?alt=sse"):
        assert call(emu.url, FLASH + path, STORY)[0] == 200
    assert get_sends(emu.url) == {"sends": {}, "dropped": 0}, "no id, no record"
    assert call(emu.url, FLASH + ":generateContent", STORY, headers={"x-request-id": "kept"})[0] == 200
    assert list(get_sends(emu.url)["sends"]) == ["kept"]
    status, cleared = call_json(emu.url, "/emulator/sends/reset", key=None, raw=b"", method="POST")
    assert status == 200 and cleared == {"sends": {}, "dropped": 0}
    assert get_sends(emu.url) == {"sends": {}, "dropped": 0}


def test_the_log_keeps_the_newest_ids_and_counts_the_dropped() -> None:
    log = sends.SendLog(limit=3)
    for rid in "abcd":
        log.open(rid)
    assert list(log.snapshot()["sends"]) == ["b", "c", "d"] and log.dropped == 1
    log.open("b")  # a repeated id is its latest request: now the newest, not the oldest
    log.open("e")
    snapshot = log.snapshot()
    assert list(snapshot["sends"]) == ["d", "b", "e"] and snapshot["dropped"] == 2
    log.reset()
    assert log.snapshot() == {"sends": {}, "dropped": 0}


def test_merged_logs_keep_an_ids_latest_request_and_sum_the_dropped() -> None:
    def record(received: float, calls: int = 1, first_received: float | None = None) -> dict[str, Any]:
        summed = {"calls": calls, "queue_ms": 0.0, "model_ms": 0.0, "prompt_tokens": 0}
        summed.update(output_tokens=0, thoughts_tokens=0, first_received=first_received or received)
        summed.update(last_end=received)
        return {"received": received, "first_due": None, "sent": [received], "status": 200, **summed}

    merged = sends.merge(
        [
            {"sends": {"a": record(1.0), "b": record(5.0)}, "dropped": 2},
            {"sends": {"a": record(3.0), "c": record(2.0)}, "dropped": 1},
        ]
    )
    # Sums over both workers' calls with the id (tests/emulator/test_emu_attribution.py).
    a = record(3.0, calls=2, first_received=1.0)
    assert merged == {"sends": {"a": a, "b": record(5.0), "c": record(2.0)}, "dropped": 3}


def test_workers_merge_their_stamps_and_reset_together() -> None:
    emu = EmulatorProcess(profile="fast", time_scale=0.0, workers=2)
    emu.start()
    try:
        ids = [f"w{i}" for i in range(20)]
        for rid in ids:  # a new connection each: SO_REUSEPORT spreads them over both workers
            assert call(emu.url, FLASH + ":generateContent", STORY, headers={"x-request-id": rid})[0] == 200
        merged = get_sends(emu.url)
        assert sorted(merged["sends"]) == sorted(ids), "every worker's ids, asked at once"
        assert merged["workers_missing"] == 0

        seen: list[set[str]] = []

        def both_workers_recorded() -> bool:
            # One worker's own share (scope=worker), from whichever answers: two different shares
            # that cover every id came from two workers (all 20 on one: a chance of 2**-19).
            share = set(call_json(emu.url, "/emulator/sends?scope=worker", key=None)[1]["sends"])
            seen.append(share)
            shares = {frozenset(share) for share in seen}
            return len(shares) >= 2 and set().union(*shares) == set(ids) and all(len(s) < 20 for s in shares)

        wait_until(both_workers_recorded, what="two workers' own shares of the ids")
        status, _ = call_json(emu.url, "/emulator/sends/reset", key=None, raw=b"", method="POST")
        assert status == 200 and get_sends(emu.url) == {"sends": {}, "dropped": 0, "workers_missing": 0}
    finally:
        emu.stop()
