"""The emulated models: ModelProfile, and the line-up the catalogue (core/models.json) gives a day.

A day decides the line-up, as it does for the real API: a model whose shutdown date has passed is
retired, and a call to it is a 404, not an answer. Each served model's profile has the catalogue's
display name, limits, thinking and image-token rules, and its `emulator` figures over ModelProfile's
defaults; the quota tiers come from each entry's `quotas`. emulator.profiles builds the named
profiles and the config format on this.

Imports only core: profiles builds on it, so it sits below every other emulator module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from core.catalogue import (
    TOKENS_PER_IMAGE_TILE,
    UNKNOWN_MODEL_MODERATION_ACCURACY,
    CatalogueError,
    Images,
    ModelEntry,
    Thinking,
    catalogue,
    default_model,
)

# A model the catalogue does not know (a user's own, from the config) gets the 2.5 rules: a thinking
# budget, off with 0, up to the largest budget any listed model takes; and a flat 258 tokens an image.
UNKNOWN_THINKING = Thinking(control="budget", budget_min=0, budget_max=32_768, can_disable=True)
UNKNOWN_IMAGES = Images(rule="flat", tokens=TOKENS_PER_IMAGE_TILE)
REAL_TIERS = ("free", "tier1", "tier2", "tier3")


@dataclass(slots=True)
class ModelProfile:
    """How one model behaves. Times are in real milliseconds before the time scale applies."""

    display_name: str = ""
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    # Time to first token before prompt processing and thinking: lognormal (median, sigma of the
    # underlying normal). A slow path is mixed in: for a share of requests everything before the
    # first token takes about tail_factor times longer (lognormal, tail_sigma). Production tails are
    # that heavy: p99/p50 of 2.7x to 9.9x measured on 2.5 Flash and Flash-Lite
    # (docs/research/latency-and-quotas-2026-11-29.md), where one lognormal of sigma 0.35 gives 2.3x.
    ttft_median_ms: float = 450.0
    ttft_sigma: float = 0.3
    ttft_tail_share: float = 0.05
    ttft_tail_factor: float = 4.0
    ttft_tail_sigma: float = 0.5
    # Prompt processing adds prompt_tokens / rate seconds before the first token (images included).
    prompt_tokens_per_s: float = 100_000.0
    # Decoding: tokens per second, this request's rate drawn around it (lognormal, output_rate_sigma:
    # one answer decodes faster or slower as a whole), each chunk's delay jittered by +/- output_jitter.
    output_tokens_per_s: float = 250.0
    output_rate_sigma: float = 0.2
    output_jitter: float = 0.25
    chunk_tokens: int = 47  # tokens per streamed answer chunk (the real API sends dozens per chunk)
    thought_chunk_tokens: int = 120  # tokens of thinking per streamed thought-summary chunk
    # Answer length when maxOutputTokens does not cut it: lognormal, clipped to [min, max].
    output_tokens_median: float = 120.0
    output_tokens_sigma: float = 0.6
    output_tokens_min: int = 8
    output_tokens_max: int = 1_500
    # Thinking models bill thought tokens and decode them before the answer; false turns that off
    # (timing tests). Median thought tokens per thinkingLevel; a budget model's are under "default"
    # (no budget, or -1) and "on" (a budget > 0, for 2.5 Flash-Lite, which thinks only when given
    # one); "*" is every level (a config's single number).
    thinking: bool = False
    thoughts_tokens_median: dict[str, float] = field(default_factory=dict)
    # Capacity: concurrent requests served at once; more wait in a queue of queue_limit. The real API
    # does not queue visibly: past capacity it answers 503 "high demand" at once (queue_limit 0).
    capacity: int = 1_000
    queue_limit: int = 0
    queue_timeout_s: float = 60.0
    queue_timeout_status: int = 503  # 503 UNAVAILABLE or 504 DEADLINE_EXCEEDED
    # Under load each busy slot slows the others: ttft and decode time grow by
    # load_slowdown * busy_fraction (0.5 -> 50 % slower when every slot is taken).
    load_slowdown: float = 0.5
    # JSON-mode moderation: the share of posts judged right (modelled; emulator.moderation says
    # which posts a model gets wrong: the same hard ones for every model, fewer for a better one).
    moderation_accuracy: float = UNKNOWN_MODEL_MODERATION_ACCURACY
    # The catalogue's rules: which thinking settings the API accepts, how an image is counted. Facts
    # of the model rather than figures to tune, so a config cannot set them.
    thinking_rule: Thinking = field(default_factory=lambda: UNKNOWN_THINKING)
    image_rule: Images = field(default_factory=lambda: UNKNOWN_IMAGES)

    def thoughts_median(self, key: str) -> float:
        table = self.thoughts_tokens_median
        return table.get(key, table.get("*", 0.0))

    def describe(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            thoughts_tokens_median=dict(self.thoughts_tokens_median),
            thinking_rule=self.thinking_rule.model_dump(mode="json"),
            image_rule=self.image_rule.model_dump(mode="json"),
        )
        return data


RULE_FIELDS = {"thinking_rule", "image_rule"}


def catalogue_profile(entry: ModelEntry) -> ModelProfile:
    """The profile of one catalogue model: its facts and rules, then its `emulator` figures over
    ModelProfile's defaults."""
    values: dict[str, Any] = {
        "display_name": entry.display_name,
        "input_token_limit": entry.input_token_limit,
        "output_token_limit": entry.output_token_limit,
        "thinking": entry.thinking.control != "none",
        "thinking_rule": entry.thinking,
        "image_rule": entry.images,
    }
    figures = dict(entry.emulator)
    medians = figures.pop("thoughts_tokens_median", {})
    values["thoughts_tokens_median"] = {str(k): float(v) for k, v in medians.items()}
    unknown = set(figures) - {f.name for f in fields(ModelProfile)} | (set(figures) & RULE_FIELDS)
    if unknown:
        raise CatalogueError(f"models.json: models.{entry.id}.emulator: unknown field(s) {sorted(unknown)}")
    return ModelProfile(**values, **figures)


def served_models(day: date) -> dict[str, ModelProfile]:
    """The profiles of the models the API serves on `day` (every one not retired by then)."""
    return {name: catalogue_profile(entry) for name, entry in catalogue().served_on(day).items()}


def catalogue_entry(model: str) -> ModelEntry | None:
    """The catalogue's entry of exactly this id, whatever its status."""
    return catalogue().models.get(model)


def is_retired(model: str, day: date) -> bool:
    """Whether `model` names a catalogue model shut down by `day` (versioned ids included)."""
    found = catalogue().get(model)
    return found is not None and found.status_on(day) == "retired"


def quota_tiers() -> dict[str, dict[str, tuple[int, int]]]:
    """Requests and tokens per minute per model for each real tier, from every entry that has them."""
    tiers: dict[str, dict[str, tuple[int, int]]] = {tier: {} for tier in REAL_TIERS}
    for name, entry in catalogue().models.items():
        for tier, limits in entry.quotas.items():
            tiers.setdefault(tier, {})[name] = limits
    return tiers


def fallback_model() -> str:
    """Whose quota figures a model gets when its tier does not list it: the catalogue's default."""
    return default_model()


def family(model: str) -> str | None:
    """The family (pro, flash, flash-lite) whose figures a model gets where they are kept by family
    (requests per day: emulator.quotas; Vertex's tokens per minute: emulator.vertex): its catalogue
    entry's, else the default model's (a user's own model)."""
    entry = catalogue_entry(model) or catalogue_entry(fallback_model())
    return entry.family if entry is not None else None
