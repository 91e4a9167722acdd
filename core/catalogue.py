"""The model catalogue: what the suite, the emulator and the report know of each Gemini model.

One dated data file, core/models.json, read here and nowhere else. Each entry says what the model
is (family, generation), where it stands (preview, stable, deprecated, retired, with dates and a
successor), its limits, how its thinking is controlled (a token budget or a level), how its images
are counted, its prices and the emulator's latency and quota figures for it, and the sources all of
that came from. Facts about the API change fast: a date decides a model's status, so a shutdown
date that passes turns the model retired without an edit.

Imports nothing of the suite (core is the bottom layer).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from core.options import OptionError

CATALOGUE_FILE = "models.json"
TOKENS_PER_IMAGE_TILE = 258  # Gemini 1.5 and 2.x: one 768x768 tile, or one small image
MEDIA_RESOLUTIONS = (
    "MEDIA_RESOLUTION_LOW",
    "MEDIA_RESOLUTION_MEDIUM",
    "MEDIA_RESOLUTION_HIGH",
    "MEDIA_RESOLUTION_ULTRA_HIGH",
)
# Headroom the suite leaves for thinking on a model the catalogue does not know: enough for the
# default thinking of every model listed, so an automatic maxOutputTokens does not end in MAX_TOKENS.
UNKNOWN_MODEL_THINKING_HEADROOM = 8192
# The emulator's moderation accuracy (the `emulator` block's modelled `moderation_accuracy`) of a
# model the catalogue does not know: a Flash's, the default model's family.
UNKNOWN_MODEL_MODERATION_ACCURACY = 0.96


T = TypeVar("T")


def lookup(table: Mapping[str, T], model: str) -> T | None:
    """The value for a model id in a table keyed by model ids, the `models/` prefix and version
    suffixes (gemini-3.8-flash-001, -preview-06-17) aside: the longest listed id that is a prefix."""
    name = model.removeprefix("models/")
    if name in table:
        return table[name]
    for known in sorted(table, key=len, reverse=True):
        if name.startswith(known + "-"):
            return table[known]
    return None


class CatalogueError(ValueError):
    """The bundled catalogue is not valid: a packaging defect, named with the entry and field."""


class ModelStatusError(OptionError):
    """A model that cannot run: retired (shut down). The message names the successor."""


def _non_negative(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a finite number >= 0")
    return value


Price = Annotated[float, AfterValidator(_non_negative)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thinking(_Strict):
    """How the model's thinking is set. `budget`: thinkingConfig.thinkingBudget (tokens, -1 dynamic);
    `level`: thinkingConfig.thinkingLevel (the budget is refused with 400); `none`: no thinking."""

    control: Literal["budget", "level", "none"]
    levels: tuple[str, ...] = ()  # level models: the accepted thinkingLevel values
    default_level: str = ""
    budget_min: int = 0  # budget models: the accepted range (0 is accepted only when can_disable)
    budget_max: int = 0
    can_disable: bool = True  # budget 0 turns thinking off (2.5 Pro refuses it)
    # Level models: the first Gemini 3 models still take a budget, for backward compatibility; from
    # 3.5 on the API answers it with 400 INVALID_ARGUMENT.
    accepts_budget: bool = False
    # Tokens the suite leaves for thinking when it picks a scenario's maxOutputTokens (thinking and
    # answer share that cap): per level, or "default" for a budget model sent no budget.
    headroom: dict[str, int] = Field(default_factory=dict)

    def headroom_for(self, level: str | None, budget: int | None) -> int:
        if self.control == "none" or budget == 0:
            return 0
        if budget is not None and budget > 0:
            return budget
        key = (level or self.default_level) if self.control == "level" else "default"
        return self.headroom.get(key, UNKNOWN_MODEL_THINKING_HEADROOM)


class Images(_Strict):
    """How an image is counted in promptTokenCount.

    `flat`: `tokens` per image whatever its size (2.x), or by_resolution[MEDIA_RESOLUTION_LOW]
    when the request asks for low resolution; `tiles`: the 1.5 rule (258 for an image within
    384x384, else 258 per tile of side min(w, h) / 1.5 clamped to 256..768); `resolution`: the
    request's mediaResolution (per part, else generationConfig, else default_resolution) decides."""

    rule: Literal["flat", "tiles", "resolution"]
    tokens: int = TOKENS_PER_IMAGE_TILE
    by_resolution: dict[str, int] = Field(default_factory=dict)
    default_resolution: str = ""

    def tokens_for(self, width: int | None, height: int | None, resolution: str | None = None) -> int:
        """Prompt tokens of one image of this size; None sides: an image the server cannot measure."""
        asked = resolution if resolution in MEDIA_RESOLUTIONS else None
        if self.rule == "resolution":
            key = asked or self.default_resolution
            return self.by_resolution.get(key, self.tokens)
        if asked is not None and asked in self.by_resolution:
            return self.by_resolution[asked]
        if self.rule == "flat" or width is None or height is None:
            return self.tokens
        if width <= 384 and height <= 384:
            return self.tokens
        tile = min(max(min(width, height) / 1.5, 256), 768)
        return math.ceil(width / tile) * math.ceil(height / tile) * self.tokens


