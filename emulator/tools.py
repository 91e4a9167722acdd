"""Function calling: when the emulated model answers with functionCall parts, and what it says once
the functions have answered.

The rule is deterministic, so a load test knows which prompts start a tool loop:
- The last content carries functionResponse parts (the client ran the calls): a text answer that
  quotes what the functions returned. Except in mode ANY, where the model must call (the real API's
  rule too: the SDK's automatic function calling then stops at its maximum_remote_calls).
- Otherwise no function declared, or functionCallingConfig mode NONE: an ordinary answer.
  Server-side tools (googleSearch, codeExecution, urlContext...) are accepted and never run.
- The functions asked for are those whose name the current turn's text (the last user content
  with text) names: the name itself (`get_weather`), or one of the name's key words, a word of
  four letters or more that is not a generic verb (`weather` for get_weather; `stock` and `price`
  for fetchStockPrice), a plural `s` allowed. allowedFunctionNames limits the choice in any mode.
- Mode AUTO, VALIDATED or unset: one functionCall part per function asked for (parallel calls),
  none when none is asked for. Mode ANY: the functions asked for, else the first allowed one.
- Arguments: a value valid against the declaration's parametersJsonSchema or parameters, filled by
  emulator.jsonfill (deterministic per prompt); `args` is always sent, `{}` for no parameters,
  since google-genai's automatic function calling skips a call without args.
- finishReason STOP; the calls cost output tokens as their JSON. A stream sends them in one chunk.

Gemini 3 (the models whose thinking is set by level) sends an `id` with every call and a
`thoughtSignature` on the first call part of a response; a 2.5 model sends the signature when it
thinks. Gemini 3 also checks the signatures coming back: every model step of the current turn
must carry its first call's signature, or the request gets the API's 400
(https://ai.google.dev/gemini-api/docs/thought-signatures). Only presence is checked.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from dataclasses import dataclass
from typing import Any

from emulator import jsonfill
from emulator.errors import invalid_argument
from emulator.protocol import function_declarations, text_of
from emulator.tokens import json_tokens

# Words of a function name too common to say that a prompt asks for that function.
_GENERIC = "get set fetch list find make create update delete remove search lookup look call run query read "
_GENERIC += "write send check compute calculate tool function current info data with from for the and into "
_GENERIC += "give show return handle process"
_GENERIC_WORDS = frozenset(_GENERIC.split())
_NAME_PIECES = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_PROMPT_WORDS = re.compile(r"[a-z0-9]+")
_ID_ALPHABET = string.ascii_lowercase + string.digits
SIGNATURE_BYTES = 96  # the real signatures are opaque blobs of some hundreds of bytes
_MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools "
    "to work correctly, and missing thought_signature may lead to degraded model performance. "
    "Additional data, function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
QUOTE_CHARS = 200  # how much of one function's response the answer quotes


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """What function calling decides for one request: the call parts to send, or the text that
    reports the function responses (empty when the answer is an ordinary one)."""

    calls: list[dict[str, Any]]
    call_tokens: int = 0
    report: str = ""


NO_TOOLS = ToolTurn(calls=[])


def key_words(name: str) -> set[str]:
    """The words of a function name that a prompt may use to ask for it."""
    pieces = [p.lower() for chunk in re.split(r"[_.:\-]+", name) for p in _NAME_PIECES.findall(chunk)]
    return {p for p in pieces if len(p) >= 4 and p not in _GENERIC_WORDS and not p.isdigit()}


def asked_for(declarations: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The declarations that `text` asks for, in declaration order (rule in the module docstring)."""
    lowered = text.lower()
    words = set(_PROMPT_WORDS.findall(lowered))
    wanted = []
    for declaration in declarations:
        name = declaration.get("name") or ""
        if name.lower() in lowered or any(
            w in words or w + "s" in words or w + "es" in words for w in key_words(name)
        ):
            wanted.append(declaration)
    return wanted


