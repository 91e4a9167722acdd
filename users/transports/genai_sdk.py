"""The google-genai SDK transport (the suite's default): what most new apps run.

Arrival times: the SDK reads through httpx2 over httpcore2, whose network backend makes and reads
the sockets. Each user's client gets an httpx2 transport whose connection pool runs on
`StampedBackend`: a plain TCP (http://) stream turns on the kernel's receive stamps before its
first request and reads through users.arrival, so the SDK's chunks are dated by the arrival of their
bytes (CallTimer.mark, on the user's greenlet, which is the one reading). Its TLS runs through
memory BIOs over that same socket (`StampedTlsStream` on users/transports/tls_pipe.py), so https
calls are stamped too; only a proxy's connections (httpx2 builds those pools) are timed when read
(arrival_clock "read"). Chunks that waited in the socket together are dated by the last of them: a
read takes all that has arrived (64 KiB at most), and the kernel keeps one stamp, the latest, for
segments it merged while they waited.
"""

from __future__ import annotations

import contextlib
import functools
import io
import ssl
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import google.auth.credentials
import httpcore2
import httpx2
from google import genai
from google.genai import errors, types

from core import outcome
from users import arrival
from users.call import CallResult, CallSpec, CallTimer, FileImage, InlineImage, rest_body
from users.errors import CallError, api_error, classify, redact
from users.transports.replies import Reply, StreamReply, Usage, unary_result
from users.transports.tls_pipe import TlsPipe
from users.transports.uploads import UploadedFile

if TYPE_CHECKING:
    from users.auth import TokenSource
    from users.vertex import VertexAccess

Payload = tuple[list[Any], types.GenerateContentConfig]


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One SSL context per process: each genai.Client otherwise loads the CA bundle again, about
    60 ms of CPU (stalling every user in the process) and 2.5 MB per client."""
    return httpx2.create_ssl_context()


# httpx2's own defaults, which the SDK's client had before it was given a transport of ours.
LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20)


@contextlib.contextmanager
def _as_httpcore(timed_out: type[Exception], failed: type[Exception]) -> Iterator[None]:
    """Socket errors as httpcore's own streams raise them, so httpx2 and the SDK classify ours alike."""
    try:
        yield
    except TimeoutError as exc:
        raise timed_out(exc) from exc
    except OSError as exc:
        raise failed(exc) from exc


class StampedStream(httpcore2.NetworkStream):
    """httpcore's plain TCP stream, read through users.arrival once the kernel stamps it."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")
        # Decided at the first write: a TLS connection has been upgraded to another stream by then,
        # so its socket is never asked to stamp.
        self._stamped: bool | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._stamped:
            return self._inner.read(max_bytes, timeout)
        # httpcore's own read, with recvmsg: the same timeout and the same exceptions.
        with _as_httpcore(httpcore2.ReadTimeout, httpcore2.ReadError):
            self._sock.settimeout(timeout)
            return arrival.recv(self._sock, max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._stamped is None:
            self._stamped = arrival.enable(self._sock)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        # TLS through memory BIOs over this socket (users/transports/tls_pipe.py): its reads stay
        # ours and stamped, where httpcore's SSLSocket would date every https chunk by its read.
        try:
            self._sock.settimeout(timeout)
            pipe = TlsPipe(self._sock, ssl_context, server_hostname or "")
        except TimeoutError as exc:
            self._inner.close()
            raise httpcore2.ConnectTimeout(exc) from exc
        except Exception as exc:  # OSError (refused certificate...) or a bad host name: as httpcore maps them
            self._inner.close()
            raise httpcore2.ConnectError(exc) from exc
        return StampedTlsStream(pipe)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class StampedTlsStream(httpcore2.NetworkStream):
    """httpcore's TLS stream, on a TlsPipe: decrypted reads dated by their bytes' arrival."""

    def __init__(self, pipe: TlsPipe) -> None:
        self._pipe = pipe

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _as_httpcore(httpcore2.ReadTimeout, httpcore2.ReadError):
            self._pipe.settimeout(timeout)
            return self._pipe.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _as_httpcore(httpcore2.WriteTimeout, httpcore2.WriteError):
            self._pipe.settimeout(timeout)
            self._pipe.sendall(buffer)

    def close(self) -> None:
        self._pipe.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        raise NotImplementedError("TLS inside TLS (an https proxy) is not stamped: httpx2 builds its own")

    def get_extra_info(self, info: str) -> Any:
        raw = self._pipe.raw
        if info == "ssl_object":
            return self._pipe.tls  # httpcore reads the ALPN protocol chosen from it
        if info == "socket":
            return raw
        if info == "client_addr":
            return raw.getsockname()
        if info == "server_addr":
            return raw.getpeername()
        if info == "is_readable":  # an idle kept-alive connection the server has closed
            return self._pipe.peer_closed()
        return None


class StampedBackend(httpcore2.SyncBackend):
    """httpcore's socket backend, its TCP streams wrapped in StampedStream."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        return StampedStream(super().connect_tcp(host, port, timeout, local_address, socket_options))


