"""Scenario figures from the per-request logs: variants of one scenario compared (vision raw against
optimized images, prompt-length buckets) and moderation answers scored against their labels.

For vision, what optimizing an image saves depends on how the model counts it (core/models.json):
Gemini 2.5 counts a flat 258 tokens and Gemini 3 counts by media resolution, whatever the size, so
there it saves bytes and upload time but no tokens; only the tiling rule (Gemini 2.0) charges a
large image more. The sentence the report shows is derived from that rule and the measured figures.

Frames are llm_analysis.add_derived's (`failed`, `blocked` flags). These are the suite's only
scenario analyses: the scenario users record variant, item_id, verdict and expected on each
Outcome, and the figures are computed here, from the results folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from core.catalogue import catalogue
from core.verdicts import VIOLATING
from reports.items import moderation_items
from reports.llm_analysis import ALL, percentiles

# Per-item means compared across variants: column -> (source column, scale).
VARIANT_MEANS = {
    "request_kb": ("request_bytes", 1 / 1024),
    "prep_ms": ("prep_ms", 1.0),
    "prompt_tokens": ("prompt_tokens", 1.0),
    "cost_per_1k": ("cost_usd", 1000.0),
}
SOURCES = tuple(source for source, _ in VARIANT_MEANS.values())
# Upload time is not measured per call (it hides inside e2e_ms): it is computed from the request
# size at these uplinks, a slow and a fast office line.
UPLINKS_MBIT = (10, 100)
VISION_VARIANTS = ("raw", "optimized")
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
            for mbit in UPLINKS_MBIT:
                row[f"upload_ms_{mbit}"] = upload_ms(row["request_kb"] * 1024, mbit)
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


def upload_ms(request_bytes: float, mbit_per_s: float) -> float:
    """Time to push the request body through an uplink of `mbit_per_s` (10^6 bit/s): bytes x 8 /
    rate, with no round trips, TCP or TLS overhead, so a lower bound of the real upload."""
    return request_bytes * 8 / (mbit_per_s * 1e6) * 1000.0


def image_rule_notes(requests: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """One sentence per vision scenario (variants raw and optimized in variant_comparison's table):
    how its model counts an image (the catalogue) and what the measured figures show."""
    notes: list[str] = []
    if table.empty:
        return notes
    tagged = requests[requests["variant"].astype(str) != ""]
    for scenario, rows in table.groupby("scenario", sort=True):
        by_variant = rows.set_index("variant")
        if not set(VISION_VARIANTS) <= set(by_variant.index):
            continue
        models = sorted(set(tagged.loc[tagged["scenario"].astype(str) == scenario, "model"].astype(str)))
        if len(models) == 1:
            sentence = image_rule_sentence(models[0], by_variant.loc["raw"], by_variant.loc["optimized"])
        else:
            # The per-item means pool the models, so no measured difference can be put on one rule.
            rules = "; ".join(_image_rule(model)[0] for model in models)
            sentence = (
                f"{rules}. The figures mix {len(models)} models, so they do not show what one rule saves."
            )
        notes.append(f"{scenario}: {sentence}")
    return notes


def _image_rule(model: str) -> tuple[str, str]:
    """(what the catalogue says of the model's image tokens, the rule: flat | resolution | tiles |
    unknown)."""
    entry = catalogue().get(model)
    if entry is None:
        return f"{model} is not in the model catalogue, so its image-token rule is unknown", "unknown"
    images = entry.images
    if images.rule == "resolution":
        default = images.by_resolution.get(images.default_resolution, images.tokens)
        return (
            f"{model} counts an image by its media resolution ({default:,} tokens at the default), "
            "whatever its size",
            "resolution",
        )
    if images.rule == "flat":
        return f"{model} counts an image as {images.tokens:,} tokens, whatever its size", "flat"
    return (
        f"{model} counts an image in tiles of {images.tokens:,} tokens (one for an image within "
        "384×384 pixels, more for a larger one), so a large image costs more tokens",
        "tiles",
    )


def _differ(a: float, b: float, floor: float = 0.5) -> bool:
    # Means over the same items: a size-blind rule gives equal figures; a gap within `floor` or
    # 0.5% is rounding, not a saving.
    return abs(a - b) > max(floor, 0.005 * max(abs(a), abs(b)))


def image_rule_sentence(model: str, raw: Mapping[str, float], optimized: Mapping[str, float]) -> str:
    """The rule and its consequence for optimizing, said only as far as the measured per-image
    figures (request_kb, prompt_tokens, cost_per_1k of variant_comparison) bear it out."""
    rule_text, rule = _image_rule(model)
    raw_kb, opt_kb = float(raw["request_kb"]), float(optimized["request_kb"])
    raw_tokens, opt_tokens = float(raw["prompt_tokens"]), float(optimized["prompt_tokens"])
    raw_cost, opt_cost = float(raw["cost_per_1k"]), float(optimized["cost_per_1k"])
    if raw_kb != raw_kb or opt_kb != opt_kb:
        return f"{rule_text}: no image was answered in both variants to measure it by."
    smaller = opt_kb < raw_kb
    tokens_known = raw_tokens == raw_tokens and opt_tokens == opt_tokens
    fewer = tokens_known and opt_tokens < raw_tokens and _differ(raw_tokens, opt_tokens)
    cost_known = raw_cost == raw_cost and opt_cost == opt_cost
    measured = f"{raw_kb:,.1f} KB raw against {opt_kb:,.1f} KB optimized"
    if tokens_known:
        measured += f", {raw_tokens:,.0f} against {opt_tokens:,.0f} prompt tokens"
    if rule in ("flat", "resolution"):
        if tokens_known and _differ(raw_tokens, opt_tokens):
            verdict = (
                "yet the measured prompt tokens differ, which that rule does not explain (check the media "
                "resolution and the prompt each variant sent), so it is not counted as a saving of optimizing"
            )
        else:
            verdict = (
                "optimizing saves bytes and upload time, not tokens or cost"
                if smaller
                else "optimizing saves no tokens or cost, and here it saved no bytes either"
            )
            if not tokens_known:
                verdict += " (the logs hold no prompt token counts to confirm it)"
            elif cost_known and _differ(raw_cost, opt_cost, floor=0.0):
                verdict += "; the cost difference in the table comes from output and thinking tokens"
    elif rule == "tiles":
        if fewer:
            verdict = f"here optimizing saved {raw_tokens - opt_tokens:,.0f} prompt tokens per image"
            if cost_known and opt_cost < raw_cost:
                verdict += f" and {raw_cost - opt_cost:,.4f} USD per 1,000 images"
            verdict += ", as well as bytes and upload time" if smaller else ""
        elif tokens_known:
            verdict = (
                "here the optimized images took no fewer prompt tokens, so optimizing saved no tokens or cost"
            )
        else:
            verdict = "the logs hold no prompt token counts to show whether optimizing saved any"
    elif fewer:
        verdict = (
            f"measured, the optimized images took {raw_tokens - opt_tokens:,.0f} fewer prompt tokens each"
        )
    elif tokens_known:
        verdict = "measured, the optimized images took no fewer prompt tokens"
    else:
        verdict = "the logs hold no prompt token counts either"
    return f"{rule_text}: {verdict} (measured per image: {measured})."


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
    Scored per item (reports.items): each post of a batched call counts once, so `calls` counts
    labelled items.
    """
    # Per item, not per call: a batched call (--batch-size) judged several posts.
    labelled = moderation_items(requests)
    if labelled.empty:
        return ModerationFigures()
    frame = pd.DataFrame(
        {
            "scenario": labelled["scenario"].to_numpy(),
            "item_id": labelled["item_id"].to_numpy(),
            "variant": labelled["variant"].to_numpy(),
            "expected": _normalise(labelled["expected"]).to_numpy(),
            "verdict": _normalise(labelled["verdict"]).to_numpy(),
            "blocked": labelled["blocked"].to_numpy(dtype=bool),
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
