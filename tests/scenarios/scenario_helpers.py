"""Helpers shared by the scenario tests: options as Locust parses them, small images, and Outcome rows
read back the way a report reads a results folder."""

from __future__ import annotations

import argparse
import csv
import io
import random
from pathlib import Path
from typing import Any

import pandas as pd
from locust.argument_parser import default_args_dict
from PIL import Image, ImageDraw

from core.outcome import OUTCOME_COLUMNS
from reports import llm_analysis
from reports.loading import load_results
from users.scenario_options import add_scenario_arguments
from users.settings import add_arguments as add_gemini_arguments


class _Collect:
    """A parser stand-in that records add_argument defaults (Locust's own parser needs its setup)."""

    def __init__(self) -> None:
        self.defaults: dict[str, Any] = {}

    def add_argument(self, flag: str, **kwargs: Any) -> None:
        self.defaults[flag.lstrip("-").replace("-", "_")] = kwargs.get("default")


def make_options(**values: Any) -> argparse.Namespace:
    """Locust's defaults, the Gemini and scenario options' defaults, then `values` (dest names)."""
    options = argparse.Namespace(**default_args_dict())
    collect = _Collect()
    add_gemini_arguments(collect)
    add_scenario_arguments(collect)
    for key, value in {**collect.defaults, **values}.items():
        setattr(options, key, value)
    return options


def draw_image(size: tuple[int, int], mode: str = "RGB", *, noisy: bool = False) -> Image.Image:
    """A picture with some structure; RGBA ones are transparent round the bars. `noisy` adds
    seeded random pixels so PNG files get photo-like sizes (flat colours compress to nothing)."""
    base = "RGBA" if mode == "RGBA" else "RGB"
    image = Image.new(base, size, (30, 120, 200, 0) if base == "RGBA" else (30, 120, 200))
    if noisy:
        image = Image.frombytes("RGB", size, random.Random(size[0]).randbytes(size[0] * size[1] * 3)).convert(
            base
        )
    draw = ImageDraw.Draw(image)
    step = max(8, size[0] // 20)
    for i in range(0, size[0] - step, step):
        fill = (200, 60 + i % 150, 40, 255) if base == "RGBA" else (200, 60 + i % 150, 40)
        draw.rectangle([i + step // 2, size[1] // 4, i + step, size[1] * 3 // 4], fill=fill)
    return image if mode == base else image.convert(mode)


def image_bytes(
    size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG", *, noisy: bool = False, **save: Any
) -> bytes:
    out = io.BytesIO()
    draw_image(size, mode, noisy=noisy).save(out, fmt, **save)
    return out.getvalue()


def write_image(
    path: Path,
    size: tuple[int, int],
    mode: str = "RGB",
    fmt: str = "JPEG",
    *,
    noisy: bool = False,
    **save: Any,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(size, mode, fmt, noisy=noisy, **save))
    return path


def request_log_frame(folder: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Outcome.as_row() dicts written as a per-request log (as metrics.recorder writes it), then read
    back with reports.loading and llm_analysis.add_derived, as the report reads a results folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "requests-test-1.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=OUTCOME_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    requests = load_results(folder).requests
    assert requests is not None and len(requests) == len(rows)
    return llm_analysis.add_derived(requests)
