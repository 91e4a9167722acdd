"""Request parsing: one normalised, camelCase view of a generateContent / countTokens body.

Why a field table: the real API rejects unknown fields ("Invalid JSON payload received. Unknown
name ..."), while the clients send three dialects of the same message: camelCase (REST samples,
legacy SDK), snake_case (curl samples) and google-genai's mix (`inlineData` holding `mime_type`).
The legacy SDK also sends integer enums (`"category": 7`). Everything is folded to camelCase with
enum names here, so the rest of the emulator reads one shape.

Opaque sub-messages (speech config, schemas given as JSON Schema, function call arguments...) are
passed through untouched: the emulator does not interpret them, and their inner keys are user data.
Tools are read: function declarations are checked as the real API checks them (check_tools).
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
FUNCTION_BEHAVIORS = {0: "UNSPECIFIED", 1: "BLOCKING", 2: "NON_BLOCKING"}
FUNCTION_DECLARATION = {
    "name": "str",
    "description": "str",
    "parameters": SCHEMA,
    "parametersJsonSchema": OPAQUE,
    "response": SCHEMA,
    "responseJsonSchema": OPAQUE,
    "behavior": _enum(FUNCTION_BEHAVIORS),
}
# Server-side tools are accepted as sent: the emulator never runs them (no search, no code).
TOOL = {
    "functionDeclarations": ("list", FUNCTION_DECLARATION),
    "googleSearch": OPAQUE,
    "googleSearchRetrieval": OPAQUE,
    "codeExecution": OPAQUE,
    "urlContext": OPAQUE,
    "fileSearch": OPAQUE,
    "googleMaps": OPAQUE,
    "computerUse": OPAQUE,
    "mcpServers": OPAQUE,
}
CALLING_MODES = {0: "MODE_UNSPECIFIED", 1: "AUTO", 2: "ANY", 3: "NONE", 4: "VALIDATED"}
TOOL_CONFIG = {
    "functionCallingConfig": {
        "mode": _enum(CALLING_MODES),
        "allowedFunctionNames": ("list", "str"),
        "streamFunctionCallArguments": "bool",
    },
    "retrievalConfig": OPAQUE,
    "includeServerSideToolInvocations": "bool",
}
GENERATE_CONTENT_REQUEST = {
    "model": "str",
    "contents": ("list", CONTENT),
    "systemInstruction": CONTENT,
    "tools": ("list", TOOL),
    "toolConfig": TOOL_CONFIG,
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
    check_tools(body)
    return body


def parse_count_tokens_request(raw: bytes) -> dict[str, Any]:
    """countTokens takes either {contents} or {generateContentRequest: {...}}; both become one request."""
    body = normalise(parse_json_body(raw), COUNT_TOKENS_REQUEST, "")
    inner = body.get("generateContentRequest")
    if inner is not None:
        if body.get("contents"):
            raise invalid_argument("contents and generateContentRequest cannot both be set.")
        check_contents(inner)
        check_tools(inner)
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


# The Developer API's rule for a declared function's name (its 400 text, 2026).
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_BAD_FUNCTION_NAME = (
    "* GenerateContentRequest.tools[{t}].function_declarations[{d}].name: Invalid function name. "
    "Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), "
    "dots (.), colons (:), or dashes (-), with a maximum length of 64.\n"
)
# What the API answers a tool config it cannot honour (its generic INVALID_ARGUMENT text).
_INVALID_ARGUMENT = "Request contains an invalid argument."


def function_declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every function declared in a request's tools, in order."""
    return [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]


def check_tools(body: dict[str, Any]) -> None:
    """Function names must follow the API's rule (one line per bad name, as the API lists them);
    a parameters schema must be an object; mode ANY or VALIDATED needs declarations, and every
    allowedFunctionNames entry must be declared."""
    problems = []
    for t, tool in enumerate(body.get("tools") or []):
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            if not FUNCTION_NAME.fullmatch(declaration.get("name") or ""):
                problems.append(_BAD_FUNCTION_NAME.format(t=t, d=d))
            schema = declaration.get("parametersJsonSchema")
            if schema is not None and not isinstance(schema, dict | bool):
                raise invalid_argument(
                    f"Invalid JSON payload received. parameters_json_schema of "
                    f"tools[{t}].function_declarations[{d}] is not a JSON Schema object."
                )
    if problems:
        raise invalid_argument("".join(problems))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    declared = {d.get("name") for d in function_declarations(body)}
    if calling.get("mode") in ("ANY", "VALIDATED") and not declared:
        raise invalid_argument(_INVALID_ARGUMENT)
    if any(name not in declared for name in calling.get("allowedFunctionNames") or []):
        raise invalid_argument(_INVALID_ARGUMENT)


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