class Prices(_Strict):
    """USD per 1M tokens, standard paid tier. Output includes thinking. Prompts longer than
    long_context_threshold tokens are billed at the *_long prices."""

    input: Price
    output: Price
    cached_input: Price | None = None
    long_context_threshold: int | None = None
    input_long: Price | None = None
    output_long: Price | None = None
    cached_input_long: Price | None = None


class Caching(_Strict):
    """Context caching. `min_tokens`: the smallest cache caches.create accepts (below it, 400 "Cached
    content is too small"), and the shortest prefix an implicit hit can cover; `implicit`: whether
    repeated prefixes are cached without asking (Gemini 2.5 and newer)."""

    min_tokens: int = Field(ge=1)
    implicit: bool = True


class PriceChange(_Strict):
    from_: date = Field(alias="from")
    prices: Prices
    source: str


class ModelEntry(_Strict):
    id: str
    display_name: str
    family: Literal["pro", "flash", "flash-lite"]
    generation: str
    status: Literal["preview", "stable", "deprecated", "retired"]
    released: date | None = None
    shutdown: date | None = None  # announced shutdown; on and after it the model is retired
    successor: str = ""
    input_token_limit: int
    output_token_limit: int
    thinking: Thinking
    images: Images
    prices: Prices | None = None
    price_changes: tuple[PriceChange, ...] = ()  # announced prices, each from its date on
    # Emulator figures: fields of emulator.profiles.ModelProfile (latency, answer length, thinking
    # tokens per level, moderation accuracy) and requests/tokens per minute per quota tier.
    emulator: dict[str, Any] = Field(default_factory=dict)
    quotas: dict[str, tuple[int, int]] = Field(default_factory=dict)
    caching: Caching | None = None
    sources: tuple[str, ...]
    note: str = ""

    def prices_on(self, day: date) -> Prices | None:
        """The prices that apply on `day`: the latest change in force, else the listed ones."""
        current = self.prices
        for change in sorted(self.price_changes, key=lambda c: c.from_):
            if day >= change.from_:
                current = change.prices
        return current

    def status_on(self, day: date) -> str:
        """The status on `day`: a passed shutdown date makes it retired, an announced one deprecated."""
        if self.status == "retired" or (self.shutdown is not None and day >= self.shutdown):
            return "retired"
        if self.shutdown is not None:
            return "deprecated"
        return self.status


class Source(_Strict):
    url: str
    read: date  # when this catalogue's author read it
    says: str = ""


class RatioTarget(_Strict):
    """A latency ratio the sources measured, as a range per model family."""

    ranges: dict[str, tuple[float, float]]
    sources: list[str]


class Calibration(_Strict):
    """What the emulator's realistic figures are held to (tests/emulator/test_emu_calibration.py)."""

    about: str = Field(alias="_about")
    ttft_p99_over_p50: RatioTarget
    ttft_p95_over_p50: RatioTarget


class Vertex(_Strict):
    """Where Vertex AI differs from the Developer API (models.json's `vertex`)."""

    about: str = Field(alias="_about")
    sources: list[str]
    regional_price_multiplier: float
    regional_premium_models: tuple[str, ...]
    global_only_models: tuple[str, ...]
    standard_paygo_tpm: dict[str, int]  # input tokens per minute per model, by family: pro, flash, flash-lite

    def price_multiplier(self, model: str, location: str) -> float:
        """What Vertex charges at `location` for `model`, as a multiple of the model's own prices."""
        if location == "global" or not _listed(self.regional_premium_models, model):
            return 1.0
        return self.regional_price_multiplier

    def serves_only_global(self, model: str) -> bool:
        return _listed(self.global_only_models, model)


def _listed(models: tuple[str, ...], model: str) -> bool:
    """Whether `model` is one of `models`, matched as `lookup` matches ids (prefix, version suffix)."""
    return lookup(dict.fromkeys(models, True), model) is not None


class Catalogue(_Strict):
    about: str = Field(alias="_about")
    as_of: date
    default_model: str
    sources: dict[str, Source]
    models: dict[str, ModelEntry]
    calibration: Calibration
    vertex: Vertex

    def get(self, model: str) -> ModelEntry | None:
        return lookup(self.models, model)

    def served_on(self, day: date) -> dict[str, ModelEntry]:
        """The models the API serves on `day`: every entry not retired."""
        return {name: entry for name, entry in self.models.items() if entry.status_on(day) != "retired"}


