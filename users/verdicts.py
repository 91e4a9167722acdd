"""Parsing a model's JSON answer (tolerant of code fences, strict about the schema) and scoring
moderation verdicts: accuracy against the labels, and consistency of repeated posts under load.

How a blocked prompt counts: a block (promptFeedback.blockReason or finishReason SAFETY) is the
service saying "this is not acceptable", so it is an answer, recorded as verdict "violating" with
error_kind "blocked". A block on a violating post is therefore a correct answer; a block on a
benign post is a false positive. Blocks are never API failures. Calls that got no verdict at all
(invalid JSON, schema mismatch, HTTP errors) are left out of accuracy and counted as unanswered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonschema

from users import outcome
from users.errors import CallError

VIOLATING = "violating"
BENIGN = "benign"
BLOCKED_VERDICT = VIOLATING

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
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise CallError(
            outcome.INVALID_RESPONSE, f"answer does not match the schema at {where}: {error.message}"
        )
    return value


def validator_for(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return jsonschema.validators.validator_for(schema)(schema)


def moderation_verdict(answer: Mapping[str, Any]) -> str:
    """violating / benign from a verdict that matched fixtures/schemas/moderation_verdict.json."""
    return VIOLATING if answer["flagged"] else BENIGN


@dataclass(slots=True)
class ModerationSummary:
    """Moderation figures over many calls. Violating is the positive class."""

    calls: int = 0
    judged: int = 0  # calls with a verdict: answered + blocked
    blocked: int = 0
    unanswered: int = 0  # failed calls and invalid answers: no verdict
    correct: int = 0
    true_positive: int = 0
    false_positive: int = 0
    true_negative: int = 0
    false_negative: int = 0
    repeated_items: int = 0  # items judged at least twice
    consistent_items: int = 0  # ... that got the same verdict every time
    inconsistent_ids: list[str] = field(default_factory=list)
    accuracy_by_variant: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None

    @property
    def precision(self) -> float | None:
        flagged = self.true_positive + self.false_positive
        return self.true_positive / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        violating = self.true_positive + self.false_negative
        return self.true_positive / violating if violating else None

    @property
    def consistency(self) -> float | None:
        return self.consistent_items / self.repeated_items if self.repeated_items else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            accuracy=self.accuracy, precision=self.precision, recall=self.recall, consistency=self.consistency
        )
        return data


def summarize_moderation(
    rows: Iterable[Mapping[str, Any]], scenario: str = "moderation"
) -> ModerationSummary:
    """Score rows of the per-request log (or Outcome.as_row() dicts) of one scenario."""
    summary = ModerationSummary()
    verdicts_by_item: dict[str, set[str]] = {}
    times_by_item: dict[str, int] = {}
    per_variant: dict[str, list[int]] = {}
    for row in rows:
        if row.get("scenario") != scenario:
            continue
        summary.calls += 1
        verdict = str(row.get("verdict") or "")
        expected = str(row.get("expected") or "")
        if row.get("error_kind") == outcome.BLOCKED:
            summary.blocked += 1
            verdict = verdict or BLOCKED_VERDICT
        if verdict not in (VIOLATING, BENIGN):
            summary.unanswered += 1
            continue
        summary.judged += 1
        item = str(row.get("item_id") or "")
        verdicts_by_item.setdefault(item, set()).add(verdict)
        times_by_item[item] = times_by_item.get(item, 0) + 1
        right = verdict == expected
        summary.correct += right
        tally = per_variant.setdefault(str(row.get("variant") or ""), [0, 0])
        tally[0] += right
        tally[1] += 1
        if verdict == VIOLATING:
            summary.true_positive += expected == VIOLATING
            summary.false_positive += expected != VIOLATING
        else:
            summary.true_negative += expected != VIOLATING
            summary.false_negative += expected == VIOLATING
    for item, seen in verdicts_by_item.items():
        if times_by_item[item] < 2:
            continue
        summary.repeated_items += 1
        if len(seen) == 1:
            summary.consistent_items += 1
        else:
            summary.inconsistent_ids.append(item)
    summary.inconsistent_ids.sort()
    summary.accuracy_by_variant = {
        name: right / total for name, (right, total) in sorted(per_variant.items())
    }
    return summary
