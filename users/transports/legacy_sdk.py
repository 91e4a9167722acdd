"""The google-generativeai (legacy, end-of-life) SDK transport, over REST: what older apps still run.

How it is wired, and why:
- REST, not gRPC: the SDK's default gRPC transport blocks the gevent hub (every user in the process
  would wait) unless grpc's gevent support is set up first. REST goes through `requests`, which
  gevent's monkey-patching makes cooperative.
- Configuration is module-global in this SDK (`genai.configure`). We call it once per process per
  (base URL, key), under a lock, take the generative client it makes and keep it in our own table;
  every transport with that URL and key shares it (the SDK's own usage pattern: configure once,
  share the client). Its requests session gets a connection pool as large as a load test needs
  (the default keeps 10 connections and opens and drops the rest on every call).
- The SDK retries 503 by itself for up to 600 s; we pass retry=None and our timeout on each call
  so what the server did is what gets measured (the suite's RetryPolicy decides about retries).
- We call the SDK's generated client (`GenerativeServiceClient.generate_content` /
  `.stream_generate_content`), which is what `GenerativeModel.generate_content` calls. The
  GenerativeModel wrapper adds nothing on the wire, but its stream iterator holds each chunk back
  until the next one has arrived (look-ahead, to know the stream is done): timed through it, TTFT
  would be the second chunk's arrival. The request proto is read out of the spec's REST body
  (users.call.rest_body: the REST JSON is the protos' own JSON mapping), built once per CallSpec
  and kept on it, shared by every user.
- Streaming is the SDK's own: a JSON array read from the HTTP body (not SSE).
- A `{"error": ...}` element inside the streamed array is dropped by the SDK's parser (it ignores
  unknown fields and yields an empty chunk); a hook on the REST interceptor turns it back into the
  google.api_core exception of its code, so mid-stream errors count as on the other transports.
- Arrival times: the session's adapter (`StampedAdapter`) gives urllib3 a connection class for
  plain http (`StampedConnection`) that, once connected, turns on the kernel's receive stamps and
  swaps its socket for one of the same class whose recv / recv_into go through users.arrival.
  http.client reads the reply through that socket's makefile, so every body read is dated by the
  arrival of its bytes. Chunks that waited in the socket together share the latest one's stamp (a
  buffered read takes up to 8 KiB, and the kernel keeps the latest stamp of segments it merged).
  https connections are urllib3's own: decrypted reads carry no stamp, so they are timed when read.

Known blind spots of the old protos (v1beta as of 2024): no `thoughtsTokenCount`, so thinking
tokens are recovered from the counts they do have (see `_thoughts`); no `thought` flag on parts
(thought text would count as answer text); JSON Schema is sent as the older OpenAPI-subset
`responseSchema` with the keywords it cannot express dropped; and proto3 drops zero counts, so a 0
reads as "not said" (None) as it does from the real API's JSON.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import warnings
from typing import Any

import gevent.local
import requests
from google.api_core import exceptions as core_exceptions
from google.protobuf import json_format
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from core import outcome
from users import arrival
from users.call import CallResult, CallSpec, CallTimer, rest_body
from users.errors import CallError, api_error, classify, redact, timeout_error
from users.transports.replies import Reply, StreamReply, Usage, unary_result

logger = logging.getLogger(__name__)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # "support has ended": we know, we test it on purpose
    import google.generativeai as legacy_genai
    from google.generativeai import client as legacy_client
    from google.generativeai import protos

POOL_SIZE = 4096  # connections kept per host by the shared client (one per concurrent user)
_SCHEMA_KEYS = {"type", "format", "description", "nullable", "enum", "items", "properties", "required"}

# The SDK's configuration is process-global (genai.configure), so its clients are too: one per
# (base URL, key), made under the lock.
_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}
_last_reply = gevent.local.local()  # content-length of the last reply, per greenlet (a session hook)


def _raise_error_frames(response: Any) -> Any:
    """post_stream_generate_content hook: raise the api_core exception of an `{"error": ...}` element.

    The SDK's stream parser hands each array element, whitespace stripped, to `_grab`, which parses
    it as a GenerateContentResponse with unknown fields ignored: an error element would become an
    empty chunk. We look at the raw element first.
    """
    grab = response._grab

    def checked_grab() -> Any:
        if response._ready_objs[0].startswith('{"error"'):
            raise _exception_from_error_json(response._ready_objs.popleft())
        return grab()

    response._grab = checked_grab
    return response


def _exception_from_error_json(raw: str) -> Exception:
    try:
        error = json.loads(raw)["error"]
        code = int(error.get("code") or 0)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ValueError(f"stream error frame is not valid: {raw[:120]!r}")
    exc = core_exceptions.from_http_status(
        code, str(error.get("message", "")), details=error.get("details") or []
    )
    exc.status_name = str(error.get("status") or "")  # type: ignore[attr-defined]
    return exc


def _note_reply_size(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    _last_reply.content_length = response.headers.get("content-length")


class _StampedReads:
    """recv and recv_into through users.arrival, mixed into a socket's own class (the rest is its own)."""

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if flags:  # arrival's reads take no flags; the HTTP stack makes no flagged read anyway
            return super().recv(bufsize, flags)  # type: ignore[misc]
        return arrival.recv(self, bufsize)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if flags:
            return super().recv_into(buffer, nbytes, flags)  # type: ignore[misc]
        return arrival.recv_into(self, buffer, nbytes)


