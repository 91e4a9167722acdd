"""The Files API's HTTP side: the aiohttp handlers over emulator.files' FileStore.

Routes (both /v1 and /v1beta; google-genai 3.x calls /v1):
    POST   /upload/{ver}/files          start (X-Goog-Upload-Command: start), or, with ?upload_id=,
                                        one chunk (upload[, finalize] at X-Goog-Upload-Offset)
    GET    /{ver}/files[?pageSize&pageToken]
    GET    /{ver}/files/{id}, DELETE /{ver}/files/{id}
Every answer on an upload URL carries X-Goog-Upload-Status (google-genai sends a chunk again when
a reply has none); the upload URL points back at this emulator through the request's Host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from emulator.errors import ApiError, invalid_argument
from emulator.files import FileStore
from emulator.stats import Stats

MAX_PAGE_SIZE = 100  # files.list: the real API's maximum pageSize
DEFAULT_PAGE_SIZE = 10


class FilesApi:
    """The aiohttp handlers over one FileStore. `check_key` and `error_response` are the server's
    own (the same key rules and error bodies as every other route)."""

    def __init__(
        self,
        store: FileStore,
        stats: Stats,
        check_key: Callable[[web.Request], str],
        error_response: Callable[[ApiError], web.Response],
    ) -> None:
        self.store = store
        self.stats = stats
        self.check_key = check_key
        self.error_response = error_response

    def add_routes(self, app: web.Application, versions: tuple[str, ...]) -> None:
        for version in versions:
            app.router.add_post(f"/upload/{{version:{version}}}/files", self.upload)
            app.router.add_get(f"/{{version:{version}}}/files", self.list_files)
            app.router.add_get(f"/{{version:{version}}}/files/{{file_id}}", self.get_file)
            app.router.add_delete(f"/{{version:{version}}}/files/{{file_id}}", self.delete_file)

    async def _answer(
        self, route: str, request: web.Request, handler: Callable[[], Any]
    ) -> web.StreamResponse:
        self.stats.begin(f"{request.match_info['version']}/{route}", None)
        status = 200
        try:
            return await handler()
        except ApiError as exc:
            status = exc.code
            response = self.error_response(exc)
            response.headers.update(exc.headers)
            return response
        finally:
            self.stats.end(status)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        if "upload_id" in request.query:
            return await self._answer("files.upload", request, lambda: self._chunk(request))
        return await self._answer("files.create", request, lambda: self._start(request))

    async def _start(self, request: web.Request) -> web.Response:
        key = self.check_key(request)
        protocol = request.headers.get("X-Goog-Upload-Protocol", "")
        command = request.headers.get("X-Goog-Upload-Command", "")
        if protocol != "resumable" or command != "start":
            raise invalid_argument(
                "The emulator takes resumable uploads only: send X-Goog-Upload-Protocol: resumable and "
                f"X-Goog-Upload-Command: start (got {protocol[:20]!r}, {command[:20]!r})."
            )
        size_text = request.headers.get("X-Goog-Upload-Header-Content-Length", "")
        if not size_text.isdigit():
            raise invalid_argument(
                f"X-Goog-Upload-Header-Content-Length must be the file's size in bytes, got {size_text[:20]!r}."
            )
        mime = request.headers.get("X-Goog-Upload-Header-Content-Type", "").strip()
        metadata = await _file_metadata(request)
        mime = mime or str(metadata.get("mimeType") or metadata.get("mime_type") or "")
        if not mime:
            raise invalid_argument(
                "X-Goog-Upload-Header-Content-Type is missing: the file's MIME type is needed."
            )
        upload_id = self.store.start_upload(key, int(size_text), mime, metadata)
        url = f"{request.scheme}://{request.host}/upload/{request.match_info['version']}/files"
        headers = {
            "X-Goog-Upload-URL": f"{url}?upload_id={upload_id}&upload_protocol=resumable",
            "X-Goog-Upload-Status": "active",
            "X-Goog-Upload-Chunk-Granularity": str(8 * 1024 * 1024),
        }
        return web.Response(status=200, headers=headers)

    async def _chunk(self, request: web.Request) -> web.Response:
        # Every answer here carries an upload status: google-genai retries a reply without one.
        try:
            commands = {c.strip() for c in request.headers.get("X-Goog-Upload-Command", "").split(",")}
            if "upload" not in commands or not commands <= {"upload", "finalize"}:
                raise invalid_argument(
                    "X-Goog-Upload-Command must be 'upload' or 'upload, finalize' on an upload URL."
                )
            offset_text = request.headers.get("X-Goog-Upload-Offset", "")
            if not offset_text.isdigit():
                raise invalid_argument(
                    f"X-Goog-Upload-Offset must be a byte offset, got {offset_text[:20]!r}."
                )
            upload = self.store.upload(request.query["upload_id"])
            chunk = await _read_at_most(request, upload.size - len(upload.received))
            stored = self.store.receive(
                request.query["upload_id"], int(offset_text), chunk, "finalize" in commands
            )
        except ApiError as exc:
            exc.headers["X-Goog-Upload-Status"] = "final"
            raise
        if stored is None:
            return web.Response(status=200, headers={"X-Goog-Upload-Status": "active"})
        body = {"file": stored.resource(_base_url(request))}
        return web.json_response(body, headers={"X-Goog-Upload-Status": "final"})

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        async def handler() -> web.Response:
            stored = self.store.get(request.match_info["file_id"], self.check_key(request))
            return web.json_response(stored.resource(_base_url(request)))

        return await self._answer("files.get", request, handler)

    async def delete_file(self, request: web.Request) -> web.StreamResponse:
        async def handler() -> web.Response:
            self.store.delete(request.match_info["file_id"], self.check_key(request))
            return web.json_response({})

        return await self._answer("files.delete", request, handler)

    async def list_files(self, request: web.Request) -> web.StreamResponse:
        async def handler() -> web.Response:
            files = self.store.listing(self.check_key(request))
            try:
                size = int(request.query.get("pageSize") or DEFAULT_PAGE_SIZE)
                start = int(request.query.get("pageToken") or 0)
            except ValueError:
                raise invalid_argument("Invalid pageSize or pageToken.") from None
            size = max(1, min(size, MAX_PAGE_SIZE))
            base = _base_url(request)
            body: dict[str, Any] = {}
            page = files[start : start + size]
            if page:
                body["files"] = [f.resource(base) for f in page]
            if start + size < len(files):
                body["nextPageToken"] = str(start + size)
            return web.json_response(body)

        return await self._answer("files.list", request, handler)


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _file_metadata(request: web.Request) -> dict[str, Any]:
    """The start request's {"file": {...}} (google-genai always sends it; it may be empty)."""
    raw = await request.content.read(64 * 1024 + 1)
    if len(raw) > 64 * 1024:
        raise invalid_argument("The upload's metadata is larger than 64 KB.")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid_argument('Invalid JSON payload received: the body must be {"file": {...}}.') from None
    meta = data.get("file") if isinstance(data, dict) else None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise invalid_argument('Invalid JSON payload received: "file" must be an object.')
    return meta


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The chunk's bytes, refusing one past the declared size without reading it into memory."""
    if request.content_length is not None and request.content_length > limit:
        raise invalid_argument(
            f"The chunk of {request.content_length} bytes goes past the size declared in "
            "X-Goog-Upload-Header-Content-Length."
        )
    body = bytearray()
    async for block in request.content.iter_chunked(1 << 16):
        body += block
        if len(body) > limit:
            raise invalid_argument(
                "The chunk goes past the size declared in X-Goog-Upload-Header-Content-Length."
            )
    return bytes(body)
