"""Calls as items: one row per post a call judged, so a batched run is scored per post.

A moderation call with --batch-size N (Outcome.batch_size) carries N posts; its item_id, verdict,
expected and first_verdict hold one value per post joined by core.outcome.ITEM_SEPARATOR, in the
same order. Here each becomes one row. Every item of a batch waited the whole call (e2e_ms is the
call's) and costs the call's cost over its batch size. A call with no verdict (failed, cancelled)
still gives one row per item, unanswered. A blocked call is an answer: an item without a verdict of
its own gets core.verdicts.BLOCKED_VERDICT.

Frames are the per-request log as reports/loading reads it; add_derived's flags are not needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.outcome import BLOCKED, CANCELLED, FAILURE_KINDS, ITEM_SEPARATOR
from core.verdicts import BLOCKED_VERDICT

# Per-call columns copied onto each of the call's items: text ("" where the log has none) and
# numbers (NaN where the log has none).
CALL_TEXT_COLUMNS = ("scenario", "model", "variant", "error_kind", "tier", "first_model")
CALL_NUMBER_COLUMNS = ("start_time", "e2e_ms", "confidence", "first_confidence", "first_e2e_ms")
CALL_COLUMNS = CALL_TEXT_COLUMNS + CALL_NUMBER_COLUMNS
# Joined per item in a batched call.
ITEM_COLUMNS = ("item_id", "verdict", "expected", "first_verdict")
# Split over the call's items.
COST_COLUMNS = ("cost_usd", "first_cost_usd")


def text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A request-log text column with "" for missing values (and for an older log without it)."""
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[name].astype(object).where(frame[name].notna(), "").astype(str)


def number_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A request-log number column, NaN where missing or not a number (or for an older log without it)."""
    if name not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce")


def _number(frame: pd.DataFrame, name: str) -> np.ndarray:
    return number_column(frame, name).to_numpy(dtype=float)


def _split(value: str, size: int) -> list[str]:
    """The item values of one call, padded with "" to `size` (a call with no verdict has none)."""
    parts = value.split(ITEM_SEPARATOR) if value else []
    return (parts + [""] * size)[:size]


def call_items(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per item of every call (see the module docstring): CALL_COLUMNS, ITEM_COLUMNS and
    COST_COLUMNS (per item), `batch_size`, `call` (the call's row label in `requests`), the flags
    `failed`, `blocked`, `cancelled`, `answered` (the item got a verdict: its call was neither
    failed nor cancelled and a verdict is known), and `correct` (pandas' nullable boolean: the
    verdict equals the label, case-insensitive; missing when unanswered or unlabelled)."""
    sizes = (
        pd.to_numeric(requests["batch_size"], errors="coerce").fillna(1).clip(lower=1).astype(int)
        if "batch_size" in requests
        else pd.Series(1, index=requests.index)
    )
    repeat = sizes.to_numpy()
    rows = np.repeat(np.arange(len(requests)), repeat)
    items = pd.DataFrame(
        {"call": requests.index.to_numpy()[rows], "batch_size": repeat[rows]}, index=pd.RangeIndex(len(rows))
    )
    for name in CALL_TEXT_COLUMNS:
        items[name] = text_column(requests, name).to_numpy()[rows]
    for name in CALL_NUMBER_COLUMNS:
        items[name] = _number(requests, name)[rows]
    for name in ITEM_COLUMNS:
        text = text_column(requests, name).to_numpy()
        if (repeat == 1).all():
            items[name] = text[rows]
        else:
            items[name] = [value for v, n in zip(text, repeat, strict=True) for value in _split(v, n)]
    for name in COST_COLUMNS:
        items[name] = (_number(requests, name) / repeat)[rows]
    kinds = items["error_kind"].to_numpy()
    items["failed"] = np.isin(kinds, list(FAILURE_KINDS))
    items["blocked"] = kinds == BLOCKED
    items["cancelled"] = kinds == CANCELLED
    unlabelled_block = items["blocked"] & (items["verdict"] == "")
    items.loc[unlabelled_block, "verdict"] = BLOCKED_VERDICT
    items["answered"] = ~(items["failed"] | items["cancelled"]) & (items["verdict"] != "")
    verdict = items["verdict"].str.strip().str.lower()
    expected = items["expected"].str.strip().str.lower()
    correct = pd.Series(verdict == expected, dtype="boolean")
    items["correct"] = correct.mask(~items["answered"] | (expected == ""))
    return items


def moderation_items(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per moderation item: the labelled calls' items (a non-empty `expected`), batched
    calls exploded, with the columns of call_items (item_id, verdict, expected, correct, answered,
    e2e_ms, cost_usd per item, batch_size, tier, first_verdict, start_time...)."""
    labelled = requests[text_column(requests, "expected") != ""]
    return call_items(labelled)
