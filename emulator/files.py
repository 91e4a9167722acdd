"""The Files API: resumable uploads, files.get / list / delete, and the fileData parts that name them.

The store; emulator.file_routes holds its HTTP handlers. On the wire, as google-genai 3.4 does it
(files.upload -> _extra_utils.prepare_resumable_upload and
_api_client.upload_file):
    POST /upload/{ver}/files   X-Goog-Upload-Protocol: resumable, -Command: start,
                               -Header-Content-Length / -Content-Type, body {"file": {...}}
        -> 200, X-Goog-Upload-URL (this emulator, the request's Host), X-Goog-Upload-Status: active
    POST <upload URL>          X-Goog-Upload-Command: upload[, finalize], X-Goog-Upload-Offset, bytes
        -> "active" until finalized, then {"file": File} with X-Goog-Upload-Status: final
    GET /{ver}/files[?pageSize&pageToken], GET and DELETE /{ver}/files/{id}
The upload URL carries an unguessable upload_id and, like the real one, no key.

A fileData part must name a file that exists now: a missing, deleted or expired one, or one of
another project, is the real API's 403 "You do not have permission to access the File X or it may
not exist." (the same answer for get and delete). Answers are cached per request body
(emulator.generation.Prepared), so `attach` reads a file once per body and `require` checks every
request again.

Memory is bounded: files and uploads under way share STORE_LIMIT_BYTES, reserved when an upload
starts; past it, the real API's storage 429 (QuotaFailure file_storage_bytes, Help link, no
RetryInfo). Files expire 48 h after creation on the emulated clock. With `--workers N` each worker
keeps its own files: use one worker (the default) for uploads.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.errors import HELP, QUOTA_FAILURE, ApiError, invalid_argument
from emulator.latency import Clock
from emulator.profiles import Profile

# The real API: 2 GB per file, 20 GB per project, 48 h (ai.google.dev/gemini-api/docs/files). The
# emulator holds bytes in RAM, so its whole store is capped at one real file's maximum: any file
# the real API takes fits, and a run that never deletes cannot take more than 2 GiB of the host.
MAX_FILE_BYTES = 2 * 1024**3
STORE_LIMIT_BYTES = 2 * 1024**3
LIFETIME_S = 48 * 3600
_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
# A fileUri that names a Files API resource: this emulator's own, or the real host's.
_FILE_URI = re.compile(r"(?:^|/)(?:v1beta|v1)/files/([^/?#]+)$|^files/([^/?#]+)$")


def no_such_file(file_id: str) -> ApiError:
    """The real API's answer for a file that is not there or not yours (seen in public captures)."""
    return ApiError(403, f"You do not have permission to access the File {file_id} or it may not exist.")


def storage_exhausted(limit: int) -> ApiError:
    """The real storage quota's 429 (python-genai#1172, alphaXiv/feedback#16): Help, no RetryInfo."""
    return ApiError(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: generativelanguage.googleapis.com/file_storage_bytes, limit: {limit}",
        [
            {
                "@type": QUOTA_FAILURE,
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/file_storage_bytes",
                        "quotaId": "FileStorageBytesPerProject",
                        "quotaValue": str(limit),
                    }
                ],
            },
            {
                "@type": HELP,
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ],
    )


@dataclass(slots=True)
class StoredFile:
    file_id: str
    owner: tuple[str, str]  # ("project", name) or ("key", key): who may read it
    display_name: str
    mime_type: str
    data: bytes
    created: float  # emulated epoch seconds

    def resource(self, base_url: str) -> dict[str, Any]:
        stamp = _rfc3339(self.created)
        body: dict[str, Any] = {"name": f"files/{self.file_id}"}
        if self.display_name:
            body["displayName"] = self.display_name
        body.update(
            mimeType=self.mime_type,
            sizeBytes=str(len(self.data)),
            createTime=stamp,
            updateTime=stamp,
            expirationTime=_rfc3339(self.created + LIFETIME_S),
            # The real API's sha256Hash is the hex digest's text, base64'd (88 characters).
            sha256Hash=base64.b64encode(hashlib.sha256(self.data).hexdigest().encode()).decode(),
            uri=f"{base_url}/v1beta/files/{self.file_id}",
            state="ACTIVE",
            source="UPLOADED",
        )
        return body


@dataclass(slots=True)
class Upload:
    """A resumable upload under way: its declared size is reserved in the store until it ends."""

    file_id: str
    owner: tuple[str, str]
    display_name: str
    mime_type: str
    size: int
    started: float  # emulated epoch seconds: an upload abandoned for LIFETIME_S is dropped
    received: bytearray = field(default_factory=bytearray)


def _rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_id_of(uri: str) -> str | None:
    """The id in a fileUri that names a Files API file ("…/v1beta/files/ID" or "files/ID"), else None."""
    match = _FILE_URI.search(uri.strip())
    if match is None:
        return None
    return match.group(1) or match.group(2)


