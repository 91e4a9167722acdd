"""Verdict parsing (fenced and malformed JSON, schema mismatches) and moderation scoring."""

from __future__ import annotations

import pytest

from fixtures.moderation import verdict_schema
from users import outcome as kinds
from users.errors import CallError
from users.outcome import Outcome
from users.verdicts import moderation_verdict, parse_json_answer, summarize_moderation, validator_for

VALIDATOR = validator_for(verdict_schema())
GOOD = '{"flagged": true, "category": "hate", "reason": "slur"}'


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"  {GOOD}\n",
        f"```json\n{GOOD}\n```",
        f"```\n{GOOD}\n```",
        f"```JSON {GOOD}```",
        f"Here is my verdict:\n```json\n{GOOD}\n```\nLet me know if you need more.",
        f"\ufeff{GOOD}",
    ],
)
def test_json_answers_plain_or_fenced_parse(text: str) -> None:
    answer = parse_json_answer(text, VALIDATOR)
    assert answer["flagged"] is True and moderation_verdict(answer) == "violating"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"flagged": true, "category": "hate"', "answer is not JSON"),
        ("```json\n{flagged: true}\n```", "answer is not JSON"),
        ("The post is fine.", "answer is not JSON"),
        ("", "answer is empty"),
        ("```json\n```", "answer is empty"),
        ('{"flagged": "yes", "category": "hate"}', "schema at flagged"),
        ('{"flagged": false, "category": "spam"}', "schema at category"),
        ('{"category": "none"}', "'flagged' is a required property"),
        ("[true]", "schema at the answer"),
    ],
)
def test_malformed_or_mismatched_answers_are_invalid_responses(text: str, message: str) -> None:
    with pytest.raises(CallError) as raised:
        parse_json_answer(text, VALIDATOR)
    assert raised.value.kind == kinds.INVALID_RESPONSE
    assert message in raised.value.message


def test_benign_verdict() -> None:
    assert (
        moderation_verdict(parse_json_answer('{"flagged": false, "category": "none"}', VALIDATOR)) == "benign"
    )


def _row(item: str, expected: str, verdict: str = "", error: str = "", variant: str = "short") -> dict:
    out = Outcome(scenario="moderation", model="m", transport="t", start_time=0.0)
    out.item_id, out.expected, out.verdict, out.error_kind, out.variant = (
        item,
        expected,
        verdict,
        error,
        variant,
    )
    return out.as_row()


def test_summary_counts_blocks_as_violating_answers_and_scores_consistency() -> None:
    rows = [
        _row("a", "violating", "violating"),
        _row("a", "violating", "violating", kinds.BLOCKED),  # blocked: a correct "violating" answer
        _row("b", "benign", "benign", variant="long"),
        _row("b", "benign", "violating", variant="long"),  # same text, other verdict: inconsistent
        _row("c", "benign", "", kinds.BLOCKED),  # a block on a benign post: false positive
        _row("d", "violating", "benign"),  # a miss
        _row("e", "benign", "", kinds.INVALID_RESPONSE),  # no verdict: unanswered
        _row("f", "benign", "", kinds.SERVER_ERROR),
        {"scenario": "vision", "item_id": "x", "verdict": "benign", "expected": "violating"},
    ]
    summary = summarize_moderation(rows)
    assert summary.calls == 8 and summary.judged == 6 and summary.unanswered == 2 and summary.blocked == 2
    assert summary.correct == 3 and summary.accuracy == pytest.approx(3 / 6)
    assert (summary.true_positive, summary.false_positive, summary.true_negative, summary.false_negative) == (
        2,
        2,
        1,
        1,
    )
    assert summary.precision == pytest.approx(0.5) and summary.recall == pytest.approx(2 / 3)
    assert summary.repeated_items == 2 and summary.consistent_items == 1 and summary.inconsistent_ids == ["b"]
    assert summary.consistency == pytest.approx(0.5)
    assert summary.accuracy_by_variant == {"long": 0.5, "short": 0.5}
    data = summary.as_dict()
    assert data["accuracy"] == pytest.approx(0.5) and data["consistency"] == pytest.approx(0.5)


def test_summary_reads_csv_strings_and_handles_no_rows() -> None:
    empty = summarize_moderation([])
    assert empty.accuracy is None and empty.consistency is None and empty.precision is None
    csv_row = {
        "scenario": "moderation",
        "item_id": "a",
        "verdict": "benign",
        "expected": "benign",
        "error_kind": "",
    }
    assert summarize_moderation([csv_row, csv_row]).consistency == 1.0
