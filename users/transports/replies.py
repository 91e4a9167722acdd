"""From a Gemini reply to a CallResult: the one mapping every transport shares.

A transport reads its client's view of a reply (the REST JSON dict, a google-genai response object,
a legacy proto) into a `Reply`, the REST API's own terms for what the suite counts; everything after
that is shared: usage from `usageMetadata` (cumulative in streams, so the last chunk that has it
wins), the first candidate's answer and thought text and its `finishReason`, `promptFeedback`'s
`blockReason`, and how a stream's chunks are timed and joined. So the transports cannot drift apart
on what a reply means, and a new transport maps nothing itself.

For transports that read REST JSON themselves (the http transport, a toy in the tests), the JSON
side is here too: a reply body or stream event parsed, and an `{"error": ...}` body classified.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from core import outcome
from users.call import CallResult, CallTimer
from users.errors import CallError, Secrets, api_error, kind_for_status, redact


class Usage(NamedTuple):
    """usageMetadata's counts; None where the server did not say (never guessed)."""

    prompt: int | None = None  # promptTokenCount
    output: int | None = None  # candidatesTokenCount
    thoughts: int | None = None  # thoughtsTokenCount
    cached: int | None = None  # cachedContentTokenCount


class Reply(NamedTuple):
    """One reply, or one chunk of a stream: what the suite reads from it, in the REST API's terms."""

    text: str = ""  # the first candidate's answer text (parts not marked thought)
    thought: str = ""  # its thought text
    usage: Usage | None = None  # None: this reply or chunk has no usageMetadata
    finish_reason: str = ""  # the first candidate's finishReason ("" = not said)
    block_reason: str = ""  # promptFeedback.blockReason ("" = not blocked)


# tuple.__new__ straight from C: a NamedTuple's own __new__ is a Python call, and the http transport
# makes one Reply per reply or streamed event on its hot path.
_tuple_new = tuple.__new__


def reply_from_json(reply: dict[str, Any]) -> Reply:
    """A REST generateContent reply (or one streamed event) as a Reply."""
    text = thought = finish = block = ""
    candidates = reply.get("candidates")
    if candidates:
        candidate = candidates[0]
        content = candidate.get("content")
        parts = content.get("parts") if content else None
        for part in parts or ():  # a reply has a part or two: += beats building lists to join
            value = part.get("text")
            if value:
                if part.get("thought"):
                    thought += value
                else:
                    text += value
        finish = candidate.get("finishReason") or ""
    feedback = reply.get("promptFeedback")
    if feedback:
        block = feedback.get("blockReason") or ""
    usage = reply.get("usageMetadata")
    if usage:
        usage = _tuple_new(
            Usage,
            (
                usage.get("promptTokenCount"),
                usage.get("candidatesTokenCount"),
                usage.get("thoughtsTokenCount"),
                usage.get("cachedContentTokenCount"),
            ),
        )
    return _tuple_new(Reply, (text, thought, usage or None, finish, block))


def absorb(result: CallResult, reply: Reply) -> None:
    """Copy what the server said into result: a later reply's usage replaces an earlier one's; a
    finish or block reason, once said, is kept until another one is said."""
    if reply.usage is not None:
        result.prompt_tokens, result.output_tokens, result.thoughts_tokens, result.cached_tokens = reply.usage
    if reply.finish_reason:
        result.finish_reason = reply.finish_reason
    if reply.block_reason:
        result.block_reason = reply.block_reason


def unary_result(reply: Reply, *, response_bytes: int = 0) -> CallResult:
    """The CallResult of a whole (not streamed) 200 reply."""
    result = CallResult(text=reply.text, http_status=200, response_bytes=response_bytes)
    absorb(result, reply)
    return result


class StreamReply:
    """A stream's chunks as they arrive: each one timed on the call's timer, then absorbed.

    A chunk is timed when the transport hands it over, so a transport must hand it over as soon
    as its client has it: that is what makes TTFT the user's wait.
    """

    __slots__ = ("result", "_timer", "_texts")

    def __init__(self, timer: CallTimer) -> None:
        self.result = CallResult(http_status=200)
        self._timer = timer
        self._texts: list[str] = []

    def add(self, reply: Reply) -> None:
        self._timer.chunk(has_text=bool(reply.text), has_thought=bool(reply.thought))
        self._texts.append(reply.text)
        absorb(self.result, reply)

    def finish(self, response_bytes: int | None = None) -> CallResult:
        """The whole stream's result; response_bytes None leaves what the transport counted."""
        self.result.text = "".join(self._texts)
        if response_bytes is not None:
            self.result.response_bytes = response_bytes
        return self.result


# ---- REST JSON: what a transport that reads the wire itself needs -------------------------------


def parse_object(data: bytes, what: str, secrets: Secrets) -> dict[str, Any]:
    """A JSON object from the server, or invalid_response saying `what` it was ("response", ...)."""
    try:
        parsed = json.loads(data)
    except ValueError:
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"{what} is not valid JSON: {data[:120]!r}", secrets)
        ) from None
    if not isinstance(parsed, dict):
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"{what} is not a JSON object: {data[:120]!r}", secrets)
        )
    if "error" in parsed:  # an error inside a 200 body or a stream event counts as that error
        raise error_from_body(parsed, None, secrets)
    return parsed


def result_from_json(body: bytes, secrets: Secrets) -> CallResult:
    """The CallResult of a whole 200 REST reply body."""
    reply = reply_from_json(parse_object(body, "response", secrets))
    return unary_result(reply, response_bytes=len(body))


def event_from_json(data: bytes, secrets: Secrets) -> Reply:
    """One streamed event's data (SSE `data:` lines joined) as a Reply."""
    return reply_from_json(parse_object(data, "stream event", secrets))


def http_error(status: int, body: bytes, secrets: Secrets) -> CallError:
    """A non-200 reply: the google.rpc.Status body's code and details when it has one."""
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return error_from_body(reply, status, secrets)
    snippet = body[:200].decode("utf-8", errors="replace")
    return CallError(kind_for_status(status), redact(f"{status} {snippet}", secrets), http_status=status)


def error_from_body(reply: dict[str, Any], status: int | None, secrets: Secrets) -> CallError:
    """A google.rpc.Status body; `status` is the HTTP status, None for an error inside a 200 body."""
    error = reply.get("error")
    if not isinstance(error, dict):
        return CallError(
            outcome.INVALID_RESPONSE, redact(f"error field is not an object: {error!r}", secrets)
        )
    code = error.get("code")
    code = code if isinstance(code, int) and code > 0 else status
    return api_error(code, error.get("status"), error.get("message"), error.get("details"), secrets)
