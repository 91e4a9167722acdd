"""The suite's own raw HTTP transport: REST JSON over keep-alive HTTP/1.1 on gevent sockets, no SDK.

Why its own client and not FastHttpUser's (geventhttpclient): its streamed-response iteration was
seen holding back about 1 KB, so a short first SSE event arrived late and TTFT was wrong. Here the
SSE parser sees every byte the moment recv() returns it, so a chunk is timed when it arrives; and a
call costs less CPU than a bare geventhttpclient POST (about 0.04 against 0.06 ms here).
Why not an SDK: this is the transport for the highest request rate per core. The JSON body of a
CallSpec is encoded once, kept on the spec and shared by every user of the process (images are
base64'd once, not per user); a call only formats a short header, sends, and parses the reply with
the C json module.

Semantics kept equal to the SDK transports, so runs compare:
- timeout_s bounds the connect and each socket read (as httpx and requests do), not the whole call;
- exactly HTTP 200 is success; an error body's google.rpc details give the kind and RetryInfo;
- a stream's `data: {"error": ...}` frame raises like an HTTP error with that code;
- JSON that does not parse is invalid_response; a dropped or garbled connection is connection.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core import outcome
from users.call import CallResult, CallSpec, CallTimer, FileImage, rest_payload
from users.errors import CallError
from users.transports.http11 import Connection, pool_for
from users.transports.replies import StreamReply, event_from_json, http_error, result_from_json
from users.transports.uploads import UploadedFile

if TYPE_CHECKING:
    from users.vertex import VertexAccess

API_VERSION = "v1beta"


def encode_request(spec: CallSpec) -> bytes:
    """The generateContent JSON body this transport sends, as users.call.rest_body describes it."""
    return rest_payload(spec)


class RawHttpTransport:
    name = "http"

    def __init__(
        self, *, base_url: str, api_key: str, timeout_s: float, vertex: VertexAccess | None = None
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base URL {base_url!r} must look like http://HOST:PORT or https://HOST")
        if any(c in api_key for c in "\r\n"):
            raise ValueError("the API key contains a line break: check GEMINI_API_KEY / --api-key")
        self._secrets = (api_key,)
        self._pool, host_header = pool_for(url, timeout_s=timeout_s, secrets=self._secrets)
        # Everything but the target and length is fixed per transport: format it once. What comes
        # from outside (a key may hold a "%") is escaped for the % formatting of each call.
        path, key = url.path.rstrip("/").replace("%", "%%"), api_key.replace("%", "%%")
        models = f"{API_VERSION}/models/" if vertex is None else vertex.model_path("").replace("%", "%%")
        # Vertex with OAuth: the process's current token goes into each call's head (users/auth.py
        # renews it in the background; the call never waits for it here).
        self._tokens = vertex.tokens if vertex is not None else None
        auth = "Authorization: Bearer %s" if self._tokens is not None else f"x-goog-api-key: {key}"
        if self._tokens is not None and self._tokens.quota_project:
            auth += f"\r\nx-goog-user-project: {self._tokens.quota_project.replace('%', '%%')}"
        fixed = (
            f"POST {path}/{models}%s HTTP/1.1\r\n"
            f"Host: {host_header}\r\n{auth}\r\nContent-Type: application/json\r\n"
            "User-Agent: gemini-locust-http/1\r\n"
        )
        self._head_format = fixed + "Content-Length: %d\r\n\r\n"
        # A timer's request id goes out as x-request-id, which the emulator files its send stamps under.
        self._head_format_with_id = fixed + "x-request-id: %s\r\nContent-Length: %d\r\n\r\n"
        self._path = url.path.rstrip("/")
        self._host_header = host_header
        self._key = api_key

    @staticmethod
    def payload(spec: CallSpec) -> bytes:
        """The spec's encoded body: built on first use, kept on the spec, shared by every user."""
        return rest_payload(spec)

    def close(self) -> None:
        self._pool.close()

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        try:
            body = rest_payload(spec)
        except (TypeError, ValueError) as exc:  # e.g. a response schema that is not JSON
            raise CallError(outcome.CLIENT_ERROR, f"request cannot be encoded as JSON: {exc}") from exc
        model = spec.model.removeprefix("models/")
        target = f"{model}:streamGenerateContent?alt=sse" if spec.stream else f"{model}:generateContent"
        first: tuple[str, ...] = (target,) if self._tokens is None else (target, self._tokens.token())
        if timer.request_id:
            head = (self._head_format_with_id % (*first, timer.request_id, len(body))).encode("latin-1")
        else:
            head = (self._head_format % (*first, len(body))).encode("latin-1")
        with self._pool.lease() as lease:
            conn = lease.conn
            conn.send(head, body)
            status, headers = conn.read_head()
            if status != 200:
                error_body = conn.read_body(headers)
                lease.complete = True
                raise http_error(status, error_body, self._secrets)
            if spec.stream:
                result = self._read_stream(conn, headers, timer)
                lease.complete = True
                return result
            reply = conn.read_body(headers)
            lease.complete = True
            return result_from_json(reply, self._secrets)

    # ---- the Files API, by hand: the resumable upload google-genai does (emulator/files.py) ----

    def upload_file(self, data: bytes, mime_type: str, display_name: str) -> UploadedFile:
        """Start a resumable upload, then send the bytes in one `upload, finalize` step."""
        metadata = json.dumps({"file": {"displayName": display_name} if display_name else {}}).encode()
        start_headers = {
            "x-goog-api-key": self._key,
            "Content-Type": "application/json",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        }
        status, headers, body = self._exchange(
            "POST", f"/upload/{API_VERSION}/files", start_headers, metadata
        )
        upload_url = headers.get("x-goog-upload-url", "")
        if status != 200:
            raise http_error(status, body, self._secrets)
        if not upload_url:
            raise CallError(outcome.INVALID_RESPONSE, "the upload start answered no X-Goog-Upload-URL")
        # Sent to our own host whatever the URL's (as google-genai does with a base URL): the path
        # and upload_id are what matter, and nothing of ours goes to a host we were not given.
        target = urlsplit(upload_url)
        path = target.path + (f"?{target.query}" if target.query else "")
        chunk_headers = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"}
        status, headers, body = self._exchange("POST", path, chunk_headers, data, with_prefix=False)
        if status != 200:
            raise http_error(status, body, self._secrets)
        if headers.get("x-goog-upload-status") != "final":
            raise CallError(
                outcome.INVALID_RESPONSE, "the upload did not end with X-Goog-Upload-Status: final"
            )
        try:
            file = json.loads(body)["file"]
            return UploadedFile(file["name"], FileImage(file.get("mimeType") or mime_type, file["uri"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CallError(outcome.INVALID_RESPONSE, f"the upload's reply holds no file: {exc!r}") from exc

    def delete_file(self, name: str) -> None:
        headers = {"x-goog-api-key": self._key}
        status, _, body = self._exchange("DELETE", f"/{API_VERSION}/{name}", headers, b"")
        if status != 200:
            raise http_error(status, body, self._secrets)

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes, *, with_prefix: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """One plain request on a pooled connection: (status, lower-case headers, body). Failures
        are classified like a call's."""
        lines = [f"{method} {self._path if with_prefix else ''}{path} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["User-Agent: gemini-locust-http/1", f"Content-Length: {len(body)}", "", ""]
        head = "\r\n".join(lines).encode("latin-1")
        with self._pool.lease() as lease:
            lease.conn.send(head, body)
            status, reply_headers = lease.conn.read_head()
            reply = lease.conn.read_body(reply_headers)
            lease.complete = True
            return status, reply_headers, reply

    def _read_stream(self, conn: Connection, headers: dict[str, str], timer: CallTimer) -> CallResult:
        """Parse SSE incrementally: each complete event is parsed and timed as soon as it arrives."""
        stream = StreamReply(timer)
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
                        stream.add(event_from_json(b"\n".join(data_lines), self._secrets))
                        data_lines = []
                elif line.startswith(b"data:"):
                    data_lines.append(line[6:] if line.startswith(b"data: ") else line[5:])
                # `event:`, `id:`, `retry:` and `:` comment lines carry nothing the API uses.
            pending = pending[start:]
        if pending.startswith(b"data:"):
            data_lines.append(pending[5:].strip())
        if data_lines:  # a last event without its blank line: still the server's answer
            stream.add(event_from_json(b"\n".join(data_lines), self._secrets))
        return stream.finish(response_bytes=received)
