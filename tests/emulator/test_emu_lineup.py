"""The emulator serves the catalogue's line-up for its day (`as_of`): retired models answer the real
404, models.list lists only served ones, each served model has its catalogue figures and quotas."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from emu_http import FLASH, LITE, MODEL, PINNED_AS_OF, call, call_json, text_request

from core.catalogue import catalogue
from emulator.launcher import EmulatorProcess
from emulator.profiles import ConfigError, load_profile

RETIRED = "gemini-2.0-flash"  # shut down on 2026-06-01
GONE = (
    f"This model models/{RETIRED} is no longer available. Please update your code to use a newer model "
    "for the latest features and improvements."
)


def listed(url: str) -> set[str]:
    status, body = call_json(url, "/v1beta/models?pageSize=1000")
    assert status == 200 and "nextPageToken" not in body
    return {model["name"].removeprefix("models/") for model in body["models"]}


def test_a_retired_model_is_404_no_longer_available(emulator: EmulatorProcess) -> None:
    for path in (":generateContent", ":streamGenerateContent?alt=sse", ":countTokens"):
        status, reply = call_json(emulator.url, f"/v1beta/models/{RETIRED}{path}", text_request("x"))
        assert status == 404, path
        assert reply == {"error": {"code": 404, "message": GONE, "status": "NOT_FOUND"}}
    status, reply = call_json(emulator.url, f"/v1/models/{RETIRED}")
    assert status == 404 and reply["error"]["message"] == GONE
    # A name the catalogue never had keeps the usual not-found text.
    status, reply = call_json(emulator.url, "/v1beta/models/gemini-0-nope:generateContent", text_request("x"))
    assert status == 404 and reply["error"]["message"].startswith("models/gemini-0-nope is not found")


def test_models_list_is_the_served_line_up(emulator: EmulatorProcess) -> None:
    today_serves = set(catalogue().served_on(load_profile().as_of))
    names = listed(emulator.url)
    assert names == today_serves and MODEL in names
    assert RETIRED not in names and "gemini-3-pro-preview" not in names


def test_as_of_decides_when_a_deprecated_model_is_retired(start_emulator: Any) -> None:
    before = start_emulator({"as_of": PINNED_AS_OF})
    after = start_emulator({"as_of": "2026-12-01"})  # gemini-2.5-flash's shutdown day
    assert "gemini-2.5-flash" in listed(before.url) and "gemini-2.5-flash" not in listed(after.url)
    status, _ = call_json(before.url, "/v1beta/models/gemini-2.5-flash:generateContent", text_request("x"))
    assert status == 200
    status, reply = call_json(after.url, "/v1beta/models/gemini-2.5-flash:generateContent", text_request("x"))
    assert status == 404 and "models/gemini-2.5-flash is no longer available" in reply["error"]["message"]
    assert call_json(after.url, FLASH + ":generateContent", text_request("x"))[0] == 200


def test_flash_and_flash_lite_answer_as_themselves(emulator: EmulatorProcess) -> None:
    body = text_request("one body, two models")
    for model in (MODEL, "gemini-3.5-flash-lite", LITE, MODEL):
        status, reply = call_json(emulator.url, f"/v1beta/models/{model}:generateContent", body)
        assert status == 200 and reply["modelVersion"] == model


def test_served_models_have_their_catalogue_figures() -> None:
    profile = load_profile("realistic", {"as_of": PINNED_AS_OF})
    for name, entry in catalogue().served_on(profile.as_of).items():
        model = profile.models[name]
        assert (model.display_name, model.input_token_limit, model.output_token_limit) == (
            entry.display_name,
            entry.input_token_limit,
            entry.output_token_limit,
        )
        assert model.thinking_rule == entry.thinking and model.image_rule == entry.images
        assert model.ttft_median_ms == entry.emulator["ttft_median_ms"]
        assert model.output_tokens_per_s == entry.emulator["output_tokens_per_s"]
    assert profile.models["gemini-2.5-pro"].capacity == 500, "an optional figure over the default"


def test_quota_tiers_come_from_the_catalogue() -> None:
    profile = load_profile("free-tier", {"models": {"my-model": {}}})
    entries = catalogue().models
    assert profile.quota_for(LITE) == entries[LITE].quotas["free"]
    assert profile.quota_for(MODEL) == entries[MODEL].quotas["free"]
    # A model no tier lists (a user's own) gets the default model's figures.
    assert profile.quota_for("my-model") == entries[catalogue().default_model].quotas["free"]
    assert load_profile("realistic").quota_for("my-model") == (100_000, 100_000_000)  # paid-high
    assert load_profile("fast").quota_for(MODEL) == (None, None)  # unlimited


def test_a_users_own_model_gets_default_rules(start_emulator: Any) -> None:
    emu = start_emulator({"models": {"my-model": {"thinking": True, "thoughts_tokens_median": 50}}})
    status, resource = call_json(emu.url, "/v1beta/models/my-model")
    assert status == 200 and resource["displayName"] == "my-model" and resource["thinking"] is True
    budget = text_request("x", generationConfig={"thinkingConfig": {"thinkingBudget": 10}})
    status, reply = call_json(emu.url, "/v1beta/models/my-model:generateContent", budget)
    assert status == 200 and 0 < reply["usageMetadata"]["thoughtsTokenCount"] <= 10
    level = text_request("x", generationConfig={"thinkingConfig": {"thinkingLevel": "LOW"}})
    status, reply = call_json(emu.url, "/v1beta/models/my-model:generateContent", level)
    assert status == 400 and reply["error"]["message"] == "Thinking level is not supported for this model."
    plain = load_profile("realistic", {"models": {"plain": {}}})
    assert plain.models["plain"].image_rule.rule == "flat" and plain.models["plain"].image_rule.tokens == 258
    status, _, _ = call(emu.url, f"/v1beta/models/{RETIRED}:generateContent", text_request("x"))
    assert status == 404


def test_a_config_can_serve_a_retired_model_again() -> None:
    profile = load_profile("realistic", {"models": {RETIRED: {"capacity": 3}}})
    revived = profile.models[RETIRED]
    assert revived.capacity == 3 and revived.image_rule == catalogue().models[RETIRED].images
    assert not profile.is_retired(RETIRED) and load_profile().is_retired(RETIRED)


@pytest.mark.parametrize(
    "value", ["2026-1-1", "01/12/2026", "2026-02-30", "20261201", 20261201, None, ["2026"]]
)
def test_a_bad_as_of_is_one_config_error(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("realistic", {"as_of": value})
    message = str(caught.value)
    assert message == f"emulator config config: as_of must be a date as YYYY-MM-DD, got {value!r}"
    assert "\n" not in message


def test_as_of_defaults_to_today_and_is_shown_in_the_config(emulator: EmulatorProcess) -> None:
    assert load_profile().as_of == datetime.date.today()
    status, config = call_json(emulator.url, "/emulator/config")
    assert status == 200 and config["as_of"] == datetime.date.today().isoformat()
    assert config["models"][MODEL]["thinking_rule"]["control"] == "level"
