"""Cost of one call from the server's token counts and a dated price table shipped as data."""

from __future__ import annotations

import json
import logging
import math
from datetime import date
from pathlib import Path
from typing import NamedTuple

from core.catalogue import Prices, catalogue, lookup
from core.options import OptionError
from core.textfile import UnreadableText, read_text_file

logger = logging.getLogger(__name__)


class PricingError(OptionError):
    """A --pricing file that cannot be used; the message names the file and what is wrong in it."""


# One price shape for the catalogue and a --pricing file.
ModelPrice = Prices
BUILT_IN = "the model catalogue (core/models.json)"


def _model_price(source: str, model: str, fields: dict[str, object]) -> ModelPrice:
    """Every price a finite number >= 0, so a bad file fails at start-up and never mid-run."""
    values: dict[str, float | int | None] = {}
    for name in ModelPrice.model_fields:
        raw = fields.get(name)
        if raw is None and name not in ("input", "output"):
            values[name] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
            raise PricingError(f"pricing file {source}: {model}.{name} must be a number >= 0, got {raw!r}")
        values[name] = int(raw) if name == "long_context_threshold" else float(raw)
    return ModelPrice(**values)  # type: ignore[arg-type]


def _scaled(price: ModelPrice | None, factor: float) -> ModelPrice | None:
    if price is None or factor == 1.0:
        return price
    rates = {
        name: value * factor
        for name, value in price.model_dump().items()
        if name != "long_context_threshold" and value is not None
    }
    return price.model_copy(update=rates)


def _read_price_file(path: Path) -> str:
    """The file's text; a missing, unreadable, special or non-UTF-8 file is a PricingError."""
    try:
        return read_text_file(path)
    except UnreadableText as exc:
        raise PricingError(f"pricing file {path}: {exc.reason}: give --pricing a JSON file") from None


def pricing_example(model: str) -> str:
    """The --pricing JSON shape, with `model` as its one entry (prices in USD per 1M tokens)."""
    entry = {"input": "USD", "output": "USD", "cached_input": "USD (optional)"}
    return json.dumps({"models": {model: entry}})


class Cost(NamedTuple):
    total: float  # USD
    thinking: float  # the part of total paid for thinking tokens


class PriceTable:
    def __init__(self, models: dict[str, ModelPrice], as_of: str, source: str = BUILT_IN) -> None:
        self.models = models
        self.as_of = as_of
        self.source = source
        self._warned: set[str] = set()

    @classmethod
    def load(
        cls, path: str | Path | None = None, day: date | None = None, *, vertex_location: str | None = None
    ) -> PriceTable:
        """The catalogue's prices in force on `day` (default today), or a --pricing file's instead;
        anything unusable in the file is a PricingError. `vertex_location`: Vertex AI's prices at
        that location (a regional premium on some models); a --pricing file is taken as given."""
        if path is None:
            models = catalogue()
            on = day or date.today()
            prices = {name: entry.prices_on(on) for name, entry in models.models.items()}
            if vertex_location is not None:
                prices = {
                    name: _scaled(price, models.vertex.price_multiplier(name, vertex_location))
                    for name, price in prices.items()
                }
            return cls({name: p for name, p in prices.items() if p is not None}, models.as_of.isoformat())
        source = str(path)
        text = _read_price_file(Path(path))
        shape = "expected {'models': {name: {'input': USD, 'output': USD, 'cached_input': USD (optional)}}}"
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and Python's limit on digits in an integer.
            # Python's digit-limit message ends with advice for programmers: cut off.
            reason = str(exc).partition("; use ")[0]
            raise PricingError(f"pricing file {source} is not valid JSON ({reason}); {shape}") from None
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise PricingError(f"pricing file {source} is not valid: {shape}")
        models = {}
        for name, price in data["models"].items():
            if not isinstance(price, dict):
                raise PricingError(
                    f"pricing file {source}: {name} must be an object like {{'input': USD, 'output': USD}}, "
                    f"got {type(price).__name__}"
                )
            models[name] = _model_price(source, name, price)
        return cls(models, str(data.get("as_of", "unknown")), source)

    def price_for(self, model: str) -> ModelPrice | None:
        return lookup(self.models, model)

    def require_price(self, model: str) -> None:
        """Raises PricingError when `model` has no price: its spend could not count toward --max-cost.

        For any host but the bundled emulator, where an unpriced call costs real money the budget
        would not see (the budget fails closed)."""
        if self.price_for(model) is not None:
            return
        name = model.removeprefix("models/")
        raise PricingError(
            f"no price known for model {name!r} in {self.source} (as of {self.as_of}): its spend could not "
            f"count toward --max-cost, so the run does not start against a host other than the bundled emulator. Give --pricing FILE "
            f"with its prices in USD per 1M tokens, e.g. {pricing_example(name)}"
        )

    def cost(
        self,
        model: str,
        prompt_tokens: int | None,
        output_tokens: int | None,
        thoughts: int | None,
        cached_tokens: int | None = None,
    ) -> Cost:
        """USD of one call, and the part of it paid for thinking. Thinking tokens are billed as
        output; cached prompt tokens (part of promptTokenCount) at the cached-input price when the
        table has one, else as full input."""
        price = self.price_for(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                logger.warning("no price known for model %r: its calls are costed at 0 USD", model)
            return Cost(0.0, 0.0)
        prompt = prompt_tokens or 0
        cached = min(max(cached_tokens or 0, 0), prompt)
        thinking = thoughts or 0
        output = (output_tokens or 0) + thinking
        rate_in, rate_cached, rate_out = _rates(price, prompt)
        if rate_cached is None:
            rate_cached = rate_in
        total = ((prompt - cached) * rate_in + cached * rate_cached + output * rate_out) / 1_000_000
        return Cost(total, thinking * rate_out / 1_000_000)

    def cached_saving(self, model: str, prompt_tokens: int | None, cached_tokens: int | None) -> float:
        """USD that cached prompt tokens saved on one call: the same call at the full input price
        costs this much more (0 without a price, a cached price or cached tokens)."""
        price = self.price_for(model)
        prompt = prompt_tokens or 0
        cached = min(max(cached_tokens or 0, 0), prompt)
        if price is None or not cached:
            return 0.0
        rate_in, rate_cached, _ = _rates(price, prompt)
        return 0.0 if rate_cached is None else cached * max(rate_in - rate_cached, 0.0) / 1_000_000


def _rates(price: ModelPrice, prompt_tokens: int) -> tuple[float, float | None, float]:
    """USD per 1M tokens of (input, cached input or None when the table has none, output) for a
    call with this many prompt tokens: the long-context rates past the model's threshold."""
    if price.long_context_threshold and prompt_tokens > price.long_context_threshold:
        return (
            price.input_long or price.input,
            price.cached_input_long,
            price.output_long or price.output,
        )
    return price.input, price.cached_input, price.output