class StampedTransport(httpx2.HTTPTransport):
    """httpx2's transport on a connection pool whose network backend is StampedBackend."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx2.Limits = LIMITS) -> None:
        super().__init__(verify=verify, limits=limits)
        # HTTPTransport takes no network backend, but everything it sends goes through `_pool`: that
        # pool is replaced by httpcore's public one with the same settings on our backend.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=StampedBackend(),
        )


def encode(spec: CallSpec) -> Payload:
    """The SDK's contents and config for a spec, read out of its REST body (users.call.rest_body).

    Built once per spec (pydantic construction is CPU kept out of the load loop). The config is
    the REST body's generationConfig and other top-level fields, validated by the SDK's own
    camelCase aliases: a field rest_body learns reaches this transport with no code here, and one
    the SDK does not know fails loudly (its models forbid extra fields).
    """
    body = rest_body(spec, image_data=lambda data: "")  # images go in `contents` as bytes, below
    del body["contents"]
    fields = {**body.pop("generationConfig", {}), **body}
    instruction = fields.get("systemInstruction")
    if instruction is not None and instruction == {"parts": [{"text": spec.system_instruction}]}:
        fields["systemInstruction"] = spec.system_instruction  # as apps write it (the SDK adds role user)
    config = types.GenerateContentConfig.model_validate(fields)
    # Plain strings for text: the SDK converts them faster than prebuilt Content objects.
    contents: list[Any] = [_part(p) for p in spec.parts]
    return contents, config


def _part(part: str | InlineImage | FileImage) -> Any:
    if isinstance(part, InlineImage):
        return types.Part.from_bytes(data=part.data, mime_type=part.mime_type)
    if isinstance(part, FileImage):
        return types.Part.from_uri(file_uri=part.uri, mime_type=part.mime_type)
    return part


class SourceCredentials(google.auth.credentials.Credentials):
    """The process's TokenSource as google-auth credentials for the SDK. The SDK refreshes
    credentials inside the call that finds them `expired` (google-auth's test: within 3m45s of
    expiry); these report the source's own state, which renews ahead in the background, so the
    SDK's call path only reads the token."""

    def __init__(self, source: TokenSource) -> None:
        super().__init__()
        self._source = source

    @property  # type: ignore[override]
    def token(self) -> str:
        return self._source.token()

    @token.setter
    def token(self, value: Any) -> None:
        """google-auth's constructor sets it; the source holds the real one."""

    @property
    def expired(self) -> bool:
        return self._source.expired()

    @property
    def valid(self) -> bool:
        return not self._source.expired()

    @property
    def quota_project_id(self) -> str | None:  # type: ignore[override]
        return self._source.quota_project or None

    def refresh(self, request: Any) -> None:
        """Inside a call: never a renewal of its own (it would be the call's latency), only the wait
        for one under way. A token still expired goes out and the API's 401 says so."""
        self._source.join_renewal()


