"""Thinking and MAX_TOKENS, from the per-request logs: what thinking took of the output tokens and
of the cost, and how often thinking and answer ran out of their shared maxOutputTokens.

Thinking models (Gemini 2.5 and 3.x) spend thinking tokens out of the same maxOutputTokens as the
answer and bill them at the output price, so a call can end with finish reason MAX_TOKENS before
(or without) any answer text. Frames are llm_analysis.add_derived's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports.html import Section, Table, fmt_number, fmt_share
from reports.llm_analysis import ALL, per_scenario_model

MAX_TOKENS = "MAX_TOKENS"
MAX_TOKENS_ADVICE = (
    "thinking and answer share maxOutputTokens: raise --max-output-tokens or lower --thinking-level"
)


def returned(requests: pd.DataFrame) -> pd.Series:
    """Calls the model returned a response to: answered ones (blocked included), and those the
    scenario's check refused after the answer came (an empty answer cut by MAX_TOKENS is counted
    invalid_response, yet it was returned and billed). Cancelled calls are left out."""
    finished = (
        requests["finish_reason"].astype(str).str.strip() != "" if "finish_reason" in requests else False
    )
    return ~requests["cancelled"] & (requests["answered"] | finished)


def _column(group: pd.DataFrame, name: str) -> pd.Series:
    return group[name].astype(float) if name in group else pd.Series(float("nan"), index=group.index)


def _group_row(group: pd.DataFrame) -> dict[str, Any]:
    nan = float("nan")
    calls = len(group)
    thoughts, output = _column(group, "thoughts_tokens"), _column(group, "output_tokens")
    # The server leaves a count out when it is 0 (no thinking, or no answer text); a call with no
    # usage at all reported says nothing, so only a group without any count is "not known".
    usage_known = bool(thoughts.notna().any() or output.notna().any())
    thought_sum, output_sum = float(thoughts.sum()), float(output.sum())
    tokens = thought_sum + output_sum
    # Only calls whose log holds the thinking cost: an older log has no such column (NaN), and
    # counting it as 0 would claim thinking cost nothing.
    thoughts_cost = _column(group, "thoughts_cost_usd")
    known = thoughts_cost.notna()
    cost_known = float(_column(group, "cost_usd")[known].sum())
    finish = group["finish_reason"].astype(str).str.strip() if "finish_reason" in group else None
    cut = finish == MAX_TOKENS if finish is not None else pd.Series(False, index=group.index)
    # No answer text: the server reports no candidatesTokenCount (or 0) for an empty answer.
    empty = cut & ~(output > 0)
    return {
        "calls": calls,
        "thoughts_tokens": thought_sum if usage_known else nan,
        "output_tokens": output_sum if usage_known else nan,
        "thinking_token_share": thought_sum / tokens if usage_known and tokens > 0 else nan,
        "thinking_cost_share": float(thoughts_cost[known].sum()) / cost_known
        if known.any() and cost_known > 0
        else nan,
        "thoughts_per_call": thought_sum / calls if usage_known and calls else nan,
        "max_tokens": int(cut.sum()),
        "max_tokens_rate": float(cut.sum()) / calls if calls else nan,
        "max_tokens_empty": int(empty.sum()),
    }


def thinking_figures(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario+model and an `(all)` row, over the calls returned (see `returned`):
    thinking tokens as a share of output tokens (thinking + answer), the thinking part of the cost,
    mean thinking tokens per call, and the calls that ended with MAX_TOKENS (and how many of those
    had no answer text). Empty when no call was returned."""
    frame = requests[returned(requests)]
    if frame.empty:
        return pd.DataFrame()
    return per_scenario_model(frame, _group_row)


def max_tokens_note(table: pd.DataFrame) -> str | None:
    """One line when some calls ended with MAX_TOKENS: how many, and what to change."""
    if table.empty:
        return None
    total = table[table["scenario"] == ALL].iloc[0]
    if not total["max_tokens"]:
        return None
    return (
        f"{total['max_tokens']:,} of {total['calls']:,} returned calls ended with MAX_TOKENS "
        f"({fmt_share(total['max_tokens_rate'])}, {total['max_tokens_empty']:,} without answer text): "
        f"{MAX_TOKENS_ADVICE}."
    )


def _share_or_na(value: float) -> str:
    # "n/a", not the usual dash: a reader must not take an unrecorded thinking cost for a 0.
    return "n/a" if value != value else fmt_share(value)


def thinking_section(table: pd.DataFrame) -> Section | None:
    if table.empty:
        return None
    section = Section(
        "llm-thinking",
        "Thinking and MAX_TOKENS",
        notes=[
            "Over the calls the model returned a response to (blocked ones and answers the scenario "
            "refused included, failures without a response left out). Thinking share of output "
            "tokens: thinking / (thinking + answer tokens). Thinking share of cost: the cost of "
            "thinking tokens (billed at the output price) over the whole cost; n/a when the logs do "
            "not record it (runs older than the thoughts_cost_usd column) or nothing was spent. "
            "MAX_TOKENS: calls cut off by maxOutputTokens, which thinking and answer share; 'no "
            "answer text' counts those that reported no answer tokens."
        ],
        tables=[
            Table(
                columns=(
                    "Scenario",
                    "Model",
                    "Returned calls",
                    "Thinking tokens",
                    "Answer tokens",
                    "Thinking share of output tokens",
                    "Thinking share of cost",
                    "Thinking tokens per call",
                    "MAX_TOKENS",
                    "MAX_TOKENS rate",
                    "MAX_TOKENS without answer text",
                ),
                numeric=(False, False, *([True] * 9)),
                rows=[
                    [
                        row.scenario,
                        row.model,
                        fmt_number(row.calls, 0),
                        fmt_number(row.thoughts_tokens, 0),
                        fmt_number(row.output_tokens, 0),
                        _share_or_na(row.thinking_token_share),
                        _share_or_na(row.thinking_cost_share),
                        fmt_number(row.thoughts_per_call, 1),
                        fmt_number(row.max_tokens, 0),
                        fmt_share(row.max_tokens_rate),
                        fmt_number(row.max_tokens_empty, 0),
                    ]
                    for row in table.itertuples()
                ],
                row_classes=["aggregated" if s == ALL else "" for s in table["scenario"]],
                caption="Thinking share and calls cut off by maxOutputTokens",
            )
        ],
    )
    note = max_tokens_note(table)
    if note is not None:
        section.notes.append(note)
    return section
