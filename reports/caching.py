"""Context caching, from the per-request logs: how much of the prompt the server read from a cache
(cachedContentTokenCount, explicit or implicit) and what that did to the cost per call.

The cost without caching is what the same calls would have cost with every prompt token at the full
input price: the logged cost plus the logged saving (Outcome.cached_saving_usd, priced by the run's
own price table). Cache storage, which the real API bills per token-hour for explicit caches, is
not in either figure. Frames are llm_analysis.add_derived's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports.html import Section, Table, fmt_number, fmt_share
from reports.llm_analysis import ALL, per_scenario_model
from reports.thinking import returned


def _column(group: pd.DataFrame, name: str) -> pd.Series:
    return group[name].astype(float) if name in group else pd.Series(float("nan"), index=group.index)


def _group_row(group: pd.DataFrame) -> dict[str, Any]:
    nan = float("nan")
    calls = len(group)
    prompt = float(_column(group, "prompt_tokens").sum())
    # The server leaves cachedContentTokenCount out when nothing was cached: an empty count is 0.
    cached = float(_column(group, "cached_tokens").fillna(0).sum())
    cost = float(_column(group, "cost_usd").sum())
    saving = _column(group, "cached_saving_usd")
    # A log older than the saving column cannot say what the calls would have cost: not known.
    full = cost + float(saving.sum()) if saving.notna().all() else nan
    return {
        "calls": calls,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "cached_share": cached / prompt if prompt > 0 else nan,
        "cached_calls": int((_column(group, "cached_tokens") > 0).sum()),
        "cost_per_call": cost / calls if calls else nan,
        "full_cost_per_call": full / calls if calls else nan,
        "saving_share": (full - cost) / full if full == full and full > 0 else nan,
    }


def caching_figures(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario+model and an `(all)` row over the calls returned (thinking.returned):
    prompt and cached tokens, the cached share, and the cost per call with and without caching.
    Empty when no returned call read a single token from a cache."""
    frame = requests[returned(requests)]
    if frame.empty or not (_column(frame, "cached_tokens") > 0).any():
        return pd.DataFrame()
    return per_scenario_model(frame, _group_row)


def caching_headline(table: pd.DataFrame) -> str | None:
    if table.empty:
        return None
    total = table[table["scenario"] == ALL].iloc[0]
    line = (
        f"Context caching: {fmt_share(total['cached_share'])} of prompt tokens came from a cache "
        f"({total['cached_calls']:,} of {total['calls']:,} returned calls)"
    )
    if total["saving_share"] == total["saving_share"]:
        line += (
            f"; cost per call {total['cost_per_call']:,.6f} USD against {total['full_cost_per_call']:,.6f} "
            f"at the full input price ({fmt_share(total['saving_share'])} less)"
        )
    return line + "."


def _usd(value: float) -> str:
    return "n/a" if value != value else f"{value:,.6f}"


def caching_section(table: pd.DataFrame) -> Section | None:
    if table.empty:
        return None
    notes = [
        "Over the calls the model returned a response to. Cached tokens: the prompt tokens the server "
        "reported as read from a cache (cachedContentTokenCount: an explicit cachedContent, or an "
        "implicit hit on a repeated prefix such as a long system prompt); they are part of the prompt "
        "tokens and billed at the cached-input price. Without caching: the same calls with every "
        "prompt token at the full input price. Cache storage (billed per token-hour for explicit "
        "caches) is in neither figure; n/a where the logs do not record the saving."
    ]
    headline = caching_headline(table)
    if headline is not None:
        notes.append(headline)
    rows = [
        [
            row.scenario,
            row.model,
            fmt_number(row.calls, 0),
            fmt_number(row.cached_calls, 0),
            fmt_number(row.prompt_tokens, 0),
            fmt_number(row.cached_tokens, 0),
            fmt_share(row.cached_share),
            _usd(row.cost_per_call),
            _usd(row.full_cost_per_call),
            "n/a" if row.saving_share != row.saving_share else fmt_share(row.saving_share),
        ]
        for row in table.itertuples()
    ]
    return Section(
        "llm-caching",
        "Context caching and cost",
        notes=notes,
        tables=[
            Table(
                columns=(
                    "Scenario",
                    "Model",
                    "Returned calls",
                    "Calls with cached tokens",
                    "Prompt tokens",
                    "Cached tokens",
                    "Cached share of prompt tokens",
                    "Cost per call (USD)",
                    "Cost per call without caching (USD)",
                    "Saved by caching",
                ),
                numeric=(False, False, *([True] * 8)),
                rows=rows,
                row_classes=["aggregated" if s == ALL else "" for s in table["scenario"]],
                caption="Cached prompt tokens and the cost per call with and without them",
            )
        ],
    )