class GenaiTransport:
    """One client per user: a shared client's pool (100 connections) queues users beyond it and
    inflates their TTFT, while a per-user client with the shared SSL context costs 0.1 MB."""

    name = "genai"

    def __init__(
        self, *, base_url: str, api_key: str, timeout_s: float, vertex: VertexAccess | None = None
    ) -> None:
        self._secrets = (api_key,)
        arrival.prime()
        context = _shared_ssl_context()
        # Vertex: project and location with the process's OAuth token, or an express-mode key.
        where: dict[str, Any] = {"api_key": api_key}
        if vertex is not None and vertex.tokens is not None:
            where = {
                "vertexai": True,
                "project": vertex.project,
                "location": vertex.location,
                "credentials": SourceCredentials(vertex.tokens),
            }
        elif vertex is not None:
            where = {"vertexai": True, "api_key": api_key}
        self._client = genai.Client(
            **where,
            http_options=types.HttpOptions(
                base_url=base_url,
                timeout=int(timeout_s * 1000),
                # `verify` still serves any proxy transport httpx2 builds from the environment.
                client_args={"verify": context, "transport": StampedTransport(verify=context)},
                async_client_args={"verify": context, "ssl": context},
            ),
        )

    @staticmethod
    def payload(spec: CallSpec) -> Payload:
        return spec.payload(GenaiTransport.name, encode)

    def close(self) -> None:
        self._client.close()

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        try:
            contents, config = self.payload(spec)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            message = f"the google-genai SDK cannot encode this request ({type(exc).__name__}: {exc})"
            raise CallError(outcome.CLIENT_ERROR, redact(message, self._secrets)) from exc
        try:
            if spec.stream:
                return self._stream(spec, contents, config, timer)
            response = self._client.models.generate_content(
                model=spec.model, contents=contents, config=config
            )
            return unary_result(_reply(response), response_bytes=_content_length(response))
        except CallError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def upload_file(self, data: bytes, mime_type: str, display_name: str) -> UploadedFile:
        """files.upload, the SDK's resumable upload (start, then the bytes with finalize)."""
        try:
            config = types.UploadFileConfig(mime_type=mime_type, display_name=display_name or None)
            file = self._client.files.upload(file=io.BytesIO(data), config=config)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc
        if not file.name or not file.uri:
            raise CallError(outcome.INVALID_RESPONSE, "files.upload answered a file without a name or uri")
        return UploadedFile(file.name, FileImage(file.mime_type or mime_type, file.uri))

    def delete_file(self, name: str) -> None:
        try:
            self._client.files.delete(name=name)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def _stream(
        self,
        spec: CallSpec,
        contents: list[Any],
        config: types.GenerateContentConfig,
        timer: CallTimer,
    ) -> CallResult:
        stream = StreamReply(timer)
        received = 0
        for chunk in self._client.models.generate_content_stream(
            model=spec.model, contents=contents, config=config
        ):
            stream.add(_reply(chunk))
            received += _content_length(chunk)
        return stream.finish(response_bytes=received)

    def _classify(self, exc: Exception) -> CallError:
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            return api_error(code, exc.status, exc.message, exc.details, self._secrets)
        return classify(
            exc,
            self._secrets,
            timeouts=(httpx2.TimeoutException,),
            connections=(httpx2.TransportError,),
        )


def _enum_name(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "name", value))


def _reply(response: types.GenerateContentResponse) -> Reply:
    """A response or stream chunk in the shared terms, read without the SDK's .text (which warns
    about thought parts and joins every candidate)."""
    text: list[str] = []
    thought: list[str] = []
    finish = ""
    if response.candidates:
        candidate = response.candidates[0]
        for part in (candidate.content.parts if candidate.content else None) or ():
            if part.text:
                (thought if part.thought else text).append(part.text)
        finish = _enum_name(candidate.finish_reason)
    usage = response.usage_metadata
    feedback = response.prompt_feedback
    return Reply(
        "".join(text),
        "".join(thought),
        None
        if usage is None
        else Usage(
            usage.prompt_token_count,
            usage.candidates_token_count,
            usage.thoughts_token_count,
            usage.cached_content_token_count,
        ),
        finish,
        _enum_name(feedback.block_reason) if feedback is not None else "",
    )


def _content_length(response: types.GenerateContentResponse) -> int:
    http = response.sdk_http_response
    length = (http.headers or {}).get("content-length") if http is not None else None
    return int(length) if length and length.isdigit() else 0
