"""Model tiering, from the per-request logs: how often the cheap model was unsure, and what the tiers
scored, cost and waited (users/tiering.py makes the calls).

Three rows per scenario, over its tiered calls' items (reports.items: a batched call counts once per
post, its cost split over them):
- "First tier alone": what the cheap model's own answers would have given for every post: its
  verdicts (first_verdict), its cost (first_cost_usd) and its time (first_e2e_ms);
- "Escalated": the calls sent on to the stronger model, as the user got them (both calls' time and
  cost: what an escalated post waited and cost);
- "Blended": every tiered call as the user got it.
The escalation rate is over the calls whose first tier gave an answer or an invalid one: a first
call that failed outright (429, 5xx...) or was cut off by the stop is never escalated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from reports import charts
from reports.html import Section, Table, fmt_ms, fmt_number, fmt_share
from reports.items import call_items

FIRST_ALONE, ESCALATED, BLENDED = "First tier alone", "Escalated", "Blended"


@dataclass
class TieringFigures:
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # scenario, tier, model, answers, ...
    rates: pd.DataFrame = field(default_factory=pd.DataFrame)  # scenario, tiered, decided, escalated, rate

    @property
    def empty(self) -> bool:
        return self.table.empty


def _row(scenario: str, tier: str, model: str, items: pd.DataFrame, *, first: bool) -> dict[str, object]:
    if first:
        answered = (items["first_verdict"] != "") | items["first_confidence"].notna()
        verdict, cost, latency = items["first_verdict"], items["first_cost_usd"], items["first_e2e_ms"]
    else:
        answered = items["answered"]
        verdict, cost, latency = items["verdict"], items["cost_usd"], items["e2e_ms"]
    labelled = answered & (items["expected"] != "")
    correct = verdict[labelled].str.lower() == items.loc[labelled, "expected"].str.lower()
    p50, p95 = nearest_rank_quantiles(latency[answered], (0.5, 0.95))
    return {
        "scenario": scenario,
        "tier": tier,
        "model": model,
        "items": len(items),
        "answers": int(answered.sum()),
        "accuracy": float(correct.mean()) if len(correct) else float("nan"),
        # What an answered post cost: every call's cost, failed ones included, per post answered.
        "cost_per_1k": float(cost.sum()) / answered.sum() * 1000
        if answered.sum() and cost.notna().any()
        else float("nan"),
        "p50": p50,
        "p95": p95,
    }


def tiering_figures(requests: pd.DataFrame) -> TieringFigures:
    """Per scenario with tiered calls: the escalation rate and the three rows of the module's
    docstring. Empty when no call was tiered."""
    if "tier" not in requests:
        return TieringFigures()
    tiered = requests[requests["tier"].astype(str).isin(("first", "escalated"))]
    if tiered.empty:
        return TieringFigures()
    items = call_items(tiered)
    rows, rates = [], []
    for scenario, part in items.groupby("scenario", sort=True):
        calls = part.drop_duplicates("call")
        escalated = calls["tier"] == "escalated"
        # A first tier that failed or was cut off had nothing to escalate.
        decided = escalated | ~(calls["failed"] | calls["cancelled"])
        rates.append(
            {
                "scenario": scenario,
                "tiered": len(calls),
                "decided": int(decided.sum()),
                "escalated": int(escalated.sum()),
                "rate": float(escalated.sum() / decided.sum()) if decided.any() else float("nan"),
            }
        )
        first_models = ", ".join(sorted(set(part["first_model"]) - {""}))
        up = part[part["tier"] == "escalated"]
        rows.append(_row(scenario, FIRST_ALONE, first_models, part, first=True))
        rows.append(_row(scenario, ESCALATED, ", ".join(sorted(set(up["model"]))), up, first=False))
        rows.append(_row(scenario, BLENDED, "", part, first=False))
    return TieringFigures(pd.DataFrame(rows), pd.DataFrame(rates))


def tiering_headline(figures: TieringFigures) -> str | None:
    if figures.empty:
        return None
    parts = [
        f"{r.scenario} escalated {fmt_share(r.rate)} of {r.decided:,} answered calls"
        for r in figures.rates.itertuples()
    ]
    return "Model tiering: " + "; ".join(parts) + "."


def tiering_section(figures: TieringFigures) -> Section | None:
    if figures.empty:
        return None
    rates = Table(
        columns=("Scenario", "Tiered calls", "First tier answered", "Escalated", "Escalation rate"),
        numeric=(False, True, True, True, True),
        rows=[
            [
                r.scenario,
                fmt_number(r.tiered, 0),
                fmt_number(r.decided, 0),
                fmt_number(r.escalated, 0),
                fmt_share(r.rate),
            ]
            for r in figures.rates.itertuples()
        ],  # fmt: skip
        caption="Escalation rate",
    )
    tiers = Table(
        columns=(
            "Scenario",
            "Tier",
            "Model",
            "Posts",
            "Answers",
            "Accuracy",
            "Cost / 1,000 posts (USD)",
            "p50 (ms)",
            "p95 (ms)",
        ),
        numeric=(False, False, False, True, True, True, True, True, True),
        rows=[
            [
                r.scenario,
                r.tier,
                r.model,
                fmt_number(r.items, 0),
                fmt_number(r.answers, 0),
                fmt_share(r.accuracy),
                fmt_number(r.cost_per_1k, 4),
                fmt_ms(r.p50),
                fmt_ms(r.p95),
            ]
            for r in figures.table.itertuples()
        ],  # fmt: skip
        row_classes=["aggregated" if r.tier == BLENDED else "" for r in figures.table.itertuples()],
        caption="Per tier and blended",
    )
    notes = [
        "The cheap model (--model) answers first; an answer less sure than --escalate-below, or one that "
        "fails its schema, is sent again to --escalate-to. A first call that failed outright is not "
        "escalated. First tier alone: what the cheap model's own answers would have scored, cost and "
        "waited for every post. Escalated: the posts sent on, with both calls' time and cost. Blended: "
        "the tiered run as its users got it. Cost per 1,000 posts: every call's cost, failed ones included, per 1,000 posts answered. Accuracy is against the labels (moderation; – without "
        "labels); latency percentiles are over answered posts, a batch's posts each waiting the whole call.",
    ]
    headline = tiering_headline(figures)
    if headline is not None:
        notes.append(headline)
    section = Section("tiering", "Model tiering", notes=notes, tables=[rates, tiers])
    table = figures.table
    section.charts.append(
        charts.bar_chart(
            "chart-tiering",
            "Cost per 1,000 posts by tier",
            "USD per 1,000 posts",
            [f"{r.scenario} / {r.tier}" for r in table.itertuples()],
            {"cost": table["cost_per_1k"].fillna(0).tolist()},
        )
    )
    return section