def _current_turn_start(contents: list[dict[str, Any]]) -> int:
    """Index of the last user content with text: the start of the current turn (-1: none)."""
    for index in range(len(contents) - 1, -1, -1):
        content = contents[index]
        if content.get("role", "user") == "user" and text_of(content):
            return index
    return -1


def check_signatures(request: dict[str, Any], gemini_3: bool) -> None:
    """Gemini 3's 400 for a model step of the current turn whose first call lost its signature."""
    if not gemini_3:
        return
    contents = request.get("contents") or []
    for index in range(_current_turn_start(contents) + 1, len(contents)):
        content = contents[index]
        if content.get("role") != "model":
            continue
        calls = [part for part in content.get("parts") or [] if part.get("functionCall") is not None]
        if calls and not calls[0].get("thoughtSignature"):
            name = (calls[0]["functionCall"] or {}).get("name", "")
            raise invalid_argument(_MISSING_SIGNATURE.format(name=name, position=index + 1))


def _schema_of(declaration: dict[str, Any]) -> Any:
    schema = declaration.get("parametersJsonSchema")
    return schema if schema is not None else declaration.get("parameters")


def _call_args(declaration: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    schema = _schema_of(declaration)
    if not isinstance(schema, dict) or not schema:
        return {}
    value = jsonfill.fill_schema(schema, rng, [])
    return value if isinstance(value, dict) else {}


def _call_parts(
    wanted: list[dict[str, Any]], rng: random.Random, gemini_3: bool, signed: bool
) -> list[dict[str, Any]]:
    parts = []
    for index, declaration in enumerate(wanted):
        call: dict[str, Any] = {"name": declaration["name"], "args": _call_args(declaration, rng)}
        if gemini_3:
            call["id"] = "".join(rng.choice(_ID_ALPHABET) for _ in range(8))
        part: dict[str, Any] = {"functionCall": call}
        if signed and index == 0:
            part["thoughtSignature"] = base64.b64encode(rng.randbytes(SIGNATURE_BYTES)).decode()
        parts.append(part)
    return parts


def _report(responses: list[dict[str, Any]]) -> str:
    """The opening of an answer that uses the function responses."""
    sentences = []
    for response in responses:
        value = json.dumps(response.get("response"), ensure_ascii=False, separators=(", ", ": "))
        if len(value) > QUOTE_CHARS:
            value = value[: QUOTE_CHARS - 3] + "..."
        sentences.append(f"{response.get('name') or 'The function'} returned {value}.")
    return " ".join(sentences)


def tool_turn(request: dict[str, Any], rng: random.Random, gemini_3: bool, thinks: bool) -> ToolTurn:
    """Function calling's part of the answer to a checked request (rule in the module docstring)."""
    declarations = function_declarations(request)
    calling = (request.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = calling.get("mode") or "AUTO"
    contents = request.get("contents") or []
    last = contents[-1] if contents else {}
    responses = [
        part["functionResponse"]
        for part in last.get("parts") or []
        if isinstance(part.get("functionResponse"), dict)
    ]
    if responses and not (mode == "ANY" and declarations):
        return ToolTurn(calls=[], report=_report(responses))
    if not declarations or mode == "NONE":
        return NO_TOOLS
    allowed = calling.get("allowedFunctionNames")
    if allowed:
        declarations = [d for d in declarations if d.get("name") in allowed]
    start = _current_turn_start(contents)
    wanted = asked_for(declarations, text_of(contents[start]) if start >= 0 else "")
    if mode == "ANY" and not wanted:
        wanted = declarations[:1]
    if not wanted:
        return NO_TOOLS
    calls = _call_parts(wanted, rng, gemini_3, signed=gemini_3 or thinks)
    return ToolTurn(calls=calls, call_tokens=sum(json_tokens(part["functionCall"]) for part in calls))


__all__ = ["ToolTurn", "NO_TOOLS", "tool_turn", "check_signatures", "asked_for", "key_words"]
