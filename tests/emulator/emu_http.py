"""Tiny stdlib HTTP helpers for emulator tests (raw wire checks, no SDK in the way)."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import urllib.error
import urllib.request
from typing import Any

from PIL import Image

from core.catalogue import default_model

MODEL = default_model()  # the catalogue's default, served whatever the day
FLASH = f"/v1beta/models/{MODEL}"
# A budget-thinking 2.5 model with no shutdown date: budget rules without a date to pin.
LITE = "gemini-2.5-flash-lite"
# A day on which gemini-2.5-flash and -pro are still served (they shut down on 2026-12-01): tests
# of 2.5 behaviour pin the emulator's line-up to it, so they do not break when that day passes.
PINNED_AS_OF = "2026-11-01"


def call(
    base: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = "test-key",
    raw: bytes | None = None,
    method: str | None = None,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body bytes, headers) of one request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        headers["x-goog-api-key"] = key
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def call_json(base: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    status, data, _ = call(base, path, body, **kwargs)
    return status, json.loads(data)


def text_request(text: str, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def png_b64(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def sse_events(data: bytes) -> list[dict[str, Any]]:
    text = data.decode()
    assert text.endswith("\r\n\r\n")
    return [json.loads(frame.removeprefix("data: ")) for frame in text.split("\r\n\r\n") if frame]


def exchange(base: str, raw: bytes) -> bytes:
    """One raw request on a fresh connection, read to the server's close."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def comparable(reply: bytes) -> bytes:
    """A reply with what differs by design between two answers blanked: date, response id, time."""
    reply = re.sub(rb"Date: [^\r]*\r\n", b"", reply)
    reply = re.sub(rb'"createTime": ?"[^"]*"', b'"createTime": ""', reply)
    return re.sub(rb'"responseId": ?"[^"]*"', b'"responseId": ""', reply)
