"""The budget fails closed (issue 14): an unpriced model is refused off the bundled emulator; cached
prompt tokens are priced at the cached-input price, or as full input when the table has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.options import OptionError
from users.pricing import PriceTable, PricingError


def write_table(tmp_path: Path, models: dict[str, dict[str, float]]) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2030-01-01", "models": models}))
    return path


def test_unknown_model_is_refused_strictly_with_the_fix_in_one_line() -> None:
    prices = PriceTable.load()
    with pytest.raises(PricingError) as caught:
        prices.require_price("models/some-unpriced-model")
    message = str(caught.value)
    assert isinstance(caught.value, OptionError)  # start-up turns it into one line and exit 2
    assert "\n" not in message
    assert "'some-unpriced-model'" in message and "--pricing FILE" in message
    shape = json.loads(message[message.index("{") :])
    assert set(shape["models"]["some-unpriced-model"]) >= {"input", "output", "cached_input"}


def test_known_and_versioned_models_pass_the_strict_check() -> None:
    prices = PriceTable.load()
    prices.require_price("gemini-2.5-flash")
    prices.require_price("models/gemini-2.5-flash-001")


def test_a_pricing_file_makes_an_unlisted_model_acceptable(tmp_path: Path) -> None:
    prices = PriceTable.load(write_table(tmp_path, {"some-unpriced-model": {"input": 1.0, "output": 4.0}}))
    prices.require_price("some-unpriced-model")
    assert prices.cost("some-unpriced-model", 1_000_000, 0, 1_000_000).total == pytest.approx(5.0)
    with pytest.raises(PricingError, match=r"gemini-2\.5-flash.*prices\.json"):
        prices.require_price("gemini-2.5-flash")  # the file replaces the built-in table


def test_unknown_model_is_lenient_in_cost_zero_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    prices = PriceTable.load()
    assert prices.cost("some-unpriced-model", 1000, 1000, 1000, cached_tokens=500).total == 0.0
    assert prices.cost("some-unpriced-model", 1000, 1000, 1000).total == 0.0
    assert sum("some-unpriced-model" in r.message for r in caplog.records) == 1


def test_cached_tokens_use_the_cached_input_price(tmp_path: Path) -> None:
    table = {"m": {"input": 1.0, "output": 10.0, "cached_input": 0.25}}
    prices = PriceTable.load(write_table(tmp_path, table))
    # 1M prompt tokens of which 400k cached: 600k x 1.0 + 400k x 0.25 per 1M; thinking bills as output.
    assert prices.cost("m", 1_000_000, 0, 0, cached_tokens=400_000).total == pytest.approx(0.7)
    assert prices.cost("m", 0, 100_000, 100_000).total == pytest.approx(2.0)
    # More cached than prompt (a server quirk) never bills below zero input.
    assert prices.cost("m", 100, 0, 0, cached_tokens=1000).total == pytest.approx(100 * 0.25 / 1e6)


def test_cached_tokens_without_a_cached_price_bill_as_full_input(tmp_path: Path) -> None:
    prices = PriceTable.load(write_table(tmp_path, {"m": {"input": 1.0, "output": 10.0}}))
    assert prices.cost("m", 1_000_000, 0, 0, cached_tokens=400_000).total == pytest.approx(1.0)
    builtin = PriceTable.load()
    assert builtin.cost("gemini-2.5-flash", 1_000_000, 0, 0, cached_tokens=1_000_000).total == pytest.approx(
        0.30
    )


def test_long_context_cached_tokens(tmp_path: Path) -> None:
    table = {
        "p": {
            "input": 1.0, "output": 10.0, "long_context_threshold": 100, "input_long": 2.0,
            "output_long": 15.0, "cached_input": 0.25, "cached_input_long": 0.5,
        },
        "q": {"input": 1.0, "output": 10.0, "long_context_threshold": 100, "input_long": 2.0, "cached_input": 0.25},
    }  # fmt: skip
    prices = PriceTable.load(write_table(tmp_path, table))
    assert prices.cost("p", 1_000_000, 0, 0, cached_tokens=1_000_000).total == pytest.approx(0.5)
    # No long-context cached price: cached tokens above the threshold bill at the long input price.
    assert prices.cost("q", 1_000_000, 0, 0, cached_tokens=1_000_000).total == pytest.approx(2.0)
    assert prices.cost("q", 100, 0, 0, cached_tokens=100).total == pytest.approx(100 * 0.25 / 1e6)


@pytest.mark.parametrize("value", ['"0.1"', "-1", "true"])
def test_a_bad_cached_price_fails_at_load(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"models": {"m": {"input": 1, "output": 1, "cached_input": ' + value + "}}}")
    with pytest.raises(PricingError, match=r"m\.cached_input must be a number"):
        PriceTable.load(path)
