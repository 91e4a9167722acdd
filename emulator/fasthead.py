"""Which requests the lean front (emulator.fastpath) serves, read from their head.

`POST /{v1,v1beta}/models/{model}:generateContent` or `:streamGenerateContent` over HTTP/1.1, with a
Content-Length body of at most FAST_BODY_MAX (and the profile's limit), without Transfer-Encoding,
Expect or Upgrade, and no %-escape or `+` in the target (aiohttp decodes those). Anything else is
None here, and aiohttp serves it as it always did.
"""

from __future__ import annotations

import re
from typing import NamedTuple

FAST_BODY_MAX = 1 << 18  # larger bodies (images) are rare and aiohttp streams them

_METHODS = {b"generateContent": "generateContent", b"streamGenerateContent": "streamGenerateContent"}
_VERSIONS = {b"v1": "v1", b"v1beta": "v1beta"}
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
    if len(parts) != 4 or parts[0] or parts[2] != b"models" or parts[1] not in _VERSIONS:
        return None
    model, _, method = parts[3].partition(b":")
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
        _VERSIONS[parts[1]],
        model.decode("utf-8", "surrogateescape"),
        _METHODS[method],
        length,
        key.decode("utf-8", "surrogateescape") if key else None,
        request_id.decode("utf-8", "surrogateescape") if request_id else None,
        sse,
        close,
    )