@functools.cache
def _stamped_class(socket_class: type) -> type:
    # Made per class: gevent's socket under monkey-patching, the standard library's without it.
    return type(f"Stamped{socket_class.__name__}", (_StampedReads, socket_class), {"__slots__": ()})


def _stamped_socket(sock: Any) -> Any:
    """A socket of the same class over the same descriptor (options and timeout kept), reading with
    stamps; `sock` itself where the kernel will not stamp.

    A new object, not patched methods: makefile's reader calls the socket's own recv_into, which a
    subclass overrides without an instance attribute (or a reference cycle) on every connection.
    """
    if not arrival.enable(sock):
        return sock
    timeout = sock.gettimeout()
    stamped = _stamped_class(type(sock))(sock.family, sock.type, sock.proto, fileno=sock.detach())
    stamped.settimeout(timeout)
    return stamped


class StampedConnection(HTTPConnection):
    """urllib3's plain http connection, its socket reading with the kernel's arrival stamps."""

    def connect(self) -> None:
        super().connect()
        if self.sock is not None:
            self.sock = _stamped_socket(self.sock)


class StampedConnectionPool(HTTPConnectionPool):
    ConnectionCls = StampedConnection


class StampedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose http:// pools are StampedConnectionPool (https:// ones are urllib3's)."""

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = requests.adapters.DEFAULT_POOLBLOCK,
        **pool_kwargs: Any,
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        # The pool manager's per-instance table of pool classes, there to be overridden.
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "http": StampedConnectionPool,
        }


def shared_client(base_url: str, api_key: str) -> Any:
    """The process's generative client for this (URL, key), configured once."""
    key = (base_url, api_key)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            legacy_genai.configure(
                api_key=api_key, transport="rest", client_options={"api_endpoint": base_url}
            )
            client = legacy_client.get_default_generative_client()
            transport = client._transport
            if not hasattr(transport, "_session") or not hasattr(transport, "_interceptor"):
                raise RuntimeError(
                    "google-generativeai REST transport layout changed: pin google-generativeai 0.8.x"
                )
            # On the interceptor instance the transport already holds: its wrapped methods keep it.
            transport._interceptor.post_stream_generate_content = _raise_error_frames
            adapter = StampedAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
            transport._session.mount("http://", adapter)
            transport._session.mount("https://", adapter)
            transport._session.hooks["response"].append(_note_reply_size)
            _clients[key] = client
    return client


