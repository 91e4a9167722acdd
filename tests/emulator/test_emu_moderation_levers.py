"""The emulator's moderation answers for issue 17's levers: a modelled accuracy per model whose wrong
answers are nested (a better model is wrong only where a weaker one is), a confidence that tracks
correctness, and one verdict per block of a batched prompt, through the real google-genai SDK too."""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import jsonschema
import pytest
from google import genai
from google.genai import types

from core.catalogue import UNKNOWN_MODEL_MODERATION_ACCURACY, CatalogueError, _check, catalogue
from emulator import moderation
from emulator.config_values import ConfigError
from emulator.content import answer_for
from emulator.latency import Clock, plan_for
from emulator.launcher import EmulatorProcess
from emulator.lineup import ModelProfile, catalogue_profile
from emulator.profiles import load_profile
from fixtures.moderation import Post, load_posts

LITE, FLASH, PRO = "gemini-3.5-flash-lite", "gemini-3.8-flash", "gemini-3.1-pro-preview"
CATEGORIES = ["none", "hate", "harassment", "sexual", "dangerous"]
VERDICT = {
    "type": "object",
    "properties": {
        "flagged": {"type": "boolean"},
        "category": {"type": "string", "enum": CATEGORIES},
        "confidence": {"type": "number"},
        "reason": {"type": "string"},
    },
    "required": ["flagged", "category", "confidence"],
}
VALIDATOR = jsonschema.Draft202012Validator(VERDICT)
OFF = [{"category": c, "threshold": "OFF"} for c in moderation.RATED_CATEGORIES]
# The suite's own setting: `:low` markers are answered, the others blocked.
MEDIUM = [{"category": c, "threshold": "BLOCK_MEDIUM_AND_ABOVE"} for c in moderation.RATED_CATEGORIES]
WORDS = ("match", "recipe", "council", "garden", "train", "concert", "exam", "bakery", "river", "code")


def batch_schema(count: int) -> dict[str, Any]:
    """The schema the suite sends for a batch of `count` posts."""
    item = {**VERDICT, "properties": {"id": {"type": "string"}, **VERDICT["properties"]}}
    item["required"] = ["id", *VERDICT["required"]]
    verdicts = {"type": "array", "minItems": count, "maxItems": count, "items": item}
    return {"type": "object", "properties": {"verdicts": verdicts}, "required": ["verdicts"]}


def request(text: str, schema: dict[str, Any], safety: list[dict[str, str]] = OFF) -> dict[str, Any]:
    return {
        "systemInstruction": {"parts": [{"text": "You are a content moderator. Answer with JSON."}]},
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
        "safetySettings": safety,
    }


def profile_of(model: str) -> ModelProfile:
    return catalogue_profile(catalogue().models[model])


@functools.cache
def verdict_of(text: str, model: str, seed: int | None = None) -> dict[str, Any]:
    """The emulator's whole answer path for one post (cached: several tests read the same)."""
    answer = answer_for(request(text, VERDICT), model, profile_of(model), seed)
    value = json.loads(answer.text)
    VALIDATOR.validate(value)
    return value


def is_right(text: str, value: dict[str, Any]) -> bool:
    return value["flagged"] is bool(moderation.find_markers(text))


def batch_text(posts: list[Post]) -> str:
    blocks = "\n".join(f'<post id="{p.id}">{p.text}</post>' for p in posts)
    return f"Judge each post on its own.\n{blocks}"


@pytest.fixture(scope="module")
def posts() -> list[Post]:
    return load_posts()


@pytest.fixture(scope="module")
def generated() -> list[str]:
    rng = random.Random(17)
    texts = [
        f"Post {i}: thoughts on the {rng.choice(WORDS)} and the {rng.choice(WORDS)}." for i in range(1000)
    ]
    return texts + [f"Post {i}: about the {rng.choice(WORDS)} [[unsafe:hate:low]]" for i in range(1000)]


