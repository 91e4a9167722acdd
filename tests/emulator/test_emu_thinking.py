"""Thinking per model, by the catalogue's rule: levels for Gemini 3 models, budgets for 2.5 ones, the
400s the real API sends for the wrong setting, and thinking and answer sharing maxOutputTokens (an
empty answer with MAX_TOKENS when thinking uses it all), through google-genai and in process."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from typing import Any

import pytest
from emu_http import LITE, MODEL, PINNED_AS_OF, text_request
from google import genai
from google.genai import errors, types

from core.catalogue import catalogue
from emulator import content, protocol
from emulator.errors import ApiError
from emulator.generation import Generator
from emulator.latency import Clock, plan_for
from emulator.launcher import EmulatorProcess
from emulator.profiles import ConfigError, load_profile
from emulator.stats import Stats

PINNED = {"as_of": PINNED_AS_OF}


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=emulator.url))


def answer(model: str, text: str, config: dict[str, Any] | None = None, **generation: Any) -> content.Answer:
    """The emulator's answer to one request, in process (seed 5)."""
    body = protocol.parse_generate_request(
        json.dumps(text_request(text, generationConfig=generation)).encode()
    )
    profile = load_profile("realistic", {**PINNED, **(config or {})}).models[model]
    return content.answer_for(body, model, profile, 5)


def refusal(model: str, **thinking: Any) -> str:
    with pytest.raises(ApiError) as caught:
        answer(model, "x", thinkingConfig=thinking)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    return caught.value.message


# ---- through google-genai ---------------------------------------------------------------------


@pytest.mark.parametrize("level", [types.ThinkingLevel.HIGH, None], ids=["high", "default-level"])
def test_thinking_that_uses_max_output_tokens_leaves_an_empty_answer(
    client: genai.Client, level: types.ThinkingLevel | None
) -> None:
    thinking = types.ThinkingConfig(thinking_level=level) if level else None
    config = types.GenerateContentConfig(max_output_tokens=50, thinking_config=thinking)
    reply = client.models.generate_content(model=MODEL, contents="Think hard, then answer.", config=config)
    usage = reply.usage_metadata
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert usage.thoughts_token_count + (usage.candidates_token_count or 0) <= 50
    # The default model's levels all think far more than 50 tokens: nothing is left for the answer.
    assert usage.thoughts_token_count == 50 and not usage.candidates_token_count
    assert reply.text is None and reply.candidates[0].content.role == "model"
    assert usage.total_token_count == usage.prompt_token_count + 50
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents="Think hard, then.", config=config)
    )
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert last.usage_metadata.thoughts_token_count == 50 and not last.usage_metadata.candidates_token_count
    assert all(chunk.text is None for chunk in chunks)


def test_an_answer_gets_what_thinking_left(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        max_output_tokens=600, thinking_config=types.ThinkingConfig(thinking_level="low")
    )
    reply = client.models.generate_content(model=MODEL, contents="A long answer, please.", config=config)
    usage = reply.usage_metadata
    assert 0 < usage.thoughts_token_count < 600 and usage.candidates_token_count > 0
    assert usage.thoughts_token_count + usage.candidates_token_count <= 600
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )


def test_a_budget_to_a_level_model_and_a_level_to_a_budget_model_are_400(client: genai.Client) -> None:
    budget = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=1024))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x", config=budget)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "Thinking budget is not supported for this model" in caught.value.message
    level = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level="LOW"))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=LITE, contents="x", config=level)
    assert (
        caught.value.code == 400 and caught.value.message == "Thinking level is not supported for this model."
    )
    both = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_level="LOW", thinking_budget=1024)
    )
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="x", config=both)
    assert caught.value.message == "You can only set only one of thinking budget and thinking level."


# ---- the rules, in process --------------------------------------------------------------------


def test_level_models_take_their_own_levels_in_any_case() -> None:
    rule = catalogue().models[MODEL].thinking
    assert rule.control == "level" and not rule.accepts_budget
    for level in rule.levels:
        assert answer(MODEL, "x", thinkingConfig={"thinkingLevel": level.lower()}).thoughts_tokens >= 0
    assert "MINIMAL" not in rule.levels
    assert "Thinking level MINIMAL is not supported" in refusal(MODEL, thinkingLevel="MINIMAL")
    assert "is not supported" in refusal(MODEL, thinkingLevel="EXTREME")
    # A level model that still takes a budget (the first Gemini 3 models) caps thinking with it.
    older = "gemini-3.1-pro-preview"
    assert catalogue().models[older].thinking.accepts_budget
    assert 0 < answer(older, "x", thinkingConfig={"thinkingBudget": 64}).thoughts_tokens <= 64


def test_thoughts_follow_the_level_median() -> None:
    medians = catalogue().models[MODEL].emulator["thoughts_tokens_median"]
    counts = {
        level: statistics.median(
            answer(MODEL, f"prompt {i}", thinkingConfig={"thinkingLevel": level}).thoughts_tokens
            for i in range(60)
        )
        for level in ("LOW", "HIGH")
    }
    for level, count in counts.items():
        assert medians[level] / 1.5 < count < medians[level] * 1.5, counts
    default = statistics.median(answer(MODEL, f"prompt {i}").thoughts_tokens for i in range(60))
    level = catalogue().models[MODEL].thinking.default_level
    assert medians[level] / 1.5 < default < medians[level] * 1.5


