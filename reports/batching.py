"""Batching, from the per-request logs: what carrying several posts per call (moderation
--batch-size) did to throughput, latency per post, cost per post and accuracy.

Per batch size, over its items (reports.items): items answered per second over the span of those
calls (first start to last end), per-item latency (every post of a batch waited the whole call),
cost per 1,000 items (a call's cost split over its posts) and accuracy against the labels. Shown
when a batch size other than 1 appears.
"""

from __future__ import annotations

import pandas as pd

from core.quantiles import nearest_rank_quantiles
from reports import charts
from reports.html import Section, Table, fmt_ms, fmt_number, fmt_share
from reports.items import moderation_items


def batching_figures(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, batch size); empty when every call carried one post."""
    items = moderation_items(requests)
    if items.empty or (items["batch_size"] == 1).all():
        return pd.DataFrame()
    rows = []
    for (scenario, size), part in items.groupby(["scenario", "batch_size"], sort=True):
        answered = part[part["answered"]]
        end = (part["start_time"] + part["e2e_ms"] / 1000.0).max()
        span = float(end - part["start_time"].min())
        p50, p95 = nearest_rank_quantiles(answered["e2e_ms"], (0.5, 0.95))
        rows.append(
            {
                "scenario": scenario,
                "batch_size": int(size),
                "calls": int(part["call"].nunique()),
                "items": len(part),
                "answered": len(answered),
                "items_per_s": len(answered) / span if span > 0 else float("nan"),
                "p50": p50,
                "p95": p95,
                # What an answered post cost: every call's cost, failed ones included, per post answered.
                "cost_per_1k": float(part["cost_usd"].sum()) / len(answered) * 1000
                if len(answered)
                else float("nan"),
                "accuracy": float(answered["correct"].mean()) if len(answered) else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def batching_section(table: pd.DataFrame) -> Section | None:
    if table.empty:
        return None
    section = Section(
        "batching",
        "Batching",
        notes=[
            "Per batch size (moderation --batch-size): items are posts, each post of a batch counted once. "
            "Items/s: posts answered per second over the span of those calls. Latency per post is its "
            "call's end-to-end time (every post of a batch waits the whole call), over answered posts. "
            "Cost per 1,000 posts: every call's cost, failed ones included, per 1,000 posts answered. Accuracy against the labels, "
            "over answered posts (a blocked batch gives every post the blocked verdict)."
        ],
        tables=[
            Table(
                columns=(
                    "Scenario",
                    "Batch size",
                    "Calls",
                    "Posts",
                    "Answered",
                    "Posts/s",
                    "p50 (ms)",
                    "p95 (ms)",
                    "Cost / 1,000 posts (USD)",
                    "Accuracy",
                ),
                numeric=(False, *([True] * 9)),
                rows=[
                    [
                        r.scenario,
                        fmt_number(r.batch_size, 0),
                        fmt_number(r.calls, 0),
                        fmt_number(r.items, 0),
                        fmt_number(r.answered, 0),
                        fmt_number(r.items_per_s, 2),
                        fmt_ms(r.p50),
                        fmt_ms(r.p95),
                        fmt_number(r.cost_per_1k, 4),
                        fmt_share(r.accuracy),
                    ]
                    for r in table.itertuples()
                ],  # fmt: skip
            )
        ],
    )
    section.charts.append(
        charts.bar_chart(
            "chart-batching",
            "Latency per post by batch size",
            "End-to-end time (ms)",
            [f"{r.scenario} / {r.batch_size}" for r in table.itertuples()],
            {"p50": table["p50"].fillna(0).tolist(), "p95": table["p95"].fillna(0).tolist()},
        )
    )
    return section