def test_the_catalogue_gives_each_model_its_modelled_accuracy() -> None:
    accuracy = {model: profile_of(model).moderation_accuracy for model in (LITE, FLASH, PRO)}
    assert accuracy == {LITE: 0.9, FLASH: 0.96, PRO: 0.985}
    assert all("moderation_accuracy" in entry.emulator for entry in catalogue().models.values())
    assert "moderation_accuracy" in catalogue().about and "not published" in catalogue().about
    assert ModelProfile().moderation_accuracy == UNKNOWN_MODEL_MODERATION_ACCURACY  # a user's own model
    config = {"models": {FLASH: {"moderation_accuracy": 0.5}, "my-model": {"moderation_accuracy": 1}}}
    profile = load_profile("fast", config)
    assert (
        profile.models[FLASH].moderation_accuracy == 0.5
        and profile.models["my-model"].moderation_accuracy == 1
    )
    with pytest.raises(
        ConfigError, match=r"models\.gemini-3\.8-flash\.moderation_accuracy must be a share from 0 to 1"
    ):
        load_profile("fast", {"models": {FLASH: {"moderation_accuracy": 1.5}}})
    entry = catalogue().models[FLASH]
    broken = entry.model_copy(update={"emulator": {**entry.emulator, "moderation_accuracy": 96}})
    with pytest.raises(CatalogueError, match="moderation_accuracy must be a number from 0 to 1"):
        _check(catalogue().model_copy(update={"models": {**catalogue().models, FLASH: broken}}))


def test_wrong_answers_are_nested_across_models(posts: list[Post], generated: list[str]) -> None:
    texts = [p.text for p in posts] + generated
    wrong = {
        model: {t for t in texts if not is_right(t, verdict_of(t, model))} for model in (LITE, FLASH, PRO)
    }
    assert wrong[PRO] <= wrong[FLASH] <= wrong[LITE]
    assert wrong[PRO] and len(wrong[PRO]) < len(wrong[FLASH]) < len(wrong[LITE])
    for model in (LITE, FLASH, PRO):  # the wrong share is the model's modelled one
        share = len(wrong[model] & set(generated)) / len(generated)
        assert share == pytest.approx(1 - profile_of(model).moderation_accuracy, abs=0.015), model


def test_a_wrong_answer_flips_the_verdict_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "flagged": {"type": "boolean"},
            "is_safe": {"type": "boolean"},
            "verdict": {"type": "string", "enum": ["safe", "unsafe"]},
            "categories": {"type": "array", "items": {"type": "string", "enum": CATEGORIES}},
            "severity": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    lite = profile_of(LITE)
    # The first texts of each kind that Flash-Lite gets wrong.
    clean = next(t for i in range(999) if not moderation.judged(t := f"clean post {i}", [], 0.9).correct)
    marked = next(
        t for i in range(999) if not moderation.judged(t := f"post {i} [[unsafe:hate]]", ["x"], 0.9).correct
    )
    wrongly_flagged = json.loads(answer_for(request(clean, schema), LITE, lite, None).text)
    assert wrongly_flagged["flagged"] is True and wrongly_flagged["is_safe"] is False
    assert wrongly_flagged["verdict"] == "unsafe" and wrongly_flagged["severity"] > 0.5
    assert wrongly_flagged["categories"] and "none" not in wrongly_flagged["categories"]
    wrongly_safe = json.loads(answer_for(request(marked, schema), LITE, lite, None).text)
    assert wrongly_safe["flagged"] is False and wrongly_safe["is_safe"] is True
    assert wrongly_safe["verdict"] == "safe" and wrongly_safe["severity"] < 0.5
    assert wrongly_safe["categories"] == ["none"]
    # text/x.enum answers follow the same judgement.
    enum_request = request(clean, {})
    enum_request["generationConfig"] = {
        "responseMimeType": "text/x.enum",
        "responseSchema": {"type": "STRING", "enum": ["SAFE", "UNSAFE"]},
    }
    assert answer_for(enum_request, LITE, lite, None).text == "UNSAFE"


@pytest.mark.parametrize("model", [LITE, FLASH, PRO])
def test_confidence_tracks_correctness(model: str, posts: list[Post], generated: list[str]) -> None:
    for texts in ([p.text for p in posts], generated):
        right, wrong = [], []
        for text in texts:
            value = verdict_of(text, model)
            (right if is_right(text, value) else wrong).append(value["confidence"])
        assert all(0 <= c <= 1 for c in right + wrong)
        assert sum(c > 0.8 for c in right) >= 0.9 * len(right)
        assert sum(c < 0.7 for c in wrong) >= 0.9 * len(wrong)
    # Some right answers are unsure too: a confidence threshold escalates them (escalation costs).
    unsure = sum(c <= 0.8 for c in right) / len(right)
    assert 0.02 < unsure < 0.1, unsure


