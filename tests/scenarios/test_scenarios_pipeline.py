"""The image pre-processing pipeline: sizes, aspect ratio, RGBA -> RGB, JPEG re-encoding, the limit."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from scenario_helpers import image_bytes, make_options, write_image

from fixtures.images import SourceImage, read_image
from fixtures.loading import FixtureError
from users import images as pipeline
from users.call import CallSpec, InlineImage, with_request_bytes
from users.images import (
    ImageLimitError,
    check_inline_limit,
    fit_within,
    optimize_image,
    prepare,
    prepare_all,
)
from users.scenario_options import ScenarioSettings
from users.transports.raw_http import encode_request
from users.vision import build_vision_specs


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((4032, 3024), 2048, (2048, 1536)),
        ((7680, 4320), 2048, (2048, 1152)),
        ((3024, 4032), 2048, (1536, 2048)),  # portrait: the longer side is the height
        ((7680, 4320), 3072, (3072, 1728)),
        ((640, 480), 2048, (640, 480)),  # never enlarged
        ((2048, 10), 1024, (1024, 5)),
    ],
)
def test_fit_within_keeps_aspect_ratio_and_never_enlarges(size, max_side, expected) -> None:
    assert fit_within(*size, max_side) == expected


def test_optimize_resizes_big_images_to_max_side_as_jpeg() -> None:
    data = image_bytes((2600, 1300), fmt="PNG")
    out, width, height = optimize_image(data, max_side=2048)
    with Image.open(io.BytesIO(out)) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
        assert img.size == (width, height) == (2048, 1024)
    smaller, w2, h2 = optimize_image(data, max_side=1000)
    assert (w2, h2) == (1000, 500) and len(smaller) < len(out)


def test_optimize_does_not_enlarge_small_images_but_reencodes_them() -> None:
    source = image_bytes((640, 480), quality=98)
    out, width, height = optimize_image(source)
    assert (width, height) == (640, 480)
    assert len(out) < len(source)  # quality 85 + optimize beats a quality-98 source
    # Quality 85: the quantisation tables are those Pillow writes for quality=85.
    reference = io.BytesIO()
    Image.new("RGB", (8, 8)).save(reference, "JPEG", quality=85)
    with Image.open(io.BytesIO(out)) as img, Image.open(reference) as ref:
        assert img.quantization == ref.quantization


def test_rgba_is_flattened_onto_white_not_black() -> None:
    data = image_bytes((400, 300), mode="RGBA", fmt="PNG")
    out, _, _ = optimize_image(data)
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB"
        corner = img.getpixel((0, 0))  # transparent in the source
    assert all(channel > 240 for channel in corner), corner


def test_palette_with_transparency_and_greyscale_become_rgb() -> None:
    palette = Image.new("P", (100, 100), 0)
    palette.info["transparency"] = 0
    buf = io.BytesIO()
    palette.save(buf, "PNG", transparency=0)
    out, _, _ = optimize_image(buf.getvalue())
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB" and all(c > 240 for c in img.getpixel((50, 50)))
    grey = image_bytes((50, 40), mode="L")
    out, _, _ = optimize_image(grey)
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB"


def test_request_bytes_match_the_json_body_the_http_transport_sends() -> None:
    data = image_bytes((300, 200))
    spec = with_request_bytes(
        CallSpec(
            scenario="vision", model="m", parts=(InlineImage("image/jpeg", data), "List the products — all."),
            system_instruction="be brief", max_output_tokens=256, temperature=0.2, thinking_budget=0,
            response_mime_type="application/json", response_schema={"type": "object"},
            safety_settings=(("HARM_CATEGORY_HATE_SPEECH", "BLOCK_ONLY_HIGH"),),
        )
    )  # fmt: skip
    sent = encode_request(spec)
    assert base64.b64encode(data) in sent  # the image travels inline, as base64
    assert json.loads(sent)["generationConfig"]["maxOutputTokens"] == 256
    assert spec.request_bytes == len(sent)


def test_limit_error_names_the_image_the_size_and_the_fix() -> None:
    check_inline_limit("a.jpg", "raw", 100, 100)  # at the limit is fine
    with pytest.raises(ImageLimitError) as raised:
        check_inline_limit("shelf.jpg", "raw", 25_000_000, 20 * 1024 * 1024)
    message = str(raised.value)
    assert "shelf.jpg" in message and "25,000,000" in message and "--image-mode optimized" in message
    assert "\n" not in message
    with pytest.raises(ImageLimitError, match="--max-image-side"):
        check_inline_limit("shelf.jpg", "optimized", 101, 100)


def test_vision_specs_refuse_an_image_over_the_inline_limit(tmp_path: Path) -> None:
    write_image(tmp_path / "imgs" / "big.png", (900, 700), fmt="PNG", noisy=True)
    settings = _settings()
    scenario = ScenarioSettings.from_options(
        make_options(images_dir=str(tmp_path / "imgs"), image_mode="both", inline_limit_mb=0.05)
    )
    with pytest.raises(ImageLimitError, match=r"big\.png \(raw\)"):
        build_vision_specs(settings, scenario)
    # Optimized alone fits: the pipeline is the fix the error suggests.
    fits = ScenarioSettings.from_options(
        make_options(
            images_dir=str(tmp_path / "imgs"),
            image_mode="optimized",
            inline_limit_mb=0.05,
            max_image_side=200,
        )
    )
    assert [s.variant for s in build_vision_specs(settings, fits)] == ["optimized"]


def test_prepare_is_memoised_and_measures_cpu(tmp_path: Path) -> None:
    source = read_image(write_image(tmp_path / "memo.png", (1200, 900), fmt="PNG"))
    first = prepare(source, "optimized", max_side=512)
    again = prepare(source, "optimized", max_side=512)
    assert again is first  # prepared once per process
    assert first.prep_ms > 0 and first.mime_type == "image/jpeg" and (first.width, first.height) == (512, 384)
    assert first.source_bytes == len(source.data)
    raw = prepare(source, "raw")
    assert raw.data is source.data and raw.prep_ms == 0.0 and raw.mime_type == "image/png"
    other_side = prepare(source, "optimized", max_side=600)
    assert other_side is not first and other_side.width == 600


def test_prepare_all_keeps_order_in_the_thread_pool(tmp_path: Path) -> None:
    sources = [read_image(write_image(tmp_path / f"p{i}.jpg", (300 + 10 * i, 200))) for i in range(5)]
    pipeline._memo.clear()
    prepared = prepare_all(sources, ("raw", "optimized"), max_side=256)
    assert [(p.name, p.mode) for p in prepared] == [
        (s.name, m) for s in sources for m in ("raw", "optimized")
    ]
    assert all(p.width == 256 for p in prepared if p.mode == "optimized")


def test_unknown_mode_is_refused() -> None:
    source = SourceImage("x.jpg", Path("x.jpg"), image_bytes((10, 10)), "image/jpeg", 10, 10, "RGB")
    with pytest.raises(ValueError, match="thumbnail"):
        prepare(source, "thumbnail")


def _settings():
    from users.settings import GeminiSettings

    return GeminiSettings.from_options(make_options(), emulator=True)


def test_vision_specs_report_a_missing_images_dir_in_one_line(tmp_path: Path) -> None:
    scenario = ScenarioSettings.from_options(make_options(images_dir=str(tmp_path / "nowhere")))
    with pytest.raises(FixtureError, match=r"nowhere: not a folder \(give --images-dir"):
        build_vision_specs(_settings(), scenario)
