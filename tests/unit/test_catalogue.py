"""The model catalogue (issue 14): dated status, thinking options per model, automatic output caps
with room for thinking, and prices that change on their date."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

import pytest

from core.catalogue import ModelStatusError, catalogue, check_model_status, default_model, describe
from core.options import OptionError
from users.pricing import PriceTable
from users.settings import ANSWER_TOKENS, GeminiSettings

BEFORE_2_5_SHUTDOWN = date(2026, 11, 29)
AFTER_2_5_SHUTDOWN = date(2026, 12, 1)


def settings(**values: Any) -> GeminiSettings:
    options = {
        "model": default_model(),
        "transport": "genai",
        "max_output_tokens": 0,
        "temperature": 0.0,
        "timeout": 60.0,
        "retries": 0,
        "thinking_budget": -1,
        "thinking_level": "",
        **values,
    }
    return GeminiSettings.from_options(argparse.Namespace(**options), emulator=True)


def test_every_entry_cites_known_sources_and_the_default_is_a_current_stable_model() -> None:
    models = catalogue()
    assert models.default_model == "gemini-3.8-flash"
    default = models.models[models.default_model]
    assert default.status_on(models.as_of) == "stable" and default.prices is not None
    for entry in models.models.values():
        assert entry.sources and all(source in models.sources for source in entry.sources)
        if entry.successor:
            assert models.models[entry.successor].status_on(models.as_of) != "retired", entry.id


def test_status_follows_the_dates_a_shutdown_turns_deprecated_into_retired() -> None:
    flash_2_5 = catalogue().models["gemini-2.5-flash"]
    assert flash_2_5.status_on(BEFORE_2_5_SHUTDOWN) == "deprecated"
    assert flash_2_5.status_on(AFTER_2_5_SHUTDOWN) == "retired"
    notice = check_model_status("gemini-2.5-flash", BEFORE_2_5_SHUTDOWN)
    assert notice is not None and "2026-12-01" in notice and "gemini-3.8-flash" in notice
    with pytest.raises(ModelStatusError, match=r"shut down on 2026-12-01.*--model gemini-3\.8-flash"):
        check_model_status("gemini-2.5-flash", AFTER_2_5_SHUTDOWN)
    assert check_model_status("gemini-3.8-flash", BEFORE_2_5_SHUTDOWN) is None
    assert check_model_status("my-own-model", BEFORE_2_5_SHUTDOWN) is None  # left to the server
    assert "gemini-2.0-flash" not in catalogue().served_on(BEFORE_2_5_SHUTDOWN)


def test_a_retired_model_is_refused_at_start_up_with_its_successor() -> None:
    with pytest.raises(OptionError) as caught:
        settings(model="gemini-2.0-flash")
    assert "2026-06-01" in str(caught.value) and "--model gemini-3.5-flash-lite" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"thinking_budget": 512}, "takes --thinking-level (LOW, MEDIUM, HIGH), not a thinking budget"),
        ({"thinking_level": "minimal"}, "MINIMAL is not accepted by gemini-3.8-flash"),
        ({"model": "gemini-2.5-flash-lite", "thinking_level": "LOW"}, "give --thinking-budget instead"),
        ({"model": "gemini-2.5-flash-lite", "thinking_budget": 100}, "out of range"),
        ({"model": "gemini-2.5-pro", "thinking_budget": 0}, "cannot turn thinking off"),
        ({"thinking_level": "LOW", "thinking_budget": 512, "model": "x-model"}, "both given"),
    ],
)
def test_the_wrong_thinking_option_for_the_model_is_one_clear_error(values: dict, fragment: str) -> None:
    with pytest.raises(OptionError) as caught:
        settings(**values)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_the_right_thinking_option_is_kept_and_sent() -> None:
    level = settings(thinking_level="low")
    assert level.thinking_level == "LOW" and level.thinking_budget is None
    assert level.call_fields()["thinking_level"] == "LOW"
    budget = settings(model="gemini-2.5-flash-lite", thinking_budget=1024)
    assert budget.thinking_budget == 1024 and budget.thinking_level is None


def test_the_automatic_output_cap_leaves_room_for_the_models_thinking() -> None:
    thinking = catalogue().models[default_model()].thinking
    default = settings()
    assert default.max_output_tokens is None
    assert default.output_cap() == ANSWER_TOKENS + thinking.headroom[thinking.default_level]
    assert settings(thinking_level="HIGH").output_cap() == ANSWER_TOKENS + thinking.headroom["HIGH"]
    assert settings(thinking_level="LOW").output_cap(64) == 64 + thinking.headroom["LOW"]
    # A budget model: its budget is the room; off (the Flash-Lite default) leaves none.
    assert settings(model="gemini-2.5-flash-lite").output_cap() == ANSWER_TOKENS
    assert settings(model="gemini-2.5-flash-lite", thinking_budget=2048).output_cap() == ANSWER_TOKENS + 2048
    # Given: the cap of fixed-length answers, and the ceiling of a requested answer length.
    explicit = settings(max_output_tokens=300)
    assert explicit.output_cap() == 300 and explicit.output_cap(64) == 300
    assert settings(model="gemini-2.5-flash-lite", max_output_tokens=300).output_cap(64) == 64


def test_prices_change_on_their_date_and_the_thinking_part_is_costed_apart() -> None:
    half_price = PriceTable.load(day=date(2026, 12, 31))
    full_price = PriceTable.load(day=date(2027, 1, 1))
    assert half_price.cost("gemini-3.8-flash", 1_000_000, 0, 0).total == pytest.approx(0.75)
    assert full_price.cost("gemini-3.8-flash", 1_000_000, 0, 0).total == pytest.approx(1.50)
    # No cached price announced for 2027: cached tokens are billed as full input, never less.
    assert full_price.cost(
        "gemini-3.8-flash", 1_000_000, 0, 0, cached_tokens=1_000_000
    ).total == pytest.approx(1.50)
    total, thinking = half_price.cost("gemini-3.8-flash", 0, 200_000, 800_000)
    assert total == pytest.approx(3.75) and thinking == pytest.approx(3.0)
    with pytest.raises(OptionError, match="no price known"):
        half_price.require_price("gemini-3-pro-preview")  # retired: no price in the catalogue


def test_the_catalogue_prints_every_model_with_its_status() -> None:
    text = describe(BEFORE_2_5_SHUTDOWN)
    assert all(name in text for name in catalogue().models)
    assert "retired, use gemini-3.1-pro-preview" in text and "(default)" in text
