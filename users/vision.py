"""VisionUser: shelf photos sent inline for a JSON inventory, raw or through the pre-processing pipeline.

--image-mode raw|optimized|both picks what is sent; with both, every image goes out once in each
mode, one after the other, so one run compares the modes on the same pictures. Images go largest
first. Outcome.variant is
the mode, item_id the image name, request_bytes the JSON body that carries the image (base64),
prep_ms the CPU the pipeline spent on that image (once per process; 0 for raw). Answers must be
JSON matching fixtures/schemas/inventory.json, else the call is an invalid_response.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import jsonschema
from locust import between

from fixtures.images import load_images
from fixtures.loading import read_schema
from users.base import GeminiUser
from users.call import CallResult, CallSpec, InlineImage
from users.images import PreparedImage, check_inline_limit, inline_request_bytes, outside_loop, prepare_all
from users.outcome import Outcome
from users.scenario_options import ScenarioSettings, scenario_settings, specs_for
from users.settings import GeminiSettings
from users.verdicts import parse_json_answer, validator_for

INSTRUCTION = "You are a retail inventory assistant. Answer only with JSON matching the schema."
PROMPT = (
    "This is a photo of a store shelf. List every product you can read: brand, product name, the price "
    "on its tag, how many units face the front and which shelf it is on (1 = top). Also count the "
    "shelves and the empty slots."
)


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return validator_for(inventory_schema())


@functools.cache
def inventory_schema() -> dict[str, Any]:
    return read_schema("inventory")


def build_vision_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    """One spec per (image, mode), modes of one image side by side. Images are prepared here."""
    # Largest first: the pictures the pipeline changes most are compared even in a short run.
    # Drawing missing images (seconds for 8K) and reading them happen off the event loop.
    found = outside_loop(load_images, scenario.images_dir or None, scenario.image_set)
    sources = sorted(found, key=lambda s: (-s.width * s.height, s.name))
    prepared = prepare_all(sources, scenario.image_modes, max_side=scenario.max_image_side)
    specs = [_spec(settings, image) for image in prepared]
    for image, spec in zip(prepared, specs, strict=True):
        check_inline_limit(image.name, image.mode, spec.request_bytes, scenario.inline_limit_bytes)
    return specs


def _spec(settings: GeminiSettings, image: PreparedImage) -> CallSpec:
    schema = inventory_schema()
    config = {
        "maxOutputTokens": settings.max_output_tokens,
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    return CallSpec(
        scenario=VisionUser.scenario,
        model=settings.model,
        # Image first, then the question: the order Google's prompting guide recommends.
        parts=(InlineImage(image.mime_type, image.data), PROMPT),
        system_instruction=INSTRUCTION,
        max_output_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
        response_mime_type="application/json",
        response_schema=schema,
        variant=image.mode,
        item_id=image.name,
        prep_ms=image.prep_ms,
        request_bytes=inline_request_bytes(
            ((image.mime_type, image.data), PROMPT), system_instruction=INSTRUCTION, generation_config=config
        ),
    )


class VisionUser(GeminiUser):
    scenario: ClassVar[str] = "vision"
    weight = 1
    think_time = between(0.5, 1.5)

    build_specs = staticmethod(build_vision_specs)
    _numbers: ClassVar[Iterator[int]] = itertools.count()

    def on_start(self) -> None:
        super().on_start()
        # Each user starts one image further on (all modes of an image stay together), so several
        # vision users cover the set between them instead of all sending the same photo.
        modes = len(scenario_settings(self.environment).image_modes)
        self._next = next(self._numbers) * modes

    def specs(self) -> list[CallSpec]:
        return specs_for(self.environment, self.scenario, build_vision_specs, self.settings)

    def next_call(self) -> CallSpec:
        specs = self.specs()
        spec = specs[self._next % len(specs)]
        self._next += 1
        return spec

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        parse_json_answer(result.text, _validator())


def summarize_image_modes(
    rows: Iterable[Mapping[str, Any]], scenario: str = "vision"
) -> dict[str, dict[str, Any]]:
    """Per image mode: calls, failures, and per-image means of request bytes, prompt tokens,
    latency, prep CPU and cost per 1,000 images.

    Rows are the per-request log's (CSV strings) or Outcome.as_row() dicts. Means are taken per
    image first, then over the images every mode saw, so a run that stopped between the raw and the
    optimized call of an 8K photo does not tilt the comparison. Failed calls are not in the means.
    """
    calls: dict[str, list[int]] = {}
    per_image: dict[tuple[str, str], list[list[float]]] = {}
    for row in rows:
        if row.get("scenario") != scenario:
            continue
        mode = str(row.get("variant") or "")
        tally = calls.setdefault(mode, [0, 0])
        tally[0] += 1
        if row.get("error_kind"):
            tally[1] += 1
            continue
        values = [_num(row.get(name)) for name in _MEASURES.values()]
        per_image.setdefault((mode, str(row.get("item_id") or "")), []).append(values)
    images_by_mode: dict[str, set[str]] = {}
    for mode, image in per_image:
        images_by_mode.setdefault(mode, set()).add(image)
    common = set.intersection(*images_by_mode.values()) if images_by_mode else set()
    summary: dict[str, dict[str, Any]] = {}
    for mode, (count, failures) in sorted(calls.items()):
        seen = images_by_mode.get(mode, set())
        images = sorted((common & seen) or seen)
        entry: dict[str, Any] = {"calls": count, "failures": failures, "images": len(images)}
        for index, name in enumerate(_MEASURES):
            means = [_mean([v[index] for v in per_image[(mode, image)]]) for image in images]
            entry[name] = _mean(means) if means else None
        if entry["mean_cost_usd"] is not None:
            entry["cost_per_1000_images_usd"] = 1000 * entry["mean_cost_usd"]
        summary[mode] = entry
    return summary


_MEASURES = {
    "mean_request_bytes": "request_bytes",
    "mean_prompt_tokens": "prompt_tokens",
    "mean_e2e_ms": "e2e_ms",
    "mean_prep_ms": "prep_ms",
    "mean_cost_usd": "cost_usd",
}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _num(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0
