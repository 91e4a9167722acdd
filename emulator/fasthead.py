"""Which requests the lean front (emulator.fastpath) serves, read from their head.

`POST /{v1,v1beta}/models/{model}:generateContent` or `:streamGenerateContent` over HTTP/1.1, and
the same two methods on Vertex AI's routes (emulator.vertex): `/{v1,v1beta1}/projects/{p}/locations/
{l}/publishers/google/models/{model}:...` and express mode's `/{v1,v1beta1}/publishers/google/
models/{model}:...`. With a Content-Length body of at most FAST_BODY_MAX (and the profile's limit),
without Transfer-Encoding, Expect or Upgrade, and no %-escape or `+` in the target (aiohttp decodes
those). Anything else is None here, and aiohttp serves it as it always did.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from emulator.vertex import VertexTarget

FAST_BODY_MAX = 1 << 18  # larger bodies (images) are rare and aiohttp streams them

_METHODS = {b"generateContent": "generateContent", b"streamGenerateContent": "streamGenerateContent"}
_VERSIONS = {b"v1": "v1", b"v1beta": "v1beta"}
_VERTEX_VERSIONS = {b"v1": "v1", b"v1beta1": "v1beta1"}
_EXPRESS = VertexTarget()
# A request with any of these goes to aiohttp: a body not framed by Content-Length, an interim
# response or a protocol switch to negotiate, an obsolete folded header line.
_UNSERVED = re.compile(
    rb"\r\n(?:transfer-encoding|expect|upgrade)\s*:|\r\n[ \t]|\r\nconnection:[^\r]*upgrade"
)


class Head(NamedTuple):
    version: str
    model: str
    method: str
    length: int  # of the body
    api_key: str | None  # x-goog-api-key, else ?key=
    request_id: str | None  # x-request-id: its send times are kept (emulator.sends)
    sse: bool  # ?alt=sse
    close: bool  # Connection: close
    target: VertexTarget | None  # a Vertex route's, else None (the Developer API)
    authorization: str | None  # the Authorization header (a Vertex route's bearer token)


def _value(head: bytes, at: int) -> bytes:
    """The header value that starts at `at`, stripped."""
    end = head.find(b"\r\n", at)
    return (head[at:] if end < 0 else head[at:end]).strip()


def parse_head(head: bytes, body_max: int) -> Head | None:
    """The head (request line and headers, without the blank line) of a request the lean front
    serves, else None. Header names are found in a lower-cased copy, values read from the head
    itself at the same place: a few C calls instead of a loop per header."""
    line_end = head.find(b"\r\n")
    try:
        verb, target, http = (head if line_end < 0 else head[:line_end]).split(b" ")
    except ValueError:
        return None
    if verb != b"POST" or http != b"HTTP/1.1" or b"%" in target or b"+" in target:
        return None
    path, _, query = target.partition(b"?")
    parts = path.split(b"/")
    route = _route(parts)
    if route is None:
        return None
    version, vertex = route
    model, _, method = parts[-1].partition(b":")
    if method not in _METHODS:
        return None
    lower = head.lower()
    if _UNSERVED.search(lower):  # Transfer-Encoding, Expect, Upgrade, a folded line
        return None
    at = lower.find(b"\r\ncontent-length:")
    if at < 0 or lower.find(b"\r\ncontent-length:", at + 17) >= 0:
        return None
    value = _value(head, at + 17)
    if not value.isdigit() or int(value) > body_max:
        return None
    length = int(value)
    at = lower.find(b"\r\nconnection:")
    close = at >= 0 and b"close" in _value(lower, at + 13)
    at = lower.find(b"\r\nx-goog-api-key:")
    key = _value(head, at + 17) if at >= 0 else b""
    at = lower.find(b"\r\nx-request-id:")
    request_id = _value(head, at + 15) if at >= 0 else b""
    authorization = None
    if vertex is not None:
        at = lower.find(b"\r\nauthorization:")
        authorization = _value(head, at + 16).decode("utf-8", "surrogateescape") if at >= 0 else None
    sse = False
    if query:
        alt = key_seen = False
        for item in query.split(b"&"):
            name, _, value = item.partition(b"=")
            if name == b"alt" and not alt:
                alt, sse = True, value == b"sse"
            elif name == b"key" and not key_seen:
                key_seen = True
                key = key or value
    return Head(
        version,
        model.decode("utf-8", "surrogateescape"),
        _METHODS[method],
        length,
        key.decode("utf-8", "surrogateescape") if key else None,
        request_id.decode("utf-8", "surrogateescape") if request_id else None,
        sse,
        close,
        vertex,
        authorization,
    )


def _route(parts: list[bytes]) -> tuple[str, VertexTarget | None] | None:
    """(version, Vertex target or None) of a generate path split at "/", else None. The model and
    method are the last part; an empty project, location or model is aiohttp's to refuse."""
    if parts[0] or not parts[-1]:
        return None
    if len(parts) == 4:
        return (_VERSIONS[parts[1]], None) if parts[2] == b"models" and parts[1] in _VERSIONS else None
    if parts[1] not in _VERTEX_VERSIONS or parts[-4:-1] != [b"publishers", b"google", b"models"]:
        return None
    version = _VERTEX_VERSIONS[parts[1]]
    if len(parts) == 6:
        return version, _EXPRESS
    if len(parts) != 10 or parts[2] != b"projects" or parts[4] != b"locations" or b"" in parts[3:6:2]:
        return None
    project, location = (part.decode("utf-8", "surrogateescape") for part in parts[3:6:2])
    return version, VertexTarget(project, location)
