"""The suite's own raw HTTP transport: REST JSON over keep-alive HTTP/1.1 on gevent sockets, no SDK.

Why its own client and not FastHttpUser's (geventhttpclient): its streamed-response iteration was
seen holding back about 1 KB, so a short first SSE event arrived late and TTFT was wrong. Here the
SSE parser sees every byte the moment recv() returns it, so a chunk is timed when it arrives; and a
call costs less CPU than a bare geventhttpclient POST (about 0.04 against 0.06 ms here).
Why not an SDK: this is the transport for the highest request rate per core. The JSON body of a
CallSpec is encoded once and shared by every user of the process (images are base64'd once, not per
user); a call only formats a short header, sends, and parses the reply with the C json module.

Semantics kept equal to the SDK transports, so runs compare:
- timeout_s bounds the connect and each socket read (as httpx and requests do), not the whole call;
- exactly HTTP 200 is success; an error body's google.rpc details give the kind and RetryInfo;
- a stream's `data: {"error": ...}` frame raises like an HTTP error with that code;
- JSON that does not parse is invalid_response; a dropped or garbled connection is connection.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from gevent import socket as gsocket

from core import outcome
from users.call import CallResult, CallSpec, CallTimer, rest_body, rest_json
from users.errors import CallError, kind_for_status, redact, retry_delay_from_details
from users.transports.http11 import IDLE_CHECK_S, Connection, ProtocolError, tls_context

API_VERSION = "v1beta"
BODY_CACHE_MAX_BYTES = 256 * 1024 * 1024
BODY_CACHE_MAX_ENTRIES = 16384

# Encoded request bodies, shared by every transport instance in the process. Keyed by id(spec) with
# the spec kept in the value, so an id is never reused while its entry lives. (CallSpec is a slots
# dataclass, neither weak-referenceable nor always hashable.)
_body_cache: dict[int, tuple[CallSpec, bytes]] = {}
_body_cache_bytes = 0


def encode_request(spec: CallSpec) -> bytes:
    """The generateContent JSON body, as users.call.rest_body describes it."""
    return rest_json(rest_body(spec))


def request_body(spec: CallSpec) -> bytes:
    """The cached encoded body of a spec; encodes it on first use."""
    global _body_cache_bytes
    cached = _body_cache.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    body = encode_request(spec)
    if _body_cache_bytes + len(body) > BODY_CACHE_MAX_BYTES or len(_body_cache) >= BODY_CACHE_MAX_ENTRIES:
        _body_cache.clear()  # beyond the caps (specs made per call?): start over, never grow unbounded
        _body_cache_bytes = 0
    _body_cache[id(spec)] = (spec, body)
    _body_cache_bytes += len(body)
    return body


class RawHttpTransport:
    name = "http"

    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base URL {base_url!r} must look like http://HOST:PORT or https://HOST")
        if any(c in api_key for c in "\r\n"):
            raise ValueError("the API key contains a line break: check GEMINI_API_KEY / --api-key")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._tls = tls_context() if url.scheme == "https" else None
        self._address = (url.hostname, url.port or (443 if self._tls else 80))
        host_header = url.hostname if url.port is None else f"{url.hostname}:{url.port}"
        if ":" in url.hostname:  # IPv6 literal
            host_header = f"[{url.hostname}]" + (f":{url.port}" if url.port else "")
        # Everything but the target and length is fixed per transport: format it once.
        self._head_format = (
            f"POST {url.path.rstrip('/')}/{API_VERSION}/models/%s HTTP/1.1\r\n"
            f"Host: {host_header}\r\nx-goog-api-key: {api_key}\r\nContent-Type: application/json\r\n"
            "User-Agent: gemini-locust-http/1\r\nContent-Length: %d\r\n\r\n"
        )
        self._idle: list[Connection] = []

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _connection(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()
            if time.perf_counter() - conn.last_used < IDLE_CHECK_S or not conn.peer_closed():
                return conn
            conn.close()
        sock = gsocket.create_connection(self._address, timeout=self._timeout_s)
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
        return Connection(sock)

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        try:
            body = request_body(spec)
        except (TypeError, ValueError) as exc:  # e.g. a response schema that is not JSON
            raise CallError(outcome.CLIENT_ERROR, f"request cannot be encoded as JSON: {exc}") from exc
        model = spec.model.removeprefix("models/")
        target = f"{model}:streamGenerateContent?alt=sse" if spec.stream else f"{model}:generateContent"
        head = (self._head_format % (target, len(body))).encode("latin-1")
        conn: Connection | None = None
        complete = False  # the whole reply was read: the connection can serve the next call
        try:
            conn = self._connection()
            conn.send(head, body)
            status, headers = conn.read_head()
            if status != 200:
                error_body = conn.read_body(headers)
                complete = True
                raise _http_error(status, error_body, self._api_key)
            if spec.stream:
                result = self._read_stream(conn, headers, timer)
                complete = True
                return result
            reply = conn.read_body(headers)
            complete = True
            return _parse_reply(reply, self._api_key)
        except CallError:
            raise
        except TimeoutError as exc:
            raise CallError(
                outcome.TIMEOUT, f"timeout: no data from the server for {self._timeout_s:g} s"
            ) from exc
        except (ProtocolError, OSError) as exc:
            message = redact(f"{type(exc).__name__}: {exc}", (self._api_key,))
            raise CallError(outcome.CONNECTION, message) from exc
        finally:
            if conn is not None:
                if complete and conn.reusable and not conn.buf:
                    conn.last_used = time.perf_counter()
                    self._idle.append(conn)
                else:
                    conn.close()

    def _read_stream(self, conn: Connection, headers: dict[str, str], timer: CallTimer) -> CallResult:
        """Parse SSE incrementally: each complete event is parsed and timed as soon as it arrives."""
        result = CallResult(http_status=200)
        texts: list[str] = []
        pending = b""
        data_lines: list[bytes] = []
        received = 0
        for piece in conn.iter_body(headers):
            received += len(piece)
            pending = pending + piece if pending else piece
            start = 0
            while (newline := pending.find(b"\n", start)) >= 0:
                line = pending[start:newline]
                start = newline + 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:  # a blank line ends an event
                    if data_lines:
                        texts.append(_stream_event(b"\n".join(data_lines), result, timer, self._api_key))
                        data_lines = []
                elif line.startswith(b"data:"):
                    data_lines.append(line[6:] if line.startswith(b"data: ") else line[5:])
                # `event:`, `id:`, `retry:` and `:` comment lines carry nothing the API uses.
            pending = pending[start:]
        if pending.startswith(b"data:"):
            data_lines.append(pending[5:].strip())
        if data_lines:  # a last event without its blank line: still the server's answer
            texts.append(_stream_event(b"\n".join(data_lines), result, timer, self._api_key))
        result.text = "".join(texts)
        result.response_bytes = received
        return result


def _stream_event(data: bytes, result: CallResult, timer: CallTimer, api_key: str) -> str:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"stream event is not valid JSON: {data[:120]!r}", (api_key,))
        ) from None
    if not isinstance(chunk, dict):
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"stream event is not a JSON object: {data[:120]!r}", (api_key,))
        )
    if "error" in chunk:
        raise _error_from_body(chunk, None, api_key)
    text, thought = _texts(chunk)
    timer.chunk(has_text=bool(text), has_thought=bool(thought))
    _absorb(result, chunk)
    return text


def _parse_reply(body: bytes, api_key: str) -> CallResult:
    try:
        reply = json.loads(body)
    except ValueError:
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"response is not valid JSON: {body[:120]!r}", (api_key,))
        ) from None
    if not isinstance(reply, dict):
        raise CallError(
            outcome.INVALID_RESPONSE, redact(f"response is not a JSON object: {body[:120]!r}", (api_key,))
        )
    if "error" in reply:
        raise _error_from_body(reply, None, api_key)
    result = CallResult(http_status=200, response_bytes=len(body))
    result.text = _texts(reply)[0]
    _absorb(result, reply)
    return result


def _http_error(status: int, body: bytes, api_key: str) -> CallError:
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        return _error_from_body(reply, status, api_key)
    snippet = body[:200].decode("utf-8", errors="replace")
    return CallError(kind_for_status(status), redact(f"{status} {snippet}", (api_key,)), http_status=status)


def _error_from_body(reply: dict[str, Any], status: int | None, api_key: str) -> CallError:
    """A google.rpc.Status body; `status` is the HTTP status, None for an error inside a 200 body."""
    error = reply.get("error")
    if not isinstance(error, dict):
        return CallError(
            outcome.INVALID_RESPONSE, redact(f"error field is not an object: {error!r}", (api_key,))
        )
    code = error.get("code")
    code = code if isinstance(code, int) and code > 0 else status
    message = f"{code or ''} {error.get('status') or ''} {error.get('message') or ''}"
    return CallError(
        kind_for_status(code) if code else outcome.INVALID_RESPONSE,
        redact(message.strip(), (api_key,)),
        http_status=code,
        retry_after_s=retry_delay_from_details(error.get("details")),
    )


def _texts(chunk: dict[str, Any]) -> tuple[str, str]:
    """Answer text and thought text of the first candidate, as the genai transport reads them."""
    candidates = chunk.get("candidates")
    if not candidates:
        return "", ""
    parts = (candidates[0].get("content") or {}).get("parts") or ()
    text = [p["text"] for p in parts if p.get("text") and not p.get("thought")]
    thought = [p["text"] for p in parts if p.get("text") and p.get("thought")]
    return "".join(text), "".join(thought)


def _absorb(result: CallResult, chunk: dict[str, Any]) -> None:
    """Usage (cumulative in streams, so the last chunk wins), finish and block reasons."""
    usage = chunk.get("usageMetadata")
    if usage:
        result.prompt_tokens = usage.get("promptTokenCount")
        result.output_tokens = usage.get("candidatesTokenCount")
        result.thoughts_tokens = usage.get("thoughtsTokenCount")
        result.cached_tokens = usage.get("cachedContentTokenCount")
    candidates = chunk.get("candidates")
    if candidates and candidates[0].get("finishReason"):
        result.finish_reason = candidates[0]["finishReason"]
    feedback = chunk.get("promptFeedback")
    if feedback and feedback.get("blockReason"):
        result.block_reason = feedback["blockReason"]