def _schema(schema: Any) -> Any:
    """JSON Schema -> the OpenAPI subset protos.Schema knows, in its JSON form (type names are
    the enum's, upper case)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _SCHEMA_KEYS}
    if isinstance(out.get("type"), list):  # ["string", "null"] -> nullable string
        types = [t for t in out["type"] if t != "null"]
        out["nullable"] = len(types) < len(out["type"])
        out["type"] = types[0] if types else "string"
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].upper()
    if "items" in out:
        out["items"] = _schema(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _schema(sub) for name, sub in out["properties"].items()}
    return out


@functools.cache
def _warn_no_thinking_config() -> None:
    # google-generativeai's 2024 protos have no thinkingConfig: apps on this SDK cannot set it either.
    logger.warning(
        "the legacy SDK cannot send thinkingConfig: --thinking-budget and --thinking-level are ignored "
        "with --transport legacy (the model thinks at its default)"
    )


@functools.cache
def _warn_no_media_resolution() -> None:
    logger.warning(
        "the legacy SDK cannot send mediaResolution: --media-resolution is ignored with --transport legacy"
    )


def encode(spec: CallSpec) -> Any:
    """The GenerateContentRequest proto of a spec, parsed from its REST body.

    Only what the 2024 protos cannot say is translated: JSON Schema to the older responseSchema,
    and thinkingConfig and mediaResolution dropped with a warning. Any other field they lack, or an enum name they do
    not know, fails to parse: a new CallSpec field is never dropped without a word.
    """
    body = rest_body(spec)
    config = body.get("generationConfig", {})
    if config.pop("thinkingConfig", None) is not None:
        _warn_no_thinking_config()
    if config.pop("mediaResolution", None) is not None:
        _warn_no_media_resolution()
    if "responseJsonSchema" in config:
        config["responseSchema"] = _schema(config.pop("responseJsonSchema"))
    if not config:
        body.pop("generationConfig", None)
    body["model"] = f"models/{spec.model.removeprefix('models/')}"
    request = protos.GenerateContentRequest()
    json_format.ParseDict(body, protos.GenerateContentRequest.pb(request))
    return request


class LegacyTransport:
    name = "legacy"

    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None:
        self._secrets = (api_key,)
        self._timeout_s = timeout_s
        arrival.prime()
        self._client = shared_client(base_url.rstrip("/"), api_key)

    @staticmethod
    def payload(spec: CallSpec) -> Any:
        return spec.payload(LegacyTransport.name, encode)

    def close(self) -> None:
        """The client is shared by the process: nothing of ours to close."""

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        try:
            request = self.payload(spec)
        except (json_format.Error, ValueError, TypeError, KeyError) as exc:  # e.g. an enum the protos lack
            message = f"the legacy SDK cannot encode this request ({type(exc).__name__}: {exc})"
            raise CallError(outcome.CLIENT_ERROR, redact(message, self._secrets)) from exc
        try:
            if spec.stream:
                return self._stream(request, timer)
            _last_reply.content_length = None
            response = self._client.generate_content(request, retry=None, timeout=self._timeout_s)
            length = _last_reply.content_length
            return unary_result(
                _reply(response), response_bytes=int(length) if length and length.isdigit() else 0
            )
        except CallError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def _stream(self, request: Any, timer: CallTimer) -> CallResult:
        stream = StreamReply(timer)
        for chunk in self._client.stream_generate_content(request, retry=None, timeout=self._timeout_s):
            stream.add(_reply(chunk))
        return stream.finish()

    def _classify(self, exc: Exception) -> CallError:
        if isinstance(exc, core_exceptions.GoogleAPICallError):
            message = exc.message or ""
            if message.startswith(("POST ", "GET ")) and ": " in message:
                message = message.split(": ", 1)[1]  # drop the "POST <url>: " prefix the SDK adds
            code = int(exc.code or 0)
            return api_error(code, _status_name(exc), message, list(exc.details or []), self._secrets)
        if isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc).lower():
            # requests raises ConnectionError(ReadTimeoutError) for a read timeout inside a stream.
            return timeout_error(repr(exc), self._secrets)
        # json_format.ParseError (malformed JSON), ValueError ("Can only parse array of JSON
        # objects", "Unfinished stream") and the rest fall through to invalid_response.
        return classify(
            exc,
            self._secrets,
            timeouts=(requests.exceptions.Timeout, TimeoutError),
            connections=(requests.exceptions.RequestException, ConnectionError),
        )


def _status_name(exc: core_exceptions.GoogleAPICallError) -> str:
    name = getattr(exc, "status_name", "")
    if name:
        return name
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"]["status"])
    except Exception:  # noqa: BLE001 - the status name is decoration for the message
        status = getattr(exc, "grpc_status_code", None)
        return getattr(status, "name", "") or ""


def _enum_name(value: Any) -> str:
    """An enum's name, '' for the proto3 zero value (*_UNSPECIFIED = the server did not say)."""
    if not value:
        return ""
    return str(getattr(value, "name", value))


def _count(value: int) -> int | None:
    return value or None  # proto3 cannot tell 0 from absent; the real API omits zeros anyway


_USAGE_FIELDS = frozenset(f.name for f in protos.GenerateContentResponse.UsageMetadata.pb().DESCRIPTOR.fields)
_HAS_THOUGHTS = "thoughts_token_count" in _USAGE_FIELDS
_HAS_TOOL_USE = "tool_use_prompt_token_count" in _USAGE_FIELDS


def _thoughts(counts: Any) -> int | None:
    """thoughtsTokenCount: read when the protos have it, else recovered from the total.

    The REST API's totalTokenCount is prompt + candidates + thoughts + toolUsePrompt;
    cachedContentTokenCount is already inside promptTokenCount (not subtracted again). The 2024
    protos also lack toolUsePromptTokenCount, which the API only sends for tool calls (the suite
    sends no tools), so there the remainder is the thoughts. Zero or less means "not said" (None),
    as from the real API's JSON, which omits thoughtsTokenCount when the model did not think.
    """
    if _HAS_THOUGHTS:
        return _count(counts.thoughts_token_count)
    rest = counts.total_token_count - counts.prompt_token_count - counts.candidates_token_count
    if _HAS_TOOL_USE:
        rest -= counts.tool_use_prompt_token_count
    return rest if rest > 0 else None


def _reply(chunk: Any) -> Reply:
    """A response or stream chunk proto in the shared terms. The 2024 protos have no thought flag
    (thought text counts as answer text) and no thoughtsTokenCount (recovered: `_thoughts`)."""
    text = finish = block = ""
    if chunk.candidates:
        candidate = chunk.candidates[0]
        text = "".join(part.text for part in candidate.content.parts if part.text)
        finish = _enum_name(candidate.finish_reason)
    if "prompt_feedback" in chunk:
        block = _enum_name(chunk.prompt_feedback.block_reason)
    usage = None
    if "usage_metadata" in chunk:
        counts = chunk.usage_metadata
        usage = Usage(
            prompt=_count(counts.prompt_token_count),
            output=_count(counts.candidates_token_count),
            thoughts=_thoughts(counts),
            cached=_count(counts.cached_content_token_count),
        )
    return Reply(text, "", usage, finish, block)