def test_budget_models_check_the_range_and_cap_by_the_budget() -> None:
    lite = catalogue().models[LITE].thinking
    assert (lite.control, lite.budget_min) == ("budget", 512)
    assert refusal(LITE, thinkingBudget=100) == "The thinking budget (100) is invalid."
    assert (
        refusal(LITE, thinkingBudget=lite.budget_max + 1)
        == f"The thinking budget ({lite.budget_max + 1}) is invalid."
    )
    assert refusal(LITE, thinkingBudget=-2) == "The thinking budget (-2) is invalid."
    # 2.5 Flash-Lite thinks only when given a budget, then around its "on" figure, capped by it.
    assert answer(LITE, "x").thoughts_tokens == 0
    assert answer(LITE, "x", thinkingConfig={"thinkingBudget": -1}).thoughts_tokens == 0
    assert 0 < answer(LITE, "x", thinkingConfig={"thinkingBudget": 512}).thoughts_tokens <= 512
    assert answer(LITE, "x", thinkingConfig={"thinkingBudget": 0}).thoughts_tokens == 0
    # 2.5 Pro cannot turn thinking off; 2.5 Flash thinks by default (PINNED_AS_OF serves both).
    assert (
        refusal("gemini-2.5-pro", thinkingBudget=0)
        == "Budget 0 is invalid. This model only works in thinking mode."
    )
    assert answer("gemini-2.5-flash", "x").thoughts_tokens > 0
    assert answer("gemini-2.5-flash", "x", thinkingConfig={"thinkingBudget": 0}).thoughts_tokens == 0
    assert "thinking_budget" in refusal(LITE, thinkingBudget="lots")


def test_the_answer_is_cut_to_what_thinking_left() -> None:
    free = answer(MODEL, "a prompt", thinkingConfig={"thinkingLevel": "LOW"})
    limit = free.thoughts_tokens + 3
    assert free.output_tokens > 3, "the uncut answer is longer than what is left"
    cut = answer(MODEL, "a prompt", thinkingConfig={"thinkingLevel": "LOW"}, maxOutputTokens=limit)
    assert (cut.thoughts_tokens, cut.output_tokens, cut.finish_reason) == (
        free.thoughts_tokens,
        3,
        "MAX_TOKENS",
    )
    assert cut.pieces == free.pieces[:3]
    spent = answer(
        MODEL, "a prompt", thinkingConfig={"thinkingLevel": "LOW"}, maxOutputTokens=free.thoughts_tokens
    )
    assert (spent.thoughts_tokens, spent.pieces, spent.finish_reason) == (
        free.thoughts_tokens,
        [],
        "MAX_TOKENS",
    )


def test_an_empty_answer_streams_its_thinking_then_one_last_frame() -> None:
    gen = Generator(load_profile("fast"), Stats(), Clock(1.0), seed=3)
    profile = gen.profile.models[MODEL]
    config = {"maxOutputTokens": 20, "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"}}
    raw = json.dumps(text_request("think it over", generationConfig=config)).encode()

    async def collect() -> list[bytes]:
        return [chunk async for chunk in gen.stream(raw, "k", MODEL, profile, True)]

    frames = [json.loads(c.decode().removeprefix("data: ")) for c in asyncio.run(collect())]
    assert len(frames) == 2
    assert frames[0]["candidates"][0]["content"]["parts"][0]["thought"] is True
    last = frames[-1]["candidates"][0]
    assert last["finishReason"] == "MAX_TOKENS" and last["content"] == {"role": "model"}
    assert frames[-1]["usageMetadata"]["thoughtsTokenCount"] == 20
    assert "candidatesTokenCount" not in frames[-1]["usageMetadata"]
    # The plan of an empty answer: thinking time, then the end.
    slow = load_profile("smooth").models[MODEL]  # one decode rate: no per-answer spread, no slow path
    plan = plan_for(slow, random.Random(1), Clock(1.0), 0, 0, 900, 0.0)
    assert plan.chunk_delays_s == [] and plan.thinking_s == pytest.approx(900 / slow.output_tokens_per_s)
    assert plan.first_delay_s > plan.thinking_s


def test_thoughts_median_from_a_config_is_a_number_or_levels() -> None:
    every = load_profile("realistic", {"models": {MODEL: {"thoughts_tokens_median": 0}}})
    assert every.models[MODEL].thoughts_median("HIGH") == 0
    one = load_profile("realistic", {"model_defaults": {"thoughts_tokens_median": {"high": 7}}})
    medians = catalogue().models[MODEL].emulator["thoughts_tokens_median"]
    assert one.models[MODEL].thoughts_median("HIGH") == 7
    assert one.models[MODEL].thoughts_median("LOW") == medians["LOW"], "only the named level changes"
    quiet = {"models": {MODEL: {"thoughts_tokens_median": 0}}}
    assert answer(MODEL, "x", quiet, thinkingConfig={"thinkingLevel": "HIGH"}).thoughts_tokens == 0
    for bad in (-1, "many", {"HIGH": -3}, {"": 3}, [1], True):
        with pytest.raises(ConfigError) as caught:
            load_profile("realistic", {"models": {MODEL: {"thoughts_tokens_median": bad}}})
        assert "thoughts_tokens_median must be a number >= 0 or an object" in str(caught.value)
        assert "\n" not in str(caught.value)
    for rule in ("thinking_rule", "image_rule"):
        with pytest.raises(ConfigError, match="unknown field"):
            load_profile("realistic", {"models": {MODEL: {rule: {"control": "none"}}}})
