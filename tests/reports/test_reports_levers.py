"""The report's lever sections from hand-made request logs: moderation items (batched calls
exploded), model tiering and batching, and the moderation scores counted per post."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from report_html import cells, section

from reports import scenario_analysis
from reports.batching import batching_figures
from reports.builder import build_report
from reports.items import moderation_items
from reports.llm_analysis import add_derived
from reports.loading import load_results
from reports.tiering import BLENDED, ESCALATED, FIRST_ALONE, tiering_figures

CHEAP, STRONG = "gemini-3.5-flash-lite", "gemini-3.8-flash"


def _moderation(**fields: object) -> dict[str, object]:
    return {"scenario": "moderation", "model": CHEAP, **fields}


def _frame(request_log: Callable[..., Path], rows: list[dict], name: str = "run") -> pd.DataFrame:
    return add_derived(load_results(request_log(rows, name=name)).requests)


BATCHED = [
    _moderation(item_id="a;b;c", expected="violating;benign;benign", verdict="violating;violating;benign",
                batch_size=3, cost_usd=0.003, e2e_ms=900.0),
    _moderation(item_id="d;e;f", expected="benign;benign;violating", error_kind="rate_limited", batch_size=3,
                e2e_ms=50.0),
    _moderation(item_id="g;h;i", expected="benign;violating;violating", verdict="violating;violating;violating",
                error_kind="blocked", batch_size=3, cost_usd=0.0),
    _moderation(item_id="j", expected="benign", verdict="benign", cost_usd=0.002, e2e_ms=300.0),
    {"scenario": "stream", "model": CHEAP},  # unlabelled: not a moderation item
]  # fmt: skip


def test_moderation_items_explode_batches_and_split_their_cost(request_log) -> None:
    items = moderation_items(_frame(request_log, BATCHED))
    assert items["item_id"].tolist() == list("abcdefghij")
    assert items["batch_size"].tolist() == [3] * 9 + [1]
    assert items["verdict"].tolist()[:3] == ["violating", "violating", "benign"]
    assert items["cost_usd"].tolist()[:3] == pytest.approx([0.001] * 3)
    assert items["e2e_ms"].tolist()[:3] == [900.0] * 3  # every post of a batch waited the whole call
    # The rate-limited batch: three unanswered posts, no verdict, nothing scored.
    failed = items[items["item_id"].isin(list("def"))]
    assert not failed["answered"].any() and failed["correct"].isna().all() and (failed["verdict"] == "").all()
    assert items["answered"].tolist() == [True] * 3 + [False] * 3 + [True] * 4
    assert items["correct"].tolist()[:3] == [True, False, True]
    assert items.loc[items["item_id"].isin(list("ghi")), "correct"].tolist() == [False, True, True]
    assert items["correct"].mean() == pytest.approx(5 / 7)


def test_moderation_scores_count_posts_not_calls(request_log) -> None:
    row = (
        scenario_analysis.moderation(_frame(request_log, BATCHED))
        .table.set_index("scenario")
        .loc["moderation"]
    )
    assert (row["calls"], row["answers"], row["unanswered"], row["blocked"]) == (10, 7, 3, 3)
    assert row["accuracy"] == pytest.approx(5 / 7)


def test_batching_figures_per_batch_size(request_log) -> None:
    table = batching_figures(_frame(request_log, BATCHED)).set_index("batch_size")
    assert table.loc[3, "calls"] == 3 and table.loc[3, "items"] == 9 and table.loc[3, "answered"] == 6
    assert table.loc[1, "items"] == 1 and table.loc[1, "accuracy"] == 1.0
    assert table.loc[3, "accuracy"] == pytest.approx(4 / 6)
    # What an answered post cost: all three calls' cost over the six posts answered.
    assert table.loc[3, "cost_per_1k"] == pytest.approx(0.003 / 6 * 1000)
    # Per post: the blocked batch's three posts (100 ms) and the answered batch's three (900 ms).
    assert (table.loc[3, "p50"], table.loc[3, "p95"]) == (100.0, 900.0) and table.loc[3, "items_per_s"] > 0
    assert batching_figures(_frame(request_log, [_moderation(item_id="a", expected="benign")], "plain")).empty


def _tiered(item: str, expected: str, first: str, final: str, *, escalate: bool, **fields: object) -> dict:
    row = _moderation(
        item_id=item, expected=expected, verdict=final, tier="escalated" if escalate else "first",
        first_model=CHEAP, first_verdict=first, first_confidence=0.5 if escalate else 0.95,
        first_e2e_ms=100.0, first_cost_usd=0.001, cost_usd=0.005 if escalate else 0.001,
        e2e_ms=600.0 if escalate else 100.0, confidence=0.97 if escalate else 0.95,
    )  # fmt: skip
    if escalate:
        row["model"] = STRONG
    return {**row, **fields}


TIERED = [
    _tiered("a", "benign", "benign", "benign", escalate=False),
    _tiered("b", "violating", "violating", "violating", escalate=False),
    _tiered("c", "violating", "benign", "violating", escalate=True),  # the strong tier put it right
    _tiered("d", "benign", "violating", "benign", escalate=True),
    _moderation(item_id="e", expected="benign", tier="first", first_model=CHEAP, error_kind="server_error",
                first_e2e_ms=20.0, first_cost_usd=0.0, e2e_ms=20.0),  # not escalated: nothing to decide
]  # fmt: skip


def test_tiering_figures_first_tier_alone_escalated_and_blended(request_log) -> None:
    figures = tiering_figures(_frame(request_log, TIERED))
    rate = figures.rates.set_index("scenario").loc["moderation"]
    assert (rate["tiered"], rate["decided"], rate["escalated"]) == (5, 4, 2) and rate["rate"] == 0.5
    table = figures.table.set_index("tier")
    assert table.loc[FIRST_ALONE, "accuracy"] == 0.5 and table.loc[FIRST_ALONE, "answers"] == 4
    # Per post answered: the failed call's $0 does not make a tier look cheaper.
    assert table.loc[FIRST_ALONE, "cost_per_1k"] == pytest.approx(0.004 / 4 * 1000)
    assert table.loc[ESCALATED, "model"] == STRONG and table.loc[ESCALATED, "accuracy"] == 1.0
    assert table.loc[ESCALATED, "p50"] == 600.0 and table.loc[ESCALATED, "answers"] == 2
    assert table.loc[BLENDED, "accuracy"] == 1.0 and table.loc[BLENDED, "answers"] == 4
    assert table.loc[BLENDED, "cost_per_1k"] == pytest.approx(0.012 / 4 * 1000)
    assert tiering_figures(_frame(request_log, [_moderation(item_id="x", expected="benign")], "plain")).empty


def test_the_report_shows_tiering_and_batching(request_log, tmp_path: Path) -> None:
    folder = request_log(TIERED + BATCHED)
    html = build_report(folder).read_text(encoding="utf-8")
    tiering = section(html, "tiering")
    assert "Model tiering" in html and "Escalation rate" in tiering and 'src="data:image/png' in tiering
    assert cells(tiering, "moderation")[1:5] == ["5", "4", "2", "50.00%"]
    assert "Model tiering: moderation escalated 50.00% of 4 answered calls." in html  # the overview
    batching = section(html, "batching")
    # Batch size 1 first: the six tiered calls (one failed), then the three batches of 3.
    assert cells(batching, "moderation")[1:5] == ["1", "6", "6", "5"] and 'src="data:image/png' in batching
    assert batching.count("<tr") == 3  # a header and one row per batch size
    plain = build_report(request_log([_moderation(item_id="a", expected="benign")], name="plain"))
    assert '<section id="tiering">' not in plain.read_text(encoding="utf-8")
