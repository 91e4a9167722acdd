"""Verdict parsing (fenced and malformed JSON, schema mismatches) and how reports score the verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_helpers import request_log_frame

from core import outcome as kinds
from core.outcome import Outcome
from fixtures.moderation import verdict_schema
from reports import scenario_analysis
from users.errors import CallError
from users.verdicts import moderation_verdict, parse_json_answer, validator_for

VALIDATOR = validator_for(verdict_schema())
GOOD = '{"flagged": true, "category": "hate", "confidence": 0.9, "reason": "slur"}'


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
        ('{"flagged": "yes", "category": "hate", "confidence": 0.9}', "schema at flagged"),
        ('{"flagged": false, "category": "spam", "confidence": 0.9}', "schema at category"),
        ('{"category": "none", "confidence": 0.9}', "'flagged' is a required property"),
        ('{"flagged": false, "category": "none"}', "'confidence' is a required property"),
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
        moderation_verdict(
            parse_json_answer('{"flagged": false, "category": "none", "confidence": 1}', VALIDATOR)
        )
        == "benign"
    )


def _row(
    item: str,
    expected: str,
    verdict: str = "",
    error: str = "",
    variant: str = "short",
    scenario: str = "moderation",
) -> dict:
    out = Outcome(scenario=scenario, model="m", transport="t", start_time=0.0)
    out.item_id, out.expected, out.verdict, out.error_kind, out.variant = (
        item,
        expected,
        verdict,
        error,
        variant,
    )
    return out.as_row()


def test_scoring_counts_blocks_as_violating_answers_and_scores_consistency(tmp_path: Path) -> None:
    rows = [
        _row("a", "violating", "violating"),
        _row("a", "violating", "violating", kinds.BLOCKED),  # blocked: a correct "violating" answer
        _row("b", "benign", "benign", variant="long"),
        _row("b", "benign", "violating", variant="long"),  # same text, other verdict: inconsistent
        _row("c", "benign", "", kinds.BLOCKED),  # a block on a benign post: false positive
        _row("d", "violating", "benign"),  # a miss
        _row("e", "benign", "", kinds.INVALID_RESPONSE),  # no verdict: unanswered
        _row("f", "benign", "", kinds.SERVER_ERROR),
        _row("x", "violating", "benign", scenario="vision"),  # another scenario: scored apart
    ]
    figures = scenario_analysis.moderation(request_log_frame(tmp_path, rows))
    summary = figures.table.set_index("scenario").loc["moderation"]
    assert (summary.calls, summary.answers, summary.unanswered, summary.blocked) == (8, 6, 2, 2)
    assert summary.accuracy == pytest.approx(3 / 6)
    confusion = figures.confusion["moderation"]  # expected (rows) x verdict (columns)
    true_positive, false_positive = (
        confusion.loc["violating", "violating"],
        confusion.loc["benign", "violating"],
    )
    true_negative, false_negative = confusion.loc["benign", "benign"], confusion.loc["violating", "benign"]
    assert (true_positive, false_positive, true_negative, false_negative) == (2, 2, 1, 1)
    assert summary.precision == pytest.approx(0.5) and summary.recall == pytest.approx(2 / 3)
    assert summary.items_repeated == 2 and summary.consistency == pytest.approx(0.5)
    inconsistent = figures.inconsistent
    assert inconsistent.loc[inconsistent["scenario"] == "moderation", "item_id"].tolist() == ["b"]
    by_variant = figures.by_variant[figures.by_variant["scenario"] == "moderation"]
    assert dict(zip(by_variant["variant"], by_variant["accuracy"], strict=True)) == {
        "long": 0.5,
        "short": 0.5,
    }


def test_scoring_reads_the_log_and_handles_no_labelled_rows(tmp_path: Path) -> None:
    unlabelled = scenario_analysis.moderation(request_log_frame(tmp_path / "none", [_row("s", "", "")]))
    assert unlabelled.empty and not unlabelled.confusion
    twice = [_row("a", "benign", "benign")] * 2
    figures = scenario_analysis.moderation(request_log_frame(tmp_path / "twice", twice))
    assert figures.table.set_index("scenario").loc["moderation", "consistency"] == 1.0