def _check(catalogue: Catalogue) -> Catalogue:
    """What the types cannot say: ids match their keys, sources and successors exist."""
    for key, entry in catalogue.models.items():
        where = f"{CATALOGUE_FILE}: models.{key}"
        if entry.id != key:
            raise CatalogueError(f"{where}: id {entry.id!r} differs from its key")
        missing = [s for s in entry.sources if s not in catalogue.sources]
        if missing:
            raise CatalogueError(f"{where}: unknown source(s) {missing}")
        if entry.successor and entry.successor not in catalogue.models:
            raise CatalogueError(f"{where}: successor {entry.successor!r} is not in the catalogue")
        thinking = entry.thinking
        if thinking.control == "level" and thinking.default_level not in thinking.levels:
            raise CatalogueError(f"{where}: default_level {thinking.default_level!r} not in its levels")
        accuracy = entry.emulator.get("moderation_accuracy", UNKNOWN_MODEL_MODERATION_ACCURACY)
        if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or not 0 <= accuracy <= 1:
            raise CatalogueError(f"{where}: emulator.moderation_accuracy must be a number from 0 to 1")
    for name, target in (
        ("ttft_p99_over_p50", catalogue.calibration.ttft_p99_over_p50),
        ("ttft_p95_over_p50", catalogue.calibration.ttft_p95_over_p50),
    ):
        missing = [s for s in target.sources if s not in catalogue.sources]
        if missing:
            raise CatalogueError(f"{CATALOGUE_FILE}: calibration.{name}: unknown source(s) {missing}")
    missing = [s for s in catalogue.vertex.sources if s not in catalogue.sources]
    unknown = [
        m
        for m in (*catalogue.vertex.regional_premium_models, *catalogue.vertex.global_only_models)
        if m not in catalogue.models
    ]
    if missing or unknown:
        raise CatalogueError(f"{CATALOGUE_FILE}: vertex: unknown source(s) {missing} or model(s) {unknown}")
    if catalogue.default_model not in catalogue.models:
        raise CatalogueError(f"{CATALOGUE_FILE}: default_model {catalogue.default_model!r} is not listed")
    return catalogue


@functools.cache
def catalogue() -> Catalogue:
    """The bundled catalogue, read and checked once per process."""
    text = resources.files("core").joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    try:
        return _check(Catalogue.model_validate_json(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogueError(f"{CATALOGUE_FILE}: {where}: {first['msg']}") from None


def default_model() -> str:
    return catalogue().default_model


def check_model_status(model: str, today: date) -> str | None:
    """None for a current model; a warning line for a deprecated one (with its shutdown date).

    Raises ModelStatusError for a retired model, naming its successor: the API answers every call
    to it with 404, so a run would measure nothing. A model the catalogue does not know is left to
    the server (a models.get check or the emulator's 404 names it)."""
    entry = catalogue().get(model)
    if entry is None:
        return None
    status = entry.status_on(today)
    successor = f": use {entry.successor} (--model {entry.successor})" if entry.successor else ""
    if status == "retired":
        when = f" on {entry.shutdown.isoformat()}" if entry.shutdown else ""
        raise ModelStatusError(f"--model {model} was shut down{when} and is no longer served{successor}")
    if status == "deprecated":
        when = f"shuts down on {entry.shutdown.isoformat()}" if entry.shutdown else "has no shutdown date yet"
        return f"--model {model} is deprecated and {when}{successor}"
    return None


def describe(day: date) -> str:
    """The catalogue as a table, each model's status on `day`: `python -m core.catalogue`."""
    models = catalogue()
    lines = [f"Gemini models known to the suite (catalogue as of {models.as_of}; status on {day}):"]
    for entry in models.models.values():
        status = entry.status_on(day)
        if entry.shutdown and status != "retired":
            status += f" until {entry.shutdown}"
        if entry.successor and status != "stable":
            status += f", use {entry.successor}"
        thinking = entry.thinking
        control = {
            "level": f"--thinking-level {'/'.join(thinking.levels)} (default {thinking.default_level})",
            "budget": f"--thinking-budget {thinking.budget_min}..{thinking.budget_max}",
            "none": "no thinking",
        }[thinking.control]
        prices = entry.prices_on(day)
        price = f"${prices.input:g} in / ${prices.output:g} out per 1M" if prices else "no price: --pricing"
        default = "  (default)" if entry.id == models.default_model else ""
        lines.append(f"  {entry.id:<24} {status:<45} {control:<48} {price}{default}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe(date.today()))
