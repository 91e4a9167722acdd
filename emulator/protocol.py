"""Request parsing: one normalised, camelCase view of a generateContent / countTokens body.

Why a field table: the real API rejects unknown fields ("Invalid JSON payload received. Unknown
name ..."), while the clients send three dialects of the same message: camelCase (REST samples,
legacy SDK), snake_case (curl samples) and google-genai's mix (`inlineData` holding `mime_type`).
The legacy SDK also sends integer enums (`"category": 7`). Everything is folded to camelCase with
enum names here, so the rest of the emulator reads one shape.

Opaque sub-messages (tools, speech config, schemas given as JSON Schema...) are passed through
untouched: the emulator does not interpret them, and their inner keys are user data.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from emulator.errors import invalid_argument
from emulator.tokens import image_size

HARM_CATEGORIES = {
    0: "HARM_CATEGORY_UNSPECIFIED",
    1: "HARM_CATEGORY_DEROGATORY",
    2: "HARM_CATEGORY_TOXICITY",
    3: "HARM_CATEGORY_VIOLENCE",
    4: "HARM_CATEGORY_SEXUAL",
    5: "HARM_CATEGORY_MEDICAL",
    6: "HARM_CATEGORY_DANGEROUS",
    7: "HARM_CATEGORY_HARASSMENT",
    8: "HARM_CATEGORY_HATE_SPEECH",
    9: "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    10: "HARM_CATEGORY_DANGEROUS_CONTENT",
    11: "HARM_CATEGORY_CIVIC_INTEGRITY",
}
HARM_THRESHOLDS = {
    0: "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    1: "BLOCK_LOW_AND_ABOVE",
    2: "BLOCK_MEDIUM_AND_ABOVE",
    3: "BLOCK_ONLY_HIGH",
    4: "BLOCK_NONE",
    5: "OFF",
}
SCHEMA_TYPES = {
    0: "TYPE_UNSPECIFIED",
    1: "STRING",
    2: "NUMBER",
    3: "INTEGER",
    4: "BOOLEAN",
    5: "ARRAY",
    6: "OBJECT",
    7: "NULL",
}
MODALITIES = {0: "MODALITY_UNSPECIFIED", 1: "TEXT", 2: "IMAGE", 3: "AUDIO"}
MEDIA_RESOLUTIONS = {
    0: "MEDIA_RESOLUTION_UNSPECIFIED",
    1: "MEDIA_RESOLUTION_LOW",
    2: "MEDIA_RESOLUTION_MEDIUM",
    3: "MEDIA_RESOLUTION_HIGH",
}
# A part may ask for more than a whole request can (Gemini 3: ULTRA_HIGH is per part only).
PART_MEDIA_RESOLUTIONS = {**MEDIA_RESOLUTIONS, 4: "MEDIA_RESOLUTION_ULTRA_HIGH"}

OPAQUE = "opaque"  # any JSON value, inner keys kept as sent


def _enum(names: dict[int, str]) -> tuple[str, dict[int, str]]:
    return ("enum", names)


# Field tables: camelCase name -> spec. A spec is OPAQUE, a scalar type name, ("enum", table),
# ("list", spec) or a nested table (dict).
BLOB = {"mimeType": "str", "data": "str"}
FILE_DATA = {"mimeType": "str", "fileUri": "str", "displayName": "str"}
PART = {
    "text": "str",
    "inlineData": BLOB,
    "fileData": FILE_DATA,
    "functionCall": OPAQUE,
    "functionResponse": OPAQUE,
    "executableCode": OPAQUE,
    "codeExecutionResult": OPAQUE,
    "videoMetadata": OPAQUE,
    "thought": "bool",
    "thoughtSignature": "str",
    "partMetadata": OPAQUE,
    "mediaResolution": {"level": _enum(PART_MEDIA_RESOLUTIONS), "numTokens": OPAQUE},
}
CONTENT = {"role": "str", "parts": ("list", PART)}
SAFETY_SETTING = {
    "category": _enum(HARM_CATEGORIES),
    "threshold": _enum(HARM_THRESHOLDS),
    "method": OPAQUE,
}
SCHEMA: dict[str, Any] = {}
SCHEMA.update(
    {
        "type": _enum(SCHEMA_TYPES),
        "format": "str",
        "title": "str",
        "description": "str",
        "nullable": "bool",
        "enum": ("list", "str"),
        "maxItems": OPAQUE,
        "minItems": OPAQUE,
        "properties": ("map", SCHEMA),
        "required": ("list", "str"),
        "minProperties": OPAQUE,
        "maxProperties": OPAQUE,
        "minLength": OPAQUE,
        "maxLength": OPAQUE,
        "pattern": "str",
        "example": OPAQUE,
        "anyOf": ("list", SCHEMA),
        "propertyOrdering": ("list", "str"),
        "default": OPAQUE,
        "items": SCHEMA,
        "minimum": OPAQUE,
        "maximum": OPAQUE,
    }
)
THINKING_CONFIG = {"includeThoughts": "bool", "thinkingBudget": OPAQUE, "thinkingLevel": OPAQUE}
GENERATION_CONFIG = {
    "candidateCount": OPAQUE,
    "stopSequences": ("list", "str"),
    "maxOutputTokens": OPAQUE,
    "temperature": OPAQUE,
    "topP": OPAQUE,
    "topK": OPAQUE,
    "seed": OPAQUE,
    "responseMimeType": "str",
    "responseSchema": SCHEMA,
    "responseJsonSchema": OPAQUE,
    "presencePenalty": OPAQUE,
    "frequencyPenalty": OPAQUE,
    "responseLogprobs": "bool",
    "logprobs": OPAQUE,
    "enableEnhancedCivicAnswers": "bool",
    "responseModalities": ("list", _enum(MODALITIES)),
    "speechConfig": OPAQUE,
    "thinkingConfig": THINKING_CONFIG,
    "mediaResolution": _enum(MEDIA_RESOLUTIONS),
    "imageConfig": OPAQUE,
    "audioTimestamp": "bool",
    "routingConfig": OPAQUE,
    "modelSelectionConfig": OPAQUE,
    "enableAffectiveDialog": "bool",
}
GENERATE_CONTENT_REQUEST = {
    "model": "str",
    "contents": ("list", CONTENT),
    "systemInstruction": CONTENT,
    "tools": OPAQUE,
    "toolConfig": OPAQUE,
    "safetySettings": ("list", SAFETY_SETTING),
    "generationConfig": GENERATION_CONFIG,
    "cachedContent": "str",
    "labels": OPAQUE,
    "serviceTier": OPAQUE,
    "store": OPAQUE,
}
COUNT_TOKENS_REQUEST = {
    "model": "str",
    "contents": ("list", CONTENT),
    "generateContentRequest": GENERATE_CONTENT_REQUEST,
}

_SNAKE_PIECE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    """snake_case -> camelCase; camelCase is left alone."""
    return _SNAKE_PIECE.sub(lambda m: m.group(1).upper(), name)


def normalise(value: Any, spec: Any, path: str) -> Any:
    """Fold one value to the canonical camelCase form of `spec`, or raise a 400 like the real API."""
    if spec == OPAQUE or value is None:
        return value
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise invalid_argument(
                f'Invalid JSON payload received. Expected an object at "{path or "root"}", got {_json_type(value)}.',
                path,
            )
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = camel(key)
            if name not in spec:
                where = f"{path}" if path else "root"
                raise invalid_argument(
                    f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
                    f"{path}.{key}" if path else key,
                )
            out[name] = normalise(item, spec[name], f"{path}.{name}" if path else name)
        return out
    if isinstance(spec, tuple):
        kind, inner = spec
        if kind == "list":
            if not isinstance(value, list):
                # proto JSON accepts a lone value for a repeated field; the SDKs never rely on it.
                value = [value]
            return [normalise(item, inner, f"{path}[{i}]") for i, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise invalid_argument(
                    f'Invalid JSON payload received. Expected an object at "{path}".', path
                )
            return {key: normalise(item, inner, f"{path}.{key}") for key, item in value.items()}
        if kind == "enum":
            return _enum_name(value, inner, path)
    if spec == "str" and not isinstance(value, str):
        raise invalid_argument(
            f"Invalid value at '{path}' (TYPE_STRING), {json.dumps(value)}: expected a string.", path
        )
    if spec == "bool" and not isinstance(value, bool):
        raise invalid_argument(f"Invalid value at '{path}' (TYPE_BOOL), {json.dumps(value)}", path)
    return value


def _enum_name(value: Any, names: dict[int, str], path: str) -> str:
    if isinstance(value, bool):
        raise invalid_argument(f"Invalid value at '{path}', {json.dumps(value)}", path)
    if isinstance(value, int):
        if value in names:
            return names[value]
    elif isinstance(value, str):
        upper = value.upper()
        if upper in names.values():
            return upper
    raise invalid_argument(f"Invalid value at '{path}', {json.dumps(value)}", path)


def _json_type(value: Any) -> str:
    return type(value).__name__


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc.__class__.__name__}: {exc}.") from None


def parse_generate_request(raw: bytes) -> dict[str, Any]:
    """A checked, camelCase generateContent request; raises ApiError(400) like the real API."""
    body = normalise(parse_json_body(raw), GENERATE_CONTENT_REQUEST, "")
    check_contents(body)
    return body


def parse_count_tokens_request(raw: bytes) -> dict[str, Any]:
    """countTokens takes either {contents} or {generateContentRequest: {...}}; both become one request."""
    body = normalise(parse_json_body(raw), COUNT_TOKENS_REQUEST, "")
    inner = body.get("generateContentRequest")
    if inner is not None:
        if body.get("contents"):
            raise invalid_argument("contents and generateContentRequest cannot both be set.")
        check_contents(inner)
        return inner
    check_contents(body)
    return {"contents": body.get("contents", [])}


def check_contents(body: dict[str, Any]) -> None:
    contents = body.get("contents") or []
    if not contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified\n", "contents")
    for ci, content in enumerate(contents):
        parts = content.get("parts") or []
        if not parts:
            raise invalid_argument(
                f"* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n",
                f"contents[{ci}].parts",
            )
        for pi, part in enumerate(parts):
            blob = part.get("inlineData")
            if blob is not None:
                data = decode_base64(blob.get("data", ""), ci, pi)
                check_media(blob.get("mimeType") or "", data, ci, pi)
                part["inlineData"] = dict(blob, _bytes=data)


SUPPORTED_IMAGES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "image/gif")
_UNPARSED_IMAGES = ("image/heic", "image/heif")  # accepted as sent: no header reader for these


def check_media(mime: str, data: bytes, ci: int, pi: int) -> None:
    """Images must be of a supported type and readable, like the real API checks them."""
    mime = mime.lower()
    if not mime:
        raise invalid_argument(
            f"* GenerateContentRequest.contents[{ci}].parts[{pi}].inline_data.mime_type: mime_type is not specified\n"
        )
    if not mime.startswith("image/"):
        return
    if mime not in SUPPORTED_IMAGES:
        raise invalid_argument(f"Unsupported MIME type: {mime}")
    if mime not in _UNPARSED_IMAGES and image_size(data) is None:
        raise invalid_argument(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        )


def decode_base64(data: str, ci: int, pi: int) -> bytes:
    path = f"contents[{ci}].parts[{pi}].inline_data.data"
    try:
        # proto JSON accepts both the standard and the URL-safe alphabet.
        return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument(
            f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{data[:40]}\"", path
        ) from None


def text_of(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    return "\n".join(part["text"] for part in content.get("parts") or [] if isinstance(part.get("text"), str))


def prompt_text(request: dict[str, Any]) -> str:
    """Everything the model reads as text: system instruction plus every turn, in order."""
    pieces = [text_of(request.get("systemInstruction"))]
    pieces.extend(text_of(content) for content in request.get("contents") or [])
    return "\n".join(piece for piece in pieces if piece)


def api_key_of(headers: Any, query: Any) -> str | None:
    return headers.get("x-goog-api-key") or query.get("key") or None
