"""Report sections for the scenario figures of reports/scenario_analysis.py: variants compared
(vision raw against optimized images) and moderation accuracy and consistency."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from reports import charts
from reports.html import Section, Table, fmt_ms, fmt_number, fmt_share
from reports.llm_analysis import ALL
from reports.scenario_analysis import UPLINKS_MBIT, ModerationFigures


def variant_section(table: pd.DataFrame, image_notes: Sequence[str] = ()) -> Section | None:
    """The variants compared; `image_notes` (scenario_analysis.image_rule_notes) say per vision
    scenario how its model counts an image and what optimizing saved."""
    if table.empty:
        return None
    variants = set(table["variant"])
    vision = {"raw", "optimized"} <= variants
    rows = [
        [
            r.scenario,
            r.variant,
            fmt_number(r.requests, 0),
            fmt_share(r.failure_rate),
            fmt_ms(r.e2e_p50),
            fmt_ms(r.e2e_p95),
            fmt_number(r.items, 0),
            fmt_number(r.request_kb, 1),
            *(fmt_ms(getattr(r, f"upload_ms_{mbit}")) for mbit in UPLINKS_MBIT),
            fmt_number(r.prep_ms, 1),
            fmt_number(r.prompt_tokens, 0),
            fmt_number(r.cost_per_1k, 4),
        ]
        for r in table.itertuples()
    ]
    section = Section(
        "variants",
        "Vision: raw against optimized images" if vision else "Variants compared",
        notes=[
            "Per scenario sending more than one variant (e.g. image mode). Preparation time is client-side, "
            "outside the timed call.",
            "Latency percentiles are over each variant's answered calls. Request size, preparation, prompt "
            "tokens and cost are means per item first (each image, post or prompt counts once) over "
            "answered calls, then over the items every variant answered, so an unfinished pair does not "
            "tilt the comparison; 'Items' is how many were compared. Cost per 1,000 items: for vision, "
            "per 1,000 images.",
            "Upload times are not measured: they are computed from the request size, bytes × 8 / uplink "
            f"at {' and '.join(f'{mbit} Mbit/s' for mbit in UPLINKS_MBIT)}, the time to push the request "
            "body alone (no round trips, TCP or TLS overhead). The measured latency includes the upload "
            "over the test machine's own link.",
            *image_notes,
        ],
        tables=[
            Table(
                columns=(
                    "Scenario",
                    "Variant",
                    "Requests",
                    "Failure rate",
                    "p50 (ms)",
                    "p95 (ms)",
                    "Items",
                    "Request size (KB)",
                    *(f"Upload at {mbit} Mbit/s (ms, from bytes)" for mbit in UPLINKS_MBIT),
                    "Preparation (ms)",
                    "Prompt tokens",
                    "Cost / 1,000 items (USD)",
                ),
                numeric=(False, False, *([True] * (9 + len(UPLINKS_MBIT)))),
                rows=rows,
            )
        ],
    )
    labels = [f"{r.scenario} / {r.variant}" for r in table.itertuples()]
    section.charts.append(
        charts.bar_chart(
            "chart-variants",
            "Latency by variant",
            "End-to-end time (ms)",
            labels,
            {"p50": table["e2e_p50"].fillna(0).tolist(), "p95": table["e2e_p95"].fillna(0).tolist()},
        )
    )
    return section


def moderation_section(figures: ModerationFigures) -> Section | None:
    if figures.empty:
        return None
    table = figures.table
    tables = [
        Table(
            columns=(
                "Scenario",
                "Labelled calls",
                "Judged",
                "Unanswered",
                "Blocked",
                "Accuracy",
                "Precision",
                "Recall",
                "Items judged ≥ 2 times",
                "Consistency",
            ),
            numeric=(False, *([True] * 9)),
            rows=[
                [
                    r.scenario,
                    fmt_number(r.calls, 0),
                    fmt_number(r.answers, 0),
                    fmt_number(r.unanswered, 0),
                    fmt_number(r.blocked, 0),
                    fmt_share(r.accuracy),
                    fmt_share(r.precision),
                    fmt_share(r.recall),
                    fmt_number(r.items_repeated, 0),
                    fmt_share(r.consistency),
                ]
                for r in table.itertuples()
            ],
            row_classes=["aggregated" if s == ALL else "" for s in table["scenario"]],
        )
    ]
    for scenario, confusion in figures.confusion.items():
        tables.append(
            Table(
                columns=("Expected \\ verdict", *map(str, confusion.columns)),
                numeric=(False, *([True] * len(confusion.columns))),
                rows=[
                    [str(label), *(fmt_number(v, 0) for v in values)]
                    for label, values in zip(confusion.index, confusion.to_numpy(), strict=True)
                ],
                caption=f"Confusion counts: {scenario}",
            )
        )
    if not figures.by_variant.empty:
        tables.append(
            Table(
                columns=("Scenario", "Variant", "Judged", "Accuracy"),
                numeric=(False, False, True, True),
                rows=[
                    [r.scenario, r.variant, fmt_number(r.answers, 0), fmt_share(r.accuracy)]
                    for r in figures.by_variant.itertuples()
                ],
                caption="Accuracy by variant (e.g. post length)",
            )
        )
    if not figures.inconsistent.empty:
        tables.append(
            Table(
                columns=("Scenario", "Item", "Verdicts (count)"),
                rows=[
                    [r.scenario, str(r.item_id), str(r.verdicts)] for r in figures.inconsistent.itertuples()
                ],
                caption="Items that got different verdicts (first 20)",
            )
        )
    return Section(
        "moderation",
        "Moderation: accuracy and consistency",
        notes=[
            "Accuracy: verdict equals the fixture's expected label (case-insensitive), over judged calls. "
            "A blocked call is an answer: without a verdict of its own it counts as 'violating', so a block "
            "on a violating post is correct and one on a benign post a false positive. Calls without a "
            "verdict (API failures, invalid answers) are unanswered and left out. Precision and recall treat "
            "'violating' as the positive class. Consistency: share of items judged two or more times that "
            "got the same verdict every time."
        ],
        tables=tables,
    )
