"""Scenario figures from the per-request logs: variants of one scenario compared (vision raw against
optimized images, prompt-length buckets) and moderation answers scored against their labels.

Frames are llm_analysis.add_derived's (`failed`, `blocked` flags). These are the suite's only
scenario analyses: the scenario users record variant, item_id, verdict and expected on each
Outcome, and the figures are computed here, from the results folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from core.verdicts import BLOCKED_VERDICT, VIOLATING
from reports.llm_analysis import ALL, percentiles

# Per-item means compared across variants: column -> (source column, scale).
VARIANT_MEANS = {
    "request_kb": ("request_bytes", 1 / 1024),
    "prep_ms": ("prep_ms", 1.0),
    "prompt_tokens": ("prompt_tokens", 1.0),
    "cost_per_1k": ("cost_usd", 1000.0),
}
SOURCES = tuple(source for source, _ in VARIANT_MEANS.values())
POSITIVE_VERDICT = VIOLATING  # precision and recall are of flagging a post


def variant_comparison(requests: pd.DataFrame) -> pd.DataFrame:
    """Per scenario with two or more variants (e.g. raw vs optimized images): one row per variant.

    Latency percentiles are over the variant's answered calls. Request size, preparation time,
    prompt tokens and cost per 1,000 calls are means per item first (each image, post or prompt
    counts once), over answered calls, then over the items every variant of the scenario answered;
    so a run that stopped between the raw and the optimized call of a photo does not tilt the
    comparison. Variants that share no item (length buckets) use each variant's own items.
    """
    tagged = requests[requests["variant"].astype(str) != ""]
    rows = []
    for scenario, group in tagged.groupby("scenario", observed=True, sort=True):
        variants = group["variant"].astype(str)
        if variants.nunique() < 2:
            continue
        per_item = _per_item_means(group, variants)
        # Items every variant answered (variants with no answer at all have nothing to pair).
        common = set.intersection(*(set(means.index) for means in per_item.values())) if per_item else set()
        for variant, part in group.groupby(variants, sort=True):
            answered = part[part["answered"]]
            p50, p95 = percentiles(answered["e2e_ms"], (0.5, 0.95))
            mine = per_item.get(str(variant), pd.DataFrame(columns=list(SOURCES)))
            compared = mine[mine.index.isin(common)] if common else mine
            row = {
                "scenario": str(scenario),
                "variant": str(variant),
                "requests": len(part),
                "failure_rate": float(part["failed"].mean()),
                "e2e_p50": p50,
                "e2e_p95": p95,
                "items": len(compared),
            }
            for name, (source, scale) in VARIANT_MEANS.items():
                row[name] = float(compared[source].mean()) * scale if len(compared) else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


def _per_item_means(group: pd.DataFrame, variants: pd.Series) -> dict[str, pd.DataFrame]:
    """Per variant: the mean of each source column per item, over answered calls. NaN cells (the
    server did not report prompt tokens) are left out, not counted as 0."""
    answered = group["answered"]
    frame = group.loc[answered, list(SOURCES)].astype(float)
    frame["variant"] = variants[answered].to_numpy()
    frame["item"] = group.loc[answered, "item_id"].astype(str).to_numpy()
    return {
        str(variant): part.groupby("item", sort=True)[list(SOURCES)].mean()
        for variant, part in frame.groupby("variant", sort=True)
    }


@dataclass
class ModerationFigures:
    """Scores of labelled answers. `table` has one row per labelled scenario and an `(all)` row."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)  # scenario -> expected x verdict
    by_variant: pd.DataFrame = field(default_factory=pd.DataFrame)  # scenario, variant, answers, accuracy
    inconsistent: pd.DataFrame = field(default_factory=pd.DataFrame)  # scenario, item_id, verdicts

    @property
    def empty(self) -> bool:
        return self.table.empty


def _normalise(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower()


def moderation(requests: pd.DataFrame) -> ModerationFigures:
    """Accuracy, precision, recall and consistency of labelled answers (a non-empty `expected`).

    A blocked call is an answer: the service refused the post, so it counts as verdict
    "violating" (core.verdicts.BLOCKED_VERDICT) when it carries none. A block on a violating post
    is therefore correct and a block on a benign post a false positive. Calls with no verdict (API
    failures, invalid answers) are unanswered and left out of the scores. Precision and recall
    treat "violating" as the positive class (NaN when a scenario's labels do not use it).
    Consistency: the share of items judged two or more times that got the same verdict every time.
    """
    labelled = requests[requests["expected"].astype(str) != ""]
    if labelled.empty:
        return ModerationFigures()
    blocked = labelled["blocked"].to_numpy(dtype=bool)
    verdict = _normalise(labelled["verdict"])
    verdict = verdict.where(~(blocked & (verdict == "").to_numpy()), BLOCKED_VERDICT).to_numpy()
    frame = pd.DataFrame(
        {
            "scenario": labelled["scenario"].astype(str).to_numpy(),
            "item_id": labelled["item_id"].astype(str).to_numpy(),
            "variant": labelled["variant"].astype(str).to_numpy(),
            "expected": _normalise(labelled["expected"]).to_numpy(),
            "verdict": verdict,
            "blocked": blocked,
        }
    )
    frame["judged"] = ~labelled["failed"].to_numpy(dtype=bool) & (frame["verdict"] != "")
    frame["correct"] = frame["verdict"] == frame["expected"]
    judged = frame[frame["judged"]]
    rows = [
        _moderation_row(name, part) for name, part in [*frame.groupby("scenario", sort=True), (ALL, frame)]
    ]
    confusion = {
        str(name): part.groupby(["expected", "verdict"]).size().unstack(fill_value=0)
        for name, part in judged.groupby("scenario", sort=True)
    }
    by_variant = (
        judged[judged["variant"] != ""]
        .groupby(["scenario", "variant"], sort=True)["correct"]
        .agg(answers="size", accuracy="mean")
        .reset_index()
    )
    by_item = judged[judged["item_id"] != ""].groupby(["scenario", "item_id"], sort=True)["verdict"]
    counts = by_item.agg(lambda v: ", ".join(f"{k}×{n}" for k, n in v.value_counts().items()))
    inconsistent = counts[by_item.nunique() > 1].rename("verdicts").reset_index()
    return ModerationFigures(pd.DataFrame(rows), confusion, by_variant, inconsistent.head(20))


def _moderation_row(scenario: str, group: pd.DataFrame) -> dict[str, object]:
    judged = group[group["judged"]]
    nan = float("nan")
    # Items are per scenario: two scenarios may reuse an id for different posts.
    answers_per_item = judged[judged["item_id"] != ""].groupby(["scenario", "item_id"])["verdict"]
    repeated = answers_per_item.agg(["size", "nunique"])
    repeated = repeated[repeated["size"] >= 2]
    flagged = judged["verdict"] == POSITIVE_VERDICT
    positive = judged["expected"] == POSITIVE_VERDICT
    speaks_labels = bool((group["expected"] == POSITIVE_VERDICT).any())
    return {
        "scenario": scenario,
        "calls": len(group),
        "answers": len(judged),
        "unanswered": len(group) - len(judged),
        "blocked": int(group["blocked"].sum()),
        "accuracy": float(judged["correct"].mean()) if len(judged) else nan,
        "precision": float((flagged & positive).sum() / flagged.sum())
        if speaks_labels and flagged.any()
        else nan,
        "recall": float((flagged & positive).sum() / positive.sum()) if positive.any() else nan,
        "items_repeated": len(repeated),
        "consistency": float((repeated["nunique"] == 1).mean()) if len(repeated) else nan,
    }
