"""The app user's client: one HTTP request to the user's own service, timed like a Gemini call.

Not a Gemini transport (it is not registered, and --transport never offers it): it sends what a
prepared AppCall holds to the service's URL, with the call's request id in a header the service
forwards to its model calls, and hands back the reply as a CallResult. It reads through the same
keep-alive connections as the raw HTTP transport (users/transports/http11.py), so the reply's end
is the kernel's arrival stamp of its bytes, not when the generator got round to reading them.

Classification, the same taxonomy as a Gemini call's:
- no connection, or one dropped mid-reply: `connection`; no bytes for --timeout: `timeout`;
- a status the run does not expect (--app-expect-status): 429 `rate_limited`, 5xx `server_error`,
  other 4xx `client_error`, anything else (a 3xx, a 204 where 200 was expected) `invalid_response`;
- a body that is not what --app-expect-json asks for is the app user's judgement (users/app.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from core import outcome
from users.call import CallResult, CallSpec, CallTimer
from users.errors import CallError, kind_for_status, redact
from users.transports.http11 import pool_for

NAME = "app"
BODILESS = (204, 304)
MESSAGE_BODY_CHARS = 120  # of an unexpected answer, in its error message (redacted, one line)


@dataclass(frozen=True, slots=True)
class AppCall(CallSpec):
    """A prepared request to the user's service: its request target (path and query) and body,
    filled from one fixture item once, before the load."""

    method: str = "POST"
    target: str = "/"
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class AppEndpoint:
    """Where and how the app user calls the service: fixed for a run."""

    url: str
    method: str = "POST"
    content_type: str = "application/json"
    request_id_header: str = "x-request-id"
    expect_status: frozenset[int] = frozenset({200})


class AppTransport:
    name = NAME

    def __init__(self, endpoint: AppEndpoint, *, timeout_s: float, secrets: tuple[str, ...] = ()) -> None:
        url = urlsplit(endpoint.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--app-url {endpoint.url!r} must look like http://HOST:PORT/PATH")
        self.endpoint = endpoint
        self._pool, host_header = pool_for(url, timeout_s=timeout_s, secrets=secrets)
        # Everything but the method, target, id and length is fixed for the run: formatted once.
        self._head = (
            "%s %s HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"Content-Type: {endpoint.content_type}\r\n"
            "Accept: application/json\r\n"
            "User-Agent: gemini-locust-app/1\r\n"
            f"{endpoint.request_id_header}: %s\r\n"
            "Content-Length: %d\r\n\r\n"
        )
        self._where = f"{url.hostname}:{self._pool.address[1]}"

    def close(self) -> None:
        self._pool.close()

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        if not isinstance(spec, AppCall):
            raise TypeError(f"the app client sends AppCall specs, not {type(spec).__name__}")
        head = (self._head % (spec.method, spec.target, timer.request_id, len(spec.body))).encode("latin-1")
        try:
            with self._pool.lease() as lease:
                lease.conn.send(head, spec.body)
                status, headers = lease.conn.read_head()
                # No body after these, whatever the headers say (RFC 9112 6.3): reading one would
                # wait on a kept-alive connection until --timeout.
                body = b"" if status in BODILESS or status < 200 else lease.conn.read_body(headers)
                lease.complete = True
        except CallError as err:
            if err.kind == outcome.CONNECTION:
                err.message = f"the app at {self._where}: {err.message}"
            raise
        if status not in self.endpoint.expect_status:
            raise self._unexpected(status, body)
        return CallResult(
            text=body.decode("utf-8", errors="replace"), http_status=status, response_bytes=len(body)
        )

    def _unexpected(self, status: int, body: bytes) -> CallError:
        expected = ", ".join(str(code) for code in sorted(self.endpoint.expect_status))
        kind = kind_for_status(status) if status >= 400 else outcome.INVALID_RESPONSE
        text = body[:MESSAGE_BODY_CHARS].decode("utf-8", errors="replace")
        message = redact(f"the app answered HTTP {status} (expected {expected}): {text}", self._pool.secrets)
        return CallError(kind, message, http_status=status)
