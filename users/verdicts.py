"""Parsing a model's JSON answer: tolerant of code fences, strict about the schema."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from users import outcome
from users.errors import CallError

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_answer(text: str, validator: jsonschema.protocols.Validator) -> dict[str, Any]:
    """The answer as a dict, or CallError(invalid_response) saying what was wrong with it."""
    match = _FENCE.match(text)
    body = match.group(1) if match else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise CallError(
            outcome.INVALID_RESPONSE, f"answer is not JSON: {exc.msg} at char {exc.pos}"
        ) from None
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise CallError(
            outcome.INVALID_RESPONSE, f"answer does not match the schema at {where}: {error.message}"
        )
    return value
