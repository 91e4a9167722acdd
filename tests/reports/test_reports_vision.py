"""Vision raw against optimized: upload time computed from bytes, and the image-token rule sentence,
which may claim a token or cost saving only where the rule and the measured figures both show it."""

from __future__ import annotations

import re

import pytest

from reports import build_report
from reports import scenario_analysis as sa


def variants_section(folder) -> str:
    html = build_report(folder).read_text(encoding="utf-8")
    found = re.search(r'<section id="variants">(.*?)</section>', html, re.S)
    assert found, "no variants section"
    return found.group(1)


def row(section: str, variant: str) -> list[str]:
    for cells in (
        re.findall(r"<td[^>]*>(.*?)</td>", r, re.S) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ):
        if cells[:2] == ["vision", variant]:
            return cells
    raise AssertionError(f"no row for {variant}")


def vision_calls(model: str, raw_tokens: int, optimized_tokens: int, raw_cost: float, optimized_cost: float):
    """Two images, each sent raw (1,250,000 bytes) and optimized (125,000 bytes, 12 ms to prepare)."""
    common = dict(scenario="vision", model=model, output_tokens=5, finish_reason="STOP")
    raw = dict(common, variant="raw", request_bytes=1_250_000, prompt_tokens=raw_tokens, cost_usd=raw_cost)
    optimized = dict(
        common,
        variant="optimized",
        request_bytes=125_000,
        prompt_tokens=optimized_tokens,
        cost_usd=optimized_cost,
        prep_ms=12.0,
    )
    return [dict(call, item_id=item) for item in ("img0", "img1") for call in (raw, optimized)]


def test_upload_time_is_computed_from_request_bytes_at_two_uplinks(request_log):
    section = variants_section(request_log(vision_calls("gemini-3.8-flash", 1130, 1130, 0.001, 0.001)))
    # Request KB, then upload: 1,250,000 bytes x 8 = 10^7 bits, 1 s at 10 Mbit/s, 0.1 s at 100.
    assert row(section, "raw")[7:10] == ["1,220.7", "1,000", "100"]
    assert row(section, "optimized")[7:10] == ["122.1", "100", "10.0"]
    assert (
        "Upload at 10 Mbit/s (ms, from bytes)" in section
        and "Upload at 100 Mbit/s (ms, from bytes)" in section
    )
    assert "Upload times are not measured: they are computed from the request size" in section
    assert sa.upload_ms(1_250_000, 10) == pytest.approx(1000.0)


def test_a_resolution_rule_model_saves_bytes_not_tokens_or_cost(request_log):
    # Gemini 3: 1,120 tokens an image at the default media resolution, 10 for the text, either size.
    section = variants_section(request_log(vision_calls("gemini-3.8-flash", 1130, 1130, 0.001, 0.001)))
    assert (
        "vision: gemini-3.8-flash counts an image by its media resolution (1,120 tokens at the default), "
        "whatever its size: optimizing saves bytes and upload time, not tokens or cost (measured per image: "
        "1,220.7 KB raw against 122.1 KB optimized, 1,130 against 1,130 prompt tokens)."
    ) in section
    assert "saved" not in section


def test_a_tiles_rule_model_counts_large_images_dearer(request_log):
    # Gemini 2.0 tiles: a 1024x1024 photo is 4 tiles of 258 (1,032), the optimized 384x384 one 258;
    # 10 tokens of text each. Cost per 1,000 images 0.2 against 0.1 USD.
    section = variants_section(request_log(vision_calls("gemini-2.0-flash", 1042, 268, 0.0002, 0.0001)))
    assert (
        "vision: gemini-2.0-flash counts an image in tiles of 258 tokens (one for an image within 384×384 "
        "pixels, more for a larger one), so a large image costs more tokens: here optimizing saved 774 prompt "
        "tokens per image and 0.1000 USD per 1,000 images, as well as bytes and upload time (measured per "
        "image: 1,220.7 KB raw against 122.1 KB optimized, 1,042 against 268 prompt tokens)."
    ) in section


FIGURES = {"request_kb": 1000.0, "prompt_tokens": 268.0, "cost_per_1k": 0.1}


def test_the_sentence_claims_no_saving_the_figures_do_not_show():
    raw = dict(FIGURES, prompt_tokens=1042.0, cost_per_1k=0.2)
    small = dict(FIGURES, request_kb=100.0)
    # Tiles, but the photos were small already: no tokens saved, so none claimed.
    same = sa.image_rule_sentence("gemini-2.0-flash", FIGURES, small)
    assert (
        "here the optimized images took no fewer prompt tokens, so optimizing saved no tokens or cost" in same
    )
    # A size-blind rule with a measured gap: the gap is reported, not put down to optimizing.
    flat = sa.image_rule_sentence("gemini-2.5-flash", raw, small)
    assert flat.startswith(
        "gemini-2.5-flash counts an image as 258 tokens, whatever its size: yet the measured"
    )
    assert "saved" not in flat and "saves bytes" not in flat
    # Same tokens, yet the answers made the optimized calls cheaper: not a saving of the image.
    cheaper = sa.image_rule_sentence("gemini-2.5-flash", FIGURES, dict(small, cost_per_1k=0.05))
    assert (
        "not tokens or cost; the cost difference in the table comes from output and thinking tokens"
        in cheaper
    )
    # No bytes saved either.
    assert "here it saved no bytes either" in sa.image_rule_sentence("gemini-3.8-flash", FIGURES, FIGURES)
    # Tokens not reported: the rule is stated, the figures cannot confirm it.
    unreported = dict(FIGURES, prompt_tokens=float("nan"))
    assert "no prompt token counts to confirm it" in sa.image_rule_sentence(
        "gemini-3.8-flash", unreported, small
    )
    # No image answered in both variants: the rule alone, no figures.
    unpaired = sa.image_rule_sentence("gemini-3.8-flash", dict(FIGURES, request_kb=float("nan")), small)
    assert unpaired.endswith("whatever its size: no image was answered in both variants to measure it by.")


def test_a_model_not_in_the_catalogue_has_an_unknown_rule():
    sentence = sa.image_rule_sentence("my-tuned-model", dict(FIGURES, prompt_tokens=1042.0), FIGURES)
    assert sentence.startswith(
        "my-tuned-model is not in the model catalogue, so its image-token rule is unknown"
    )
    assert "measured, the optimized images took 774 fewer prompt tokens each" in sentence
    same = sa.image_rule_sentence("my-tuned-model", FIGURES, FIGURES)
    assert "measured, the optimized images took no fewer prompt tokens" in same


def test_two_models_in_one_scenario_state_each_rule_and_no_saving(request_log):
    calls = vision_calls("gemini-3.8-flash", 1130, 1130, 0.001, 0.001)
    calls += [dict(call, model="gemini-2.0-flash", item_id=call["item_id"] + "b") for call in calls]
    section = variants_section(request_log(calls))
    assert (
        "gemini-2.0-flash counts an image in tiles" in section
        and "gemini-3.8-flash counts an image by" in section
    )
    assert "The figures mix 2 models, so they do not show what one rule saves." in section
