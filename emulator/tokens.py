"""Token counting shared by countTokens and usageMetadata, so the two always agree.

Rules (close to the real tokenizer on average, exact enough for load figures):
- text: one token per 4 bytes of UTF-8, rounded up; empty text costs nothing;
- images: the model's rule (core.catalogue.Images: flat per image on 2.x, by media resolution on
  3.x, tiled on 2.0), at the part's own mediaResolution, else generationConfig's, else the model's
  default; an image whose size cannot be read (HEIC, fileData) counts as the rule says for no size;
- other media (audio, video, PDF): a flat 258 tokens per part.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from core.catalogue import Images

TOKENS_PER_TILE = 258


def text_tokens(text: str) -> int:
    return (len(text.encode()) + 3) // 4


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header, without decoding the pixels."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        # SOF0..SOF15 hold the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _resolution(holder: dict[str, Any] | None) -> str | None:
    """The level a part's or a generationConfig's mediaResolution asks for, if any."""
    value = (holder or {}).get("mediaResolution")
    if isinstance(value, dict):  # per part: {"level": ...}
        value = value.get("level")
    return value if isinstance(value, str) else None


def part_tokens(part: dict[str, Any], images: Images, resolution: str | None = None) -> tuple[str, int]:
    """(modality, tokens) of one request part; `resolution`: generationConfig's, if any."""
    if isinstance(part.get("text"), str):
        return "TEXT", text_tokens(part["text"])
    blob = part.get("inlineData")
    resolution = _resolution(part) or resolution
    if blob is not None:
        mime = (blob.get("mimeType") or "").lower()
        if mime.startswith("image/"):
            width, height = image_size(blob.get("_bytes", b"")) or (None, None)
            return "IMAGE", images.tokens_for(width, height, resolution)
        if mime.startswith("audio/"):
            return "AUDIO", TOKENS_PER_TILE
        if mime.startswith("video/"):
            return "VIDEO", TOKENS_PER_TILE
        return "DOCUMENT", TOKENS_PER_TILE
    if part.get("fileData") is not None:
        if (part["fileData"].get("mimeType") or "").startswith("image/"):
            return "IMAGE", images.tokens_for(None, None, resolution)
        return "DOCUMENT", TOKENS_PER_TILE
    if part.get("functionCall") is not None or part.get("functionResponse") is not None:
        return "TEXT", text_tokens(json.dumps(part.get("functionCall") or part.get("functionResponse")))
    return "TEXT", 0


def prompt_tokens(request: dict[str, Any], images: Images) -> tuple[int, list[dict[str, Any]]]:
    """Total prompt tokens and promptTokensDetails [{modality, tokenCount}] for a request to a model
    that counts images by `images`."""
    by_modality: dict[str, int] = {}
    resolution = _resolution(request.get("generationConfig"))
    contents = list(request.get("contents") or [])
    if request.get("systemInstruction"):
        contents.append(request["systemInstruction"])
    for content in contents:
        for part in content.get("parts") or []:
            modality, count = part_tokens(part, images, resolution)
            by_modality[modality] = by_modality.get(modality, 0) + count
    details = [{"modality": m, "tokenCount": c} for m, c in by_modality.items() if c]
    return sum(by_modality.values()), details