class FileStore:
    """Every file and upload of one emulator process, and the bytes they hold."""

    def __init__(self, profile: Profile, clock: Clock, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._epoch = wall()  # the emulated wall clock starts at the real one
        self._owners = {key: ("project", name) for name, keys in profile.projects.items() for key in keys}
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.reserved = 0  # bytes of stored files plus declared sizes of uploads under way

    def now(self) -> float:
        return self._epoch + self.clock.now()

    def owner_of(self, key: str) -> tuple[str, str]:
        # A project's name and a key's own project are kept apart, as emulator.quotas does.
        return self._owners.get(key, ("key", key))

    def _expire(self) -> None:
        cutoff = self.now() - LIFETIME_S
        for file_id in [i for i, f in self.files.items() if f.created <= cutoff]:
            self._drop(file_id)
        for upload_id in [i for i, u in self.uploads.items() if u.started <= cutoff]:
            self.reserved -= self.uploads.pop(upload_id).size

    def _drop(self, file_id: str) -> None:
        stored = self.files.pop(file_id)
        self.reserved -= len(stored.data)

    def start_upload(self, key: str, size: int, mime_type: str, metadata: dict[str, Any]) -> str:
        """Open an upload of `size` bytes; returns its upload id. Raises the API's 400 or 429."""
        self._expire()
        name = str(metadata.get("name") or "")
        file_id = name.removeprefix("files/") if name else secrets.token_hex(6)
        if not _ID.fullmatch(file_id):
            raise invalid_argument(
                f"Invalid file name {name!r}: the id after files/ is up to 40 lowercase letters, digits "
                "or dashes, and does not start or end with a dash."
            )
        if file_id in self.files or any(u.file_id == file_id for u in self.uploads.values()):
            raise ApiError(409, f"File files/{file_id} already exists.")
        if size > MAX_FILE_BYTES:
            raise invalid_argument(f"File size {size} bytes exceeds the maximum of {MAX_FILE_BYTES} bytes.")
        if self.reserved + size > STORE_LIMIT_BYTES:
            raise storage_exhausted(STORE_LIMIT_BYTES)
        display = str(metadata.get("displayName") or metadata.get("display_name") or "")
        if len(display) > 512:
            raise invalid_argument("displayName must be no more than 512 characters.")
        upload_id = secrets.token_urlsafe(24)
        self.uploads[upload_id] = Upload(file_id, self.owner_of(key), display, mime_type, size, self.now())
        self.reserved += size
        return upload_id

    def upload(self, upload_id: str) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise invalid_argument(f"Unknown upload_id {upload_id[:40]!r}: no upload under way has this id.")
        return upload

    def receive(self, upload_id: str, offset: int, chunk: bytes, finalize: bool) -> StoredFile | None:
        """Append one chunk; the file when finalized, else None. A wrong step ends nothing: the
        client may send it again from the right offset."""
        upload = self.upload(upload_id)
        if offset != len(upload.received):
            raise invalid_argument(
                f"X-Goog-Upload-Offset {offset} does not match the {len(upload.received)} bytes received so far."
            )
        if offset + len(chunk) > upload.size:
            raise invalid_argument(
                f"The upload is larger than the {upload.size} bytes declared in "
                "X-Goog-Upload-Header-Content-Length."
            )
        if finalize and offset + len(chunk) != upload.size:
            raise invalid_argument(
                f"The upload was finalized at {offset + len(chunk)} bytes, but "
                f"X-Goog-Upload-Header-Content-Length declared {upload.size}."
            )
        upload.received += chunk
        if not finalize:
            return None
        del self.uploads[upload_id]
        data = bytes(upload.received)
        stored = StoredFile(
            upload.file_id, upload.owner, upload.display_name, upload.mime_type, data, self.now()
        )
        self.files[stored.file_id] = stored
        return stored

    def get(self, file_id: str, key: str) -> StoredFile:
        """The caller's file, or the 403 the real API gives for a missing or foreign one."""
        stored = self.files.get(file_id)
        if stored is not None and stored.created <= self.now() - LIFETIME_S:
            self._drop(file_id)
            stored = None
        if stored is None or stored.owner != self.owner_of(key):
            raise no_such_file(file_id)
        return stored

    def delete(self, file_id: str, key: str) -> None:
        self.get(file_id, key)
        self._drop(file_id)

    def listing(self, key: str) -> list[StoredFile]:
        """The caller's files, newest first (the real API lists by creation time, newest first)."""
        self._expire()
        owner = self.owner_of(key)
        return sorted((f for f in self.files.values() if f.owner == owner), key=lambda f: -f.created)

    # ---- fileData parts ------------------------------------------------------------------------

    def attach(self, request: dict[str, Any]) -> tuple[str, ...]:
        """Give every fileData part that names an uploaded file its bytes (`_bytes`, read by
        emulator.tokens like inlineData's) and, when the part has none, the file's mimeType.
        Returns the ids named, for `require` on every request. Raises the 403 for a missing file.

        Owners are not checked here (this runs once per body, cached across keys): `require` does."""
        named: list[str] = []
        contents = list(request.get("contents") or [])
        if request.get("systemInstruction"):
            contents.append(request["systemInstruction"])
        for content in contents:
            for part in content.get("parts") or []:
                ref = part.get("fileData")
                file_id = file_id_of(str(ref.get("fileUri") or "")) if ref is not None else None
                if ref is None or file_id is None:
                    continue
                stored = self.files.get(file_id)
                if stored is None:
                    raise no_such_file(file_id)
                part["fileData"] = dict(
                    ref, _bytes=stored.data, mimeType=ref.get("mimeType") or stored.mime_type
                )
                named.append(file_id)
        return tuple(named)

    def require(self, file_ids: tuple[str, ...], key: str) -> None:
        """Every named file still exists and belongs to the caller's project (checked per request)."""
        for file_id in file_ids:
            self.get(file_id, key)