def test_answers_are_deterministic_and_depend_on_the_post_alone(posts: list[Post]) -> None:
    sample = posts[:60]
    first = [verdict_of(p.text, FLASH, seed=1) for p in sample]
    assert [verdict_of(p.text, FLASH, seed=1) for p in sample] == first
    # Another emulator seed or system instruction changes free text, never who is judged right.
    again = [verdict_of(p.text, FLASH, seed=2) for p in sample]
    assert [(v["flagged"], v["category"], v["confidence"]) for v in again] == [
        (v["flagged"], v["category"], v["confidence"]) for v in first
    ]
    assert moderation.difficulty("a  post\n") == moderation.difficulty("a post")


def test_a_batch_gets_one_verdict_per_block_judged_from_its_own_text(posts: list[Post]) -> None:
    benign = [p for p in posts if p.label == "benign"][:5]
    low = [p for p in posts if ":low]]" in p.text][:3]
    batch = [benign[0], low[0], benign[1], benign[2], low[1], benign[3], low[2], benign[4]]
    model = LITE
    answer = answer_for(request(batch_text(batch), batch_schema(8), MEDIUM), model, profile_of(model), None)
    value = json.loads(answer.text)
    jsonschema.validate(value, batch_schema(8))
    assert [v["id"] for v in value["verdicts"]] == [p.id for p in batch]
    for post, got in zip(batch, value["verdicts"], strict=True):
        alone = verdict_of(post.text, model)
        assert (got["flagged"], got["category"], got["confidence"]) == (
            alone["flagged"],
            alone["category"],
            alone["confidence"],
        ), post.id
    assert {v["flagged"] for v in value["verdicts"]} == {True, False}
    # A batch's answer is as long as its JSON: eight verdicts cost several times one.
    single = answer_for(request(batch[0].text, VERDICT, MEDIUM), model, profile_of(model), None)
    assert answer.output_tokens > 4 * single.output_tokens
    # More output is more decoding time (a steady profile: no draws in the way).
    steady = load_profile("smooth").models[model]
    steady.ttft_sigma = steady.output_rate_sigma = steady.output_jitter = 0.0
    clock = Clock(1.0)
    times = [
        plan_for(steady, random.Random(1), clock, 100, tokens, 0, 0.0).total_s
        for tokens in (single.output_tokens, answer.output_tokens)
    ]
    decode = (answer.output_tokens - single.output_tokens) / steady.output_tokens_per_s
    assert times[1] - times[0] == pytest.approx(decode)


def test_batch_edges_maxitems_ids_and_a_blocked_block(posts: list[Post]) -> None:
    lite = profile_of(LITE)
    text = "<item id='7'>one</item> <item lang='en' id='8'>two</item> <item id='9'>three</item>"
    schema = batch_schema(2)
    item = schema["properties"]["verdicts"]["items"]
    item["properties"] = {"post_id": {"type": "integer"}, **VERDICT["properties"]}
    item["required"] = ["post_id"]
    value = json.loads(answer_for(request(text, schema), LITE, lite, None).text)
    assert [v["post_id"] for v in value["verdicts"]] == [7, 8]  # at most maxItems, integer ids
    # The real API blocks a whole prompt when any part is blocked: one blocked post blocks the batch.
    high = next(p for p in posts if p.label == "violating" and ":low]]" not in p.text)
    mixed = batch_text([posts[1], high])
    answer = answer_for(request(mixed, batch_schema(2), MEDIUM), LITE, lite, None)
    assert answer.block_reason == "SAFETY" and not answer.pieces


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=emulator.url))


def test_google_genai_batch_call_through_the_emulator(client: genai.Client, posts: list[Post]) -> None:
    batch = [p for p in posts if p.label == "benign"][:4] + [p for p in posts if ":low]]" in p.text][:4]
    safety = [
        types.SafetySetting(category=c, threshold="BLOCK_MEDIUM_AND_ABOVE")
        for c in moderation.RATED_CATEGORIES
    ]
    model = FLASH

    def call(text: str, schema: dict[str, Any]) -> types.GenerateContentResponse:
        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema, safety_settings=safety
        )
        return client.models.generate_content(model=model, contents=text, config=config)

    reply = call(batch_text(batch), batch_schema(len(batch)))
    value = json.loads(reply.text)
    jsonschema.validate(value, batch_schema(len(batch)))
    assert [v["id"] for v in value["verdicts"]] == [p.id for p in batch]
    singles = [call(p.text, VERDICT) for p in batch]
    for got, single in zip(value["verdicts"], singles, strict=True):
        alone = json.loads(single.text)
        assert (got["flagged"], got["category"], got["confidence"]) == (
            alone["flagged"],
            alone["category"],
            alone["confidence"],
        )
    assert reply.usage_metadata.candidates_token_count > 4 * singles[0].usage_metadata.candidates_token_count
