"""Response bodies in the real API's shape (camelCase keys: google-genai drops any others)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from emulator.content import Answer
from emulator.profiles import ModelProfile


def response_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")[:22]


class ResponseIds:
    """responseIds like response_id()'s (22 URL-safe characters), as bytes, drawn 256 at a time:
    one os.urandom and one encoding per answer cost more than the rest of a cached answer."""

    BATCH = 256

    def __init__(self) -> None:
        self._ready: list[bytes] = []

    def next(self) -> bytes:
        if not self._ready:
            # 33 random bytes encode to 44 characters without padding: two ids of 22.
            text = base64.urlsafe_b64encode(os.urandom(33 * self.BATCH // 2))
            self._ready = [text[i : i + 22] for i in range(0, len(text), 22)]
        return self._ready.pop()


def usage(
    prompt: int, details: list[dict[str, Any]], output: int, thoughts: int, cached: int = 0
) -> dict[str, Any]:
    """`cached`: the part of `prompt` read from a context cache (emulator.caching)."""
    data: dict[str, Any] = {"promptTokenCount": prompt}
    if output:
        data["candidatesTokenCount"] = output
    data["totalTokenCount"] = prompt + output + thoughts
    if cached:
        data["cachedContentTokenCount"] = cached
    if details:
        data["promptTokensDetails"] = details
    if thoughts:
        data["thoughtsTokenCount"] = thoughts
    return data


def _envelope(body: dict[str, Any], usage_metadata: dict[str, Any], model: str, rid: str) -> dict[str, Any]:
    body["usageMetadata"] = usage_metadata
    body["modelVersion"] = model
    body["responseId"] = rid
    return body


def _blocked(answer: Answer) -> dict[str, Any]:
    feedback: dict[str, Any] = {"blockReason": answer.block_reason}
    if answer.safety_ratings:
        feedback["safetyRatings"] = answer.safety_ratings
    return {"promptFeedback": feedback}


def _candidate(parts: list[dict[str, Any]], finish_reason: str | None, answer: Answer) -> dict[str, Any]:
    # No parts (thinking used all of maxOutputTokens): the real API still sends the role.
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"} if parts else {"role": "model"}}
    if finish_reason:
        candidate["finishReason"] = finish_reason
        if answer.safety_ratings:
            candidate["safetyRatings"] = answer.safety_ratings
    candidate["index"] = 0
    return {"candidates": [candidate]}


def full_response(
    answer: Answer, prompt: int, details: list[dict[str, Any]], model: str, rid: str, *, cached: int = 0
) -> dict[str, Any]:
    """The generateContent body."""
    use = usage(prompt, details, answer.output_tokens, answer.thoughts_tokens, cached)
    if answer.block_reason:
        return _envelope(_blocked(answer), use, model, rid)
    parts: list[dict[str, Any]] = []
    if answer.thought_summary:
        parts.append({"text": answer.thought_summary, "thought": True})
    if answer.pieces:
        parts.append({"text": answer.text})
    parts.extend(answer.calls)
    return _envelope(_candidate(parts, answer.finish_reason, answer), use, model, rid)


def stream_frames(
    answer: Answer,
    prompt: int,
    details: list[dict[str, Any]],
    model: str,
    rid: str,
    profile: ModelProfile,
    *,
    cached: int = 0,
) -> list[str]:
    """The JSON text of every streamed chunk: usage is cumulative, finishReason on the last one."""
    thoughts = answer.thoughts_tokens
    if answer.block_reason:
        return [dumps(_envelope(_blocked(answer), usage(prompt, details, 0, 0, cached), model, rid))]
    frames = []
    for piece in thought_pieces(answer, profile):
        parts = [{"text": piece, "thought": True}]
        frames.append(
            dumps(
                _envelope(
                    _candidate(parts, None, answer), usage(prompt, details, 0, thoughts, cached), model, rid
                )
            )
        )
    size = max(1, profile.chunk_tokens)
    pieces = answer.pieces
    groups = [pieces[i : i + size] for i in range(0, len(pieces), size)] or [[]]
    sent = 0
    for index, group in enumerate(groups):
        sent += len(group)
        finish = answer.finish_reason if index == len(groups) - 1 else None
        parts = [{"text": "".join(group)}] if group else []
        if finish and answer.calls:  # function calls arrive whole, in the last chunk
            parts, sent = parts + answer.calls, sent + answer.call_tokens
        body = _candidate(parts, finish, answer)
        frames.append(dumps(_envelope(body, usage(prompt, details, sent, thoughts, cached), model, rid)))
    return frames


MAX_THOUGHT_CHUNKS = 8


def thought_pieces(answer: Answer, profile: ModelProfile) -> list[str]:
    """The thought summary cut into the chunks a stream sends it in: one per thought_chunk_tokens of
    thinking (at most MAX_THOUGHT_CHUNKS, at most a word each), as the real API streams several
    `thought: true` chunks before the answer. Empty when no summary was asked for."""
    summary = answer.thought_summary
    if not summary:
        return []
    words = summary.split(" ")
    wanted = -(-answer.thoughts_tokens // max(1, profile.thought_chunk_tokens))
    count = max(1, min(MAX_THOUGHT_CHUNKS, wanted, len(words)))
    size = -(-len(words) // count)
    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    # Joined back, the pieces are the summary: a space ends every piece but the last.
    return [piece + " " for piece in pieces[:-1]] + pieces[-1:]


_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(body: dict[str, Any], pretty: bool = False) -> str:
    """JSON as the real API writes it: 7-bit and HTML-safe (`<` as \\u003c); one line with a space
    after each colon for an SSE event, indented by two for a whole body or a streamed array's
    element (Google's APIs pretty-print by default). The bytes count: they are the suite's
    response_bytes."""
    text = json.dumps(body, indent=2) if pretty else json.dumps(body, separators=(",", ": "))
    return text.translate(_HTML_SAFE) if ("<" in text or ">" in text or "&" in text) else text


def pretty(text: str) -> str:
    """One-line JSON text as the indented form (for a streamed JSON array's elements)."""
    return dumps(json.loads(text), pretty=True)


def model_resource(name: str, profile: ModelProfile) -> dict[str, Any]:
    """A models.get / models.list entry. Like the real resource, `thinking` is there only for a
    model that thinks."""
    resource: dict[str, Any] = {
        "name": f"models/{name}",
        "version": "001",
        "displayName": profile.display_name or name,
        "description": f"Emulated {profile.display_name or name}.",
        "inputTokenLimit": profile.input_token_limit,
        "outputTokenLimit": profile.output_token_limit,
        "supportedGenerationMethods": [
            "generateContent",
            "countTokens",
            "createCachedContent",
            "batchGenerateContent",
        ],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }
    if profile.thinking:
        resource["thinking"] = True
    return resource
