"""The shared reply mapping and failure classification, on hand-made replies (no server)."""

from __future__ import annotations

import json

import pytest
from transport_helpers import API_KEY

from core import outcome
from users.call import CallTimer
from users.errors import CallError, api_error, classify
from users.transports.replies import (
    Reply,
    StreamReply,
    Usage,
    event_from_json,
    http_error,
    reply_from_json,
    result_from_json,
)


def _chunk(*parts: dict, finish: str | None = None, usage: dict | None = None, block: str = "") -> dict:
    reply: dict = {"candidates": [{"content": {"role": "model", "parts": list(parts)}}]}
    if finish:
        reply["candidates"][0]["finishReason"] = finish
    if usage is not None:
        reply["usageMetadata"] = usage
    if block:
        reply["promptFeedback"] = {"blockReason": block}
    return reply


def test_a_reply_reads_the_first_candidate_and_what_the_server_said() -> None:
    reply = _chunk(
        {"text": "thinking", "thought": True},
        {"text": "Hello"},
        {"text": " there"},
        finish="STOP",
        usage={"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 9},
    )
    reply["candidates"].append({"content": {"parts": [{"text": "second candidate"}]}})
    assert reply_from_json(reply) == Reply("Hello there", "thinking", Usage(4, 2, 9, None), "STOP", "")
    assert reply_from_json({}) == Reply()
    assert reply_from_json({"usageMetadata": {}}).usage is None, "an empty usageMetadata says nothing"
    blocked = reply_from_json({"promptFeedback": {"blockReason": "SAFETY"}})
    assert (blocked.text, blocked.block_reason) == ("", "SAFETY")


def test_a_stream_times_each_chunk_and_keeps_the_last_usage_and_the_finish() -> None:
    timer = CallTimer()
    stream = StreamReply(timer)
    stream.add(reply_from_json(_chunk({"text": "hmm", "thought": True})))
    stream.add(
        reply_from_json(_chunk({"text": "Hi"}, usage={"promptTokenCount": 4, "candidatesTokenCount": 1}))
    )
    stream.add(reply_from_json(_chunk({"text": "!"}, finish="STOP")))
    stream.add(reply_from_json({"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}))
    result = stream.finish(response_bytes=123)
    assert (result.text, result.finish_reason, result.output_tokens, result.response_bytes) == (
        "Hi!",
        "STOP",
        2,
        123,
    )
    assert result.thoughts_tokens is None, "the last usage replaces the earlier one as a whole"
    assert len(timer.chunk_offsets_ms) == 4
    assert timer.first_thought_ms is not None and timer.first_text_ms is not None
    assert timer.first_thought_ms <= timer.first_text_ms == timer.chunk_offsets_ms[1]


def test_a_whole_reply_body_maps_to_a_call_result() -> None:
    body = json.dumps(_chunk({"text": "ok"}, finish="MAX_TOKENS", usage={"promptTokenCount": 3})).encode()
    result = result_from_json(body, (API_KEY,))
    assert (result.text, result.finish_reason, result.prompt_tokens) == ("ok", "MAX_TOKENS", 3)
    assert (result.http_status, result.response_bytes) == (200, len(body))


RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        (b"not json", outcome.INVALID_RESPONSE, None),
        (b"[1, 2]", outcome.INVALID_RESPONSE, None),
        (b'{"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}', outcome.SERVER_ERROR, 503),
        (b'{"error": {"message": "no code"}}', outcome.INVALID_RESPONSE, None),
        (b'{"error": "a string"}', outcome.INVALID_RESPONSE, None),
    ],
)
def test_an_unusable_or_error_body_gets_its_kind(body: bytes, kind: str, status: int | None) -> None:
    for parse in (lambda: result_from_json(body, ()), lambda: event_from_json(body, ())):
        with pytest.raises(CallError) as caught:
            parse()
        assert (caught.value.kind, caught.value.http_status) == (kind, status)


def test_http_errors_take_code_details_and_redaction_from_the_body() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": f"key {API_KEY}",
                "details": [RETRY],
            }
        }
    ).encode()
    err = http_error(429, body, (API_KEY,))
    assert (err.kind, err.http_status, err.retry_after_s) == (outcome.RATE_LIMITED, 429, 7.0)
    assert API_KEY not in err.message and "RESOURCE_EXHAUSTED" in err.message
    plain = http_error(502, b"<html>bad gateway</html>", ())
    assert (plain.kind, plain.http_status, plain.message) == (
        outcome.SERVER_ERROR,
        502,
        "502 <html>bad gateway</html>",
    )
    assert api_error(0, "", "odd", None, ()).kind == outcome.INVALID_RESPONSE
    # A 504 is the server's answer, a 5xx: server_error (timeout is our own client giving up).
    deadline = api_error(504, "DEADLINE_EXCEEDED", "", None, ())
    assert (deadline.kind, deadline.message) == (outcome.SERVER_ERROR, "504 DEADLINE_EXCEEDED")


class ReadTimeout(TimeoutError):
    pass


class TransportTrouble(OSError):
    pass


class SlowTrouble(TransportTrouble, ReadTimeout):
    """An HTTP client's timeout is usually also one of its transport errors."""


def test_classify_checks_timeouts_before_connections_and_redacts() -> None:
    kinds = {"timeouts": (ReadTimeout,), "connections": (TransportTrouble,)}
    assert classify(SlowTrouble("slow"), (), **kinds).kind == outcome.TIMEOUT
    dropped = classify(TransportTrouble(f"reset, key={API_KEY}"), (API_KEY,), **kinds)
    assert dropped.kind == outcome.CONNECTION and API_KEY not in dropped.message
    assert classify(ValueError("bad JSON"), (), **kinds).kind == outcome.INVALID_RESPONSE
    already = CallError(outcome.BLOCKED, "as it was")
    assert classify(already, (), **kinds) is already
