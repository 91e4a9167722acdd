"""GET /emulator/sends, per request id: the model of its latest request, when that got past
admission, and sums over every finished request with the id (calls, queue and model time,
tokens), so an app that forwards the id on its model calls can have its latency split into
before the model call, model time and after (emulator.sends)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import pytest
from emu_http import FLASH, MODEL, call, call_json, sse_events, text_request

from emulator import sends
from emulator.launcher import EmulatorProcess
from tests.waiting import wait_until

# Several answer chunks, each after a modelled delay (time scale 0.01 of the realistic profile).
STORY = text_request("Tell me a long story about a harbour.", generationConfig={"maxOutputTokens": 4000})
# The same route with its colon escaped: aiohttp serves it, not the lean front (emulator.fastpath).
FRONTS = {"fast": ":", "aiohttp": "%3A"}
# Sums are in ms rounded to the microsecond; the stamps they come from go through JSON as floats.
ROUNDING_MS = 0.002


def get_sends(base: str, path: str = "/emulator/sends") -> dict[str, Any]:
    status, data = call_json(base, path, key=None)
    assert status == 200, data
    return data


def record_after(base: str, rid: str, calls: int) -> dict[str, Any]:
    """The id's record once `calls` of its requests have finished (the server adds a request to
    its id's sums in its last step, just after the reply's last byte left)."""

    def finished() -> dict[str, Any] | None:
        record = get_sends(base)["sends"].get(rid)
        return record if record is not None and record["calls"] >= calls else None

    record = wait_until(finished, what=f"{calls} finished calls with id {rid}")
    assert record["calls"] == calls, record
    return record


def usage_tokens(usage: dict[str, Any]) -> tuple[int, int, int]:
    """(prompt, output, thoughts) as usageMetadata says them (a zero count is left out)."""
    return (
        usage["promptTokenCount"],
        usage.get("candidatesTokenCount", 0),
        usage.get("thoughtsTokenCount", 0),
    )


def record_tokens(record: dict[str, Any]) -> tuple[int, int, int]:
    return record["prompt_tokens"], record["output_tokens"], record["thoughts_tokens"]


def generate(base: str, rid: str, body: dict[str, Any], front: str = ":") -> tuple[int, int, int]:
    """One generateContent with the id; the tokens its usageMetadata said."""
    status, data, _ = call(base, f"{FLASH}{front}generateContent", body, headers={"x-request-id": rid})
    assert status == 200, data
    return usage_tokens(json.loads(data)["usageMetadata"])


def open_stream(base: str, rid: str, body: dict[str, Any]) -> http.client.HTTPResponse:
    """A streamGenerateContent with the id, its headers (sent with the first chunk) read."""
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    headers = {"x-goog-api-key": "k", "Content-Type": "application/json", "x-request-id": rid}
    conn.request("POST", FLASH + ":streamGenerateContent?alt=sse", json.dumps(body), headers)
    response = conn.getresponse()
    assert response.status == 200
    return response


def check_one_call(record: dict[str, Any]) -> None:
    """The sums of an id's only call agree with its own stamps."""
    received, admitted, last = record["received"], record["admitted"], record["sent"][-1]
    assert record["calls"] == 1 and record["first_received"] == received, record
    assert received <= admitted <= last, record
    assert abs(record["queue_ms"] - (admitted - received) * 1000) <= ROUNDING_MS, record
    assert abs(record["model_ms"] - (last - received) * 1000) <= ROUNDING_MS, record
    assert 0 <= record["queue_ms"] <= record["model_ms"], record


@pytest.mark.parametrize("front", FRONTS)
def test_a_unary_call_reports_its_model_admission_times_and_tokens(emulator, front: str) -> None:  # noqa: ANN001
    rid = f"unary-{front}"
    tokens = generate(emulator.url, rid, STORY, FRONTS[front])
    record = record_after(emulator.url, rid, 1)
    assert record["model"] == MODEL and record["status"] == 200, record
    check_one_call(record)
    assert record_tokens(record) == tokens and tokens[0] > 0 and tokens[1] > 0, record


@pytest.mark.parametrize("front", FRONTS)
def test_a_streamed_call_reports_the_tokens_of_its_last_chunk(emulator, front: str) -> None:  # noqa: ANN001
    rid = f"stream-{front}"
    path = f"{FLASH}{FRONTS[front]}streamGenerateContent?alt=sse"
    status, data, _ = call(emulator.url, path, STORY, headers={"x-request-id": rid})
    assert status == 200, data
    events = sse_events(data)
    record = record_after(emulator.url, rid, 1)
    assert record["model"] == MODEL and len(record["sent"]) == len(events) > 2, record
    check_one_call(record)
    assert record["admitted"] <= record["first_due"], "the answer is planned once admitted"
    assert record_tokens(record) == usage_tokens(events[-1]["usageMetadata"]), record


