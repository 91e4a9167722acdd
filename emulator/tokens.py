"""Token counting shared by countTokens and usageMetadata, so the two always agree.

Text: an estimate, not the real tokenizer. google-genai 3.4.0's `local_tokenizer` needs the
`sentencepiece` package and a tokenizer model that it downloads at first use (Gemma 3's from
raw.githubusercontent.com, Gemma 4's from Hugging Face); no installable package ships the model,
and the emulator runs with no network beyond package registries, so it cannot be used here.
The estimate counts what a SentencePiece vocabulary of ~262k pieces (Gemma 3, the tokenizer the
SDK maps Gemini 2.x and 3.x to) does with each kind of text:
- ASCII words: one token per 6 letters, rounded up (common English words are one piece);
- digits: one token each (Gemma's tokenizer splits numbers into digits);
- ASCII punctuation and code symbols: one token per 2 characters of a run (`.`, `()`, `->`);
- whitespace: a single space is part of the next word; a newline or a run of spaces (indentation)
  costs one token per 16 characters;
- CJK ideographs, kana and Hangul: 2 tokens per 3 characters;
- letters of other scripts (accented Latin, Cyrillic, Greek, Arabic, Indic...): one token per 3;
- any other symbol (emoji, dashes, bullets): one token each.
Calibration: "The quick brown fox jumps over the lazy dog." is 10 tokens for the real countTokens
(https://ai.google.dev/api/tokens, its example) and 10 here; Google's rule of thumb is "a token is
about 4 characters, 100 tokens are about 60-80 English words"
(https://ai.google.dev/gemini-api/docs/tokens): a sample of English prose comes out here at 4.1
characters a token and 74 words per 100 tokens (tests/emulator/test_emu_tokens.py). Non-English: Llama 3 counts 0.5-0.6 tokens per Cyrillic and
0.6-0.8 per Chinese character (https://gigagpu.com/ai-tokenizer-considerations/), and Gemini's
multilingual vocabulary needs about 40 % fewer tokens than GPT's on Japanese
(https://www.techcompare.app/token-counter/gemini-tokenization): hence 1/3 and 2/3 per character.
The old rule (bytes/4) counted a Chinese character as 3/4 of a token and code as prose.

Tools: each function declaration costs the tokens of its canonical JSON (sorted keys, compact), so
a body's order of keys does not change the count; other tools (googleSearch, codeExecution...) the
same for their JSON. Function calls and responses in the contents count as their JSON.

Media:
- images: the model's rule (core.catalogue.Images: flat per image on 2.x, by media resolution on
  3.x, tiled on 2.0), at the part's own mediaResolution, else generationConfig's, else the model's
  default; an image whose size cannot be read (HEIC, a fileData URI that is not an uploaded file)
  counts as the rule says for no size;
- other media (audio, video, PDF): a flat 258 tokens per part.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

from core.catalogue import Images

TOKENS_PER_TILE = 258

_ASCII_WORD = re.compile(r"[A-Za-z]+")
_DIGIT = re.compile(r"\d")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]+")
_WHITESPACE = re.compile(r"\n\s*|[ \t]{2,}")
# Outside ASCII, a word is ASCII only when no other letter touches it ("café" is one foreign word).
_ASCII_ONLY_WORD = re.compile(r"(?<![^\W\d_])[A-Za-z]+(?![^\W\d_])")
_FOREIGN_WORD = re.compile(r"[^\W\d_]*[^\W\d_A-Za-z][^\W\d_]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SYMBOL = re.compile(r"[^\w\s!-~]")


def text_tokens(text: str) -> int:
    """The estimated tokens of `text` (rules in the module docstring); empty text costs nothing."""
    if not text:
        return 0
    ascii_text = text.isascii()
    words = (_ASCII_WORD if ascii_text else _ASCII_ONLY_WORD).findall(text)
    count = sum((len(word) + 5) // 6 for word in words)
    count += len(_DIGIT.findall(text))
    count += sum((len(run) + 1) // 2 for run in _PUNCTUATION.findall(text))
    count += sum((len(run) + 15) // 16 for run in _WHITESPACE.findall(text))
    if not ascii_text:
        for word in _FOREIGN_WORD.findall(text):
            cjk = len(_CJK.findall(word))
            count += (2 * cjk + 2) // 3 + (len(word) - cjk + 2) // 3
        count += len(_SYMBOL.findall(text))
    return count


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
            # `_bytes`: an uploaded file's content, set by emulator.files.FileStore.attach.
            width, height = image_size(part["fileData"].get("_bytes", b"")) or (None, None)
            return "IMAGE", images.tokens_for(width, height, resolution)
        return "DOCUMENT", TOKENS_PER_TILE
    for key in ("functionCall", "functionResponse", "executableCode", "codeExecutionResult"):
        if part.get(key) is not None:
            return "TEXT", json_tokens(part[key])
    return "TEXT", 0


def json_tokens(value: Any) -> int:
    """The tokens of a JSON value written canonically (sorted keys, compact, non-ASCII kept)."""
    return text_tokens(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def tools_tokens(tools: list[dict[str, Any]] | None) -> int:
    """What a request's tools add to its prompt: each declaration, or other tool, as its JSON."""
    count = 0
    for tool in tools or []:
        for key, value in tool.items():
            if key == "functionDeclarations":
                count += sum(json_tokens(declaration) for declaration in value or [])
            else:
                count += json_tokens({key: value})
    return count


def prompt_tokens(request: dict[str, Any], images: Images) -> tuple[int, list[dict[str, Any]]]:
    """Total prompt tokens and promptTokensDetails [{modality, tokenCount}] for a request to a model
    that counts images by `images`: contents, systemInstruction and tools."""
    by_modality: dict[str, int] = {}
    resolution = _resolution(request.get("generationConfig"))
    contents = list(request.get("contents") or [])
    if request.get("systemInstruction"):
        contents.append(request["systemInstruction"])
    for content in contents:
        for part in content.get("parts") or []:
            modality, count = part_tokens(part, images, resolution)
            by_modality[modality] = by_modality.get(modality, 0) + count
    tools = tools_tokens(request.get("tools"))
    if tools:
        by_modality["TEXT"] = by_modality.get("TEXT", 0) + tools
    details = [{"modality": m, "tokenCount": c} for m, c in by_modality.items() if c]
    return sum(by_modality.values()), details
