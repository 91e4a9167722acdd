"""Images through the Files API: upload first, then a fileData part names the file.

`UploadingTransport` wraps a transport that can upload (`upload_file`, `delete_file`): each attempt
of a call uploads the spec's inline images it has not uploaded yet and sends the call with fileData
parts instead. Why inside the attempt: an app that sends images this way waits for the upload
before any answer, as an inline app waits for its bytes to go out, so the call's latency (e2e and
TTFT) includes the upload and the two ways compare on what the user waits for; an upload that fails
is the call's failure, classified by users.errors like any other, and retried by the same policy
(a retry reuses an upload that succeeded). The uploads' own times are reported apart as well
(`on_upload`: the vision user makes them a Locust row). `finish_call` deletes the call's files once
its answer is in, outside the timed call: the user has its answer by then.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from users.call import CallResult, CallSpec, CallTimer, FileImage, InlineImage


@dataclass(frozen=True, slots=True)
class UploadedFile:
    name: str  # files/<id>, for files.delete
    image: FileImage  # what a call sends in its place


class CanUpload(Protocol):
    name: str

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult: ...

    def upload_file(self, data: bytes, mime_type: str, display_name: str) -> UploadedFile:
        """Upload through the Files API. Raise users.errors.CallError, classified, on any failure."""
        ...

    def delete_file(self, name: str) -> None: ...

    def close(self) -> None: ...


def can_upload(transport: object) -> bool:
    return callable(getattr(transport, "upload_file", None)) and callable(
        getattr(transport, "delete_file", None)
    )


# (milliseconds, bytes) of one upload that succeeded.
UploadListener = Callable[[float, int], None]


class UploadingTransport:
    """A transport whose calls send their images through the Files API (see the module docstring)."""

    def __init__(self, inner: CanUpload, on_upload: UploadListener | None = None) -> None:
        self.inner = inner
        self.name = inner.name  # the Outcome names the transport that sent it
        self._on_upload = on_upload
        # The current call's uploads by image, so a retry reuses them; emptied by finish_call.
        self._uploaded: dict[int, tuple[InlineImage, UploadedFile]] = {}

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        parts = tuple(
            self._file_for(p, spec.item_id) if isinstance(p, InlineImage) else p for p in spec.parts
        )
        # A fresh spec per call: a file's URI differs every time, so no encoding can be kept.
        return self.inner.call(dataclasses.replace(spec, parts=parts), timer)

    def _file_for(self, image: InlineImage, display_name: str) -> FileImage:
        known = self._uploaded.get(id(image))
        if known is not None and known[0] is image:
            return known[1].image
        started = time.perf_counter()
        uploaded = self.inner.upload_file(image.data, image.mime_type, display_name)
        self._uploaded[id(image)] = (image, uploaded)
        if self._on_upload is not None:
            self._on_upload((time.perf_counter() - started) * 1000.0, len(image.data))
        return uploaded.image

    def finish_call(self) -> list[str]:
        """Delete the files of the call just made; the one-line reasons of deletes that failed
        (a file left behind expires after 48 hours, as on the real API)."""
        uploaded, self._uploaded = self._uploaded, {}
        problems: list[str] = []
        for _, file in uploaded.values():
            try:
                self.inner.delete_file(file.name)
            except Exception as exc:  # noqa: BLE001 - a failed clean-up is reported, not fatal
                problems.append(f"{file.name}: {getattr(exc, 'message', None) or exc}")
        return problems

    def close(self) -> None:
        self.inner.close()