def test_sequential_calls_with_one_id_are_summed(emulator) -> None:  # noqa: ANN001
    rid = "retried"
    first_tokens = generate(emulator.url, rid, STORY)
    first = record_after(emulator.url, rid, 1)
    other = text_request("And now a short poem about the sea.")
    second_tokens = generate(emulator.url, rid, other)
    record = record_after(emulator.url, rid, 2)
    assert record["received"] > first["received"], "the latest request's own stamps"
    assert record["first_received"] == first["received"], record
    second_model_ms = (record["sent"][-1] - record["received"]) * 1000
    assert abs(record["model_ms"] - (first["model_ms"] + second_model_ms)) <= 2 * ROUNDING_MS, record
    second_queue_ms = (record["admitted"] - record["received"]) * 1000
    assert abs(record["queue_ms"] - (first["queue_ms"] + second_queue_ms)) <= 2 * ROUNDING_MS, record
    summed = tuple(a + b for a, b in zip(first_tokens, second_tokens, strict=True))
    assert record_tokens(record) == summed, record


def test_a_refusal_before_admission_counts_its_time_as_queue_and_no_tokens(emulator) -> None:  # noqa: ANN001
    status, _, _ = call(
        emulator.url, "/v1beta/models/nope:generateContent", STORY, headers={"x-request-id": "unknown"}
    )
    assert status == 404
    record = record_after(emulator.url, "unknown", 1)
    assert record["model"] == "nope" and record["admitted"] is None and record["status"] == 404, record
    assert record_tokens(record) == (0, 0, 0), record
    refusal_ms = (record["sent"][-1] - record["received"]) * 1000
    assert abs(record["queue_ms"] - refusal_ms) <= ROUNDING_MS, "waited for nothing else"
    assert abs(record["model_ms"] - refusal_ms) <= ROUNDING_MS, record


def test_a_quota_refusal_after_an_answer_is_counted_without_tokens(start_emulator) -> None:  # noqa: ANN001
    # One request a minute on the emulator's unscaled clock: the second is refused, however slow.
    emu = start_emulator(profile="fast", time_scale=1.0, config_dict={"quotas": {MODEL: {"rpm": 1}}})
    tokens = generate(emu.url, "quota", STORY)
    status, _, _ = call(emu.url, FLASH + ":generateContent", STORY, headers={"x-request-id": "quota"})
    assert status == 429
    record = record_after(emu.url, "quota", 2)
    assert record["status"] == 429 and record["admitted"] is None, "the latest request was refused"
    assert record_tokens(record) == tokens, "only the answered call's tokens"
    assert record["first_received"] < record["received"], record


