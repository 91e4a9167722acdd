"""Cost of one call from the server's token counts and a dated price table shipped as data."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from core.options import OptionError

logger = logging.getLogger(__name__)


class PricingError(OptionError):
    """A --pricing file that cannot be used; the message names the file and what is wrong in it."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: float
    output: float
    long_context_threshold: int | None = None
    input_long: float | None = None
    output_long: float | None = None


def _model_price(source: str, model: str, fields: dict[str, object]) -> ModelPrice:
    """Every price a finite number >= 0, so a bad file fails at start-up and never mid-run."""
    values: dict[str, float | int | None] = {}
    for name in ModelPrice.__slots__:
        raw = fields.get(name)
        if raw is None and name not in ("input", "output"):
            values[name] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
            raise PricingError(f"pricing file {source}: {model}.{name} must be a number >= 0, got {raw!r}")
        values[name] = int(raw) if name == "long_context_threshold" else float(raw)
    return ModelPrice(**values)  # type: ignore[arg-type]


class PriceTable:
    def __init__(self, models: dict[str, ModelPrice], as_of: str) -> None:
        self.models = models
        self.as_of = as_of
        self._warned: set[str] = set()

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        if path is None:
            text = resources.files("users").joinpath("pricing.json").read_text()
            source = "built-in pricing.json"
        else:
            source = str(path)
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise PricingError(f"cannot read pricing file {source}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            models = {name: _model_price(source, name, price) for name, price in data["models"].items()}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise PricingError(
                f"pricing file {source} is not valid: expected {{'models': {{name: {{'input': USD, 'output': USD}}}}}} ({exc})"
            ) from None
        return cls(models, str(data.get("as_of", "unknown")))

    def price_for(self, model: str) -> ModelPrice | None:
        name = model.removeprefix("models/")
        if name in self.models:
            return self.models[name]
        # Versioned names (gemini-2.5-flash-001, -preview-...) price like their base model.
        for known in sorted(self.models, key=len, reverse=True):
            if name.startswith(known + "-"):
                return self.models[known]
        return None

    def cost_usd(
        self, model: str, prompt_tokens: int | None, output_tokens: int | None, thoughts: int | None
    ) -> float:
        price = self.price_for(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                logger.warning("no price known for model %r: its calls are costed at 0 USD", model)
            return 0.0
        prompt = prompt_tokens or 0
        output = (output_tokens or 0) + (thoughts or 0)
        rate_in, rate_out = price.input, price.output
        if price.long_context_threshold and prompt > price.long_context_threshold:
            rate_in = price.input_long or rate_in
            rate_out = price.output_long or rate_out
        return (prompt * rate_in + output * rate_out) / 1_000_000
