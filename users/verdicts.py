"""Parsing a model's JSON answer (tolerant of code fences, strict about the schema) and the
moderation verdict vocabulary. Scoring the verdicts (accuracy against the labels, consistency of
repeated posts under load) is reports/scenario_analysis.py's, from the results folder.

How a blocked prompt counts: a block (promptFeedback.blockReason or finishReason SAFETY) is the
service saying "this is not acceptable", so it is an answer, recorded as verdict "violating" with
error_kind "blocked". A block on a violating post is therefore a correct answer; a block on a
benign post is a false positive. Blocks are never API failures. Calls that got no verdict at all
(invalid JSON, schema mismatch, HTTP errors) are left out of accuracy and counted as unanswered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core import outcome
from core.verdicts import BENIGN, BLOCKED_VERDICT, VIOLATING  # noqa: F401 - re-exported for users
from users.errors import CallError

if TYPE_CHECKING:
    import jsonschema


_WHOLE_FENCE = re.compile(r"^\s*```[A-Za-z]*\s*\n?(.*?)\s*```\s*$", re.DOTALL)
_ANY_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?\s*```", re.DOTALL)


def _json_body(text: str) -> str:
    """The JSON text inside an answer: the whole answer, or a fenced block in it."""
    match = _WHOLE_FENCE.match(text)
    if match:
        return match.group(1)
    if "```" in text:
        fenced = _ANY_FENCE.search(text)
        if fenced:
            return fenced.group(1)
    return text


def parse_json_answer(text: str, validator: jsonschema.protocols.Validator) -> dict[str, Any]:
    """The answer as a dict, or CallError(invalid_response) saying what was wrong with it."""
    body = _json_body(text.lstrip("\ufeff"))
    if not body.strip():
        raise CallError(outcome.INVALID_RESPONSE, "answer is empty: expected JSON")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CallError(
            outcome.INVALID_RESPONSE, f"answer is not JSON: {exc.msg} at char {exc.pos}"
        ) from None
    from jsonschema.exceptions import best_match  # loaded by preparation: a dict lookup here

    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise CallError(
            outcome.INVALID_RESPONSE, f"answer does not match the schema at {where}: {error.message}"
        )
    return value


def validator_for(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    # Imported here, not at module load: the web UI answers sooner, and preparation (which builds
    # the validators, in a thread) pays the import.
    import jsonschema.validators

    return jsonschema.validators.validator_for(schema)(schema)


def moderation_verdict(answer: Mapping[str, Any]) -> str:
    """violating / benign from a verdict that matched fixtures/schemas/moderation_verdict.json."""
    return VIOLATING if answer["flagged"] else BENIGN