def test_an_injected_error_is_counted_unadmitted(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast")
    emu.set_faults({"server_503": 1.0})
    status, _, _ = call(emu.url, FLASH + ":generateContent", STORY, headers={"x-request-id": "overloaded"})
    assert status == 503
    record = record_after(emu.url, "overloaded", 1)
    assert record["admitted"] is None and record["first_due"] is None, record
    assert record_tokens(record) == (0, 0, 0) and record["queue_ms"] == record["model_ms"], record


def test_overlapping_calls_with_one_id_are_both_counted(start_emulator) -> None:  # noqa: ANN001
    # The first call stalls mid-stream (300 emulated seconds, 3 s real): the second, sent once the
    # first's headers came, starts and ends while the first is under way (a service fanning out).
    emu = start_emulator(profile="fast", config_dict={"faults": {"stall_seconds": 300.0}})
    emu.set_faults({"stream_stall": 1.0})
    first = open_stream(emu.url, "fan-out", STORY)
    emu.set_faults({"reset": True})
    second_tokens = generate(emu.url, "fan-out", text_request("A second opinion, please."))
    during = record_after(emu.url, "fan-out", 1)
    assert during["status"] == 200 and during["calls"] == 1, "the stalled first call is still under way"
    first_tokens = usage_tokens(sse_events(first.read())[-1]["usageMetadata"])
    record = record_after(emu.url, "fan-out", 2)
    assert record["received"] == during["received"], "the latest request is the second, ended first"
    assert record["first_received"] < record["received"], "the first call's received"
    summed = tuple(a + b for a, b in zip(first_tokens, second_tokens, strict=True))
    assert record_tokens(record) == summed, record
    assert record["model_ms"] >= during["model_ms"] + 2000, "the first call's stall is model time"
    # The last byte is the first call's, which ended last: not the latest request's.
    assert record["last_end"] >= record["sent"][-1] + 2.0, record


def test_requests_without_an_id_are_not_recorded(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0)
    assert call(emu.url, FLASH + ":generateContent", STORY)[0] == 200
    assert call(emu.url, FLASH + ":streamGenerateContent?alt=sse", STORY)[0] == 200
    generate(emu.url, "only", STORY)
    record_after(emu.url, "only", 1)
    assert list(get_sends(emu.url)["sends"]) == ["only"], "no id, no record"


def test_overlapping_requests_in_the_log_add_up_when_each_ends() -> None:
    log = sends.SendLog()
    first, second = log.open("x", "m1"), log.open("x", "m2")  # both under way
    first.admitted, second.admitted = first.received + 0.25, None
    first.tokens = (10, 20, 5)
    first.sent.append(first.received + 1.0)
    assert log.snapshot()["sends"]["x"]["calls"] == 0, "nothing finished yet"
    first.finish(200)
    second.sent.append(second.received + 0.5)
    second.finish(429)
    record = log.snapshot()["sends"]["x"]
    assert record["model"] == "m2" and record["status"] == 429 and record["admitted"] is None
    assert record["calls"] == 2 and record["first_received"] == first.received
    assert record["queue_ms"] == pytest.approx(250 + 500, abs=ROUNDING_MS)
    assert record["model_ms"] == pytest.approx(1000 + 500, abs=ROUNDING_MS)
    assert record_tokens(record) == (10, 20, 5)
    # The first ended last (received + 1.0); the latest request's own last byte is earlier.
    assert record["last_end"] == max(first.received + 1.0, second.received + 0.5)


def test_eviction_and_reset_drop_an_ids_sums() -> None:
    log = sends.SendLog(limit=2)
    log.open("a").finish(200)
    log.open("a").finish(200)
    assert log.snapshot()["sends"]["a"]["calls"] == 2
    log.open("b").finish(200)
    log.open("c").finish(200)  # "a" is the oldest: dropped with its sums
    assert list(log.snapshot()["sends"]) == ["b", "c"] and log.dropped == 1
    log.open("a").finish(200)
    assert log.snapshot()["sends"]["a"]["calls"] == 1, "a dropped id starts over"
    log.reset()
    log.open("c").finish(200)
    assert log.snapshot()["sends"]["c"]["calls"] == 1, "reset clears the sums"


def test_merged_logs_sum_an_ids_calls_and_keep_its_latest_request() -> None:
    def record(received: float, first: float, calls: int, admitted: float | None) -> dict[str, Any]:
        return {
            "received": received,
            "first_due": None,
            "sent": [received + 1],
            "status": 200 if admitted else 429,
            "model": f"m{received:g}",
            "admitted": admitted,
            "calls": calls,
            "first_received": first,
            "last_end": received + 1,
            "queue_ms": 1.5 * calls,
            "model_ms": 10.25 * calls,
            "prompt_tokens": 3 * calls,
            "output_tokens": 5 * calls,
            "thoughts_tokens": 7 * calls,
        }

    older, newer, alone = record(5.0, 2.0, 2, 5.1), record(6.0, 4.0, 1, None), record(1.0, 1.0, 1, 1.2)
    merged = sends.merge([{"sends": {"a": older, "b": alone}, "dropped": 1}, {"sends": {"a": newer}}])
    assert merged["dropped"] == 1 and merged["sends"]["b"] == alone
    a = merged["sends"]["a"]
    assert {k: a[k] for k in ("received", "sent", "status", "model", "admitted")} == {
        "received": 6.0,
        "sent": [7.0],
        "status": 429,
        "model": "m6",
        "admitted": None,
    }
    assert a["calls"] == 3 and a["first_received"] == 2.0 and a["last_end"] == 7.0
    assert a["queue_ms"] == 4.5 and a["model_ms"] == 30.75
    assert record_tokens(a) == (9, 15, 21)
    assert older["calls"] == 2 and newer["calls"] == 1, "the inputs are left as they were"


def test_workers_sum_an_ids_calls_across_processes() -> None:
    emu = EmulatorProcess(profile="fast", time_scale=0.0, workers=2)
    emu.start()
    try:
        tokens = [generate(emu.url, "spread", STORY) for _ in range(20)]  # a new connection each
        record = record_after(emu.url, "spread", 20)
        assert get_sends(emu.url)["workers_missing"] == 0
        assert record_tokens(record) == tuple(20 * n for n in tokens[0]), record

        def a_workers_share() -> bool:
            # One worker's own record (scope=worker), from whichever answers: SO_REUSEPORT spread
            # the connections, so each worker holds part of the 20 calls (all on one: 2**-19).
            share = get_sends(emu.url, "/emulator/sends?scope=worker")["sends"].get("spread")
            return share is not None and 0 < share["calls"] < 20

        wait_until(a_workers_share, what="a worker holding only its share of the calls")
    finally:
        emu.stop()
