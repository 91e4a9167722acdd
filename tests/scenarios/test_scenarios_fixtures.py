"""Fixture loading: the bundled sets, users' own files and folders, and clear errors for bad ones."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from scenario_helpers import write_image

from fixtures import images as generator
from fixtures.chat import OUTPUT_BUDGETS, load_chat_prompts
from fixtures.images import IMAGE_SETS, ImageSpec, ensure_image, folder_images, load_images
from fixtures.loading import FixtureError, read_schema
from fixtures.moderation import load_posts, verdict_schema


def test_bundled_moderation_set_is_labelled_bucketed_and_uses_placeholder_markers() -> None:
    posts = load_posts()
    assert len(posts) >= 300
    assert Counter(p.length for p in posts).keys() == {"short", "medium", "long"}
    assert {p.label for p in posts} == {"benign", "violating"}
    categories = {p.category for p in posts if p.label == "violating"}
    assert {"hate", "harassment", "sexual", "dangerous"} <= categories
    marker = re.compile(r"\[\[unsafe:([a-z]+)(?::low)?\]\]")
    for post in posts:
        found = marker.findall(post.text)
        assert (post.label == "violating") == bool(found), post.id
        if found:
            assert found == [post.category], post.id
    # Some violating posts are low-level (answered and flagged), most are blocked at the default.
    low = sum(":low]]" in p.text for p in posts)
    assert 0 < low < sum(p.label == "violating" for p in posts)


def test_bundled_chat_prompts_spread_prompt_and_answer_lengths() -> None:
    prompts = load_chat_prompts()
    assert len({p.id for p in prompts}) == len(prompts) >= 50
    assert set(Counter(p.size for p in prompts)) == {"short", "medium", "long"}
    outputs = Counter(p.output for p in prompts)
    assert set(outputs) == {"short", "medium", "long"}
    assert OUTPUT_BUDGETS["short"] < OUTPUT_BUDGETS["medium"] < OUTPUT_BUDGETS["long"]


def test_schemas_load() -> None:
    assert verdict_schema()["required"] == ["flagged", "category", "confidence"]
    inventory = read_schema("inventory")
    assert inventory["properties"]["items"]["type"] == "array"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"id": "a", "text": "hi", "label": "benign"}\n{"id": "b", "text": "x", label: 1}\n',
            r"posts\.jsonl:2: not valid JSON",
        ),
        ('{"id": "a", "text": "hi"}\n', r"posts\.jsonl:1: missing field 'label'"),
        ('\n\n{"id": "a", "text": "hi", "label": "spam"}\n', r"posts\.jsonl:3: label 'spam' must be one of"),
        ('{"id": "a", "text": 5, "label": "benign"}\n', r"posts\.jsonl:1: field 'text' must be str"),
        ("[1, 2]\n", r"posts\.jsonl:1: expected a JSON object"),
        (
            '{"id": "a", "text": "hi", "label": "benign"}\n{"id": "a", "text": "yo", "label": "benign"}\n',
            r"posts\.jsonl:2: id 'a' was already used on line 1",
        ),
        (
            '{"id": "a", "text": "hi", "label": "benign", "length": "huge"}\n',
            r"posts\.jsonl:1: length 'huge'",
        ),
        ("\n  \n", r"posts\.jsonl: holds no items"),
    ],
)
def test_bad_posts_file_names_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(content)
    with pytest.raises(FixtureError, match=message):
        load_posts(path)


def test_posts_file_without_lengths_gets_buckets_from_text(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"id": "s", "text": "short one", "label": "benign"},
        {"id": "l", "text": "x" * 900, "label": "violating"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [(p.id, p.length) for p in load_posts(path)] == [("s", "short"), ("l", "long")]


def test_missing_and_undecodable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"nope\.jsonl: file not found"):
        load_posts(tmp_path / "nope.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(FixtureError, match=r"bin\.jsonl: cannot read it as UTF-8"):
        load_posts(binary)


def test_chat_prompts_from_text_and_jsonl_files(tmp_path: Path) -> None:
    text = tmp_path / "prompts.txt"
    text.write_text("# my prompts\nWhat is DNS?\n\n" + "Explain " * 80 + "\n")
    prompts = load_chat_prompts(text)
    assert [(p.id, p.size, p.output) for p in prompts] == [
        ("prompts-2", "short", "medium"),
        ("prompts-4", "long", "medium"),
    ]
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text('{"prompt": "hi", "output": "long"}\n{"prompt": "yo", "id": "x"}\n')
    assert [(p.id, p.output, p.output_budget) for p in load_chat_prompts(jsonl)] == [
        ("chat-1", "long", OUTPUT_BUDGETS["long"]),
        ("x", "medium", OUTPUT_BUDGETS["medium"]),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "ok"}\n{"text": "wrong field"}\n', r"chat\.jsonl:2: missing field 'prompt'"),
        ('{"prompt": "ok", "output": "endless"}\n', r"chat\.jsonl:1: output 'endless' must be one of"),
        ('{"prompt": "  "}\n', r"chat\.jsonl:1: prompt is empty"),
        ('{"prompt": "ok"\n', r"chat\.jsonl:1: not valid JSON"),
    ],
)
def test_bad_chat_file_names_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(content)
    with pytest.raises(FixtureError, match=message):
        load_chat_prompts(path)


def test_image_folder_loads_supported_images_in_name_order(tmp_path: Path) -> None:
    write_image(tmp_path / "b.png", (40, 30), fmt="PNG")
    write_image(tmp_path / "a.jpg", (50, 20))
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    images = folder_images(tmp_path)
    assert [(i.name, i.mime_type, i.width, i.height) for i in images] == [
        ("a.jpg", "image/jpeg", 50, 20),
        ("b.png", "image/png", 40, 30),
    ]


def test_bad_image_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="not a folder"):
        folder_images(tmp_path / "missing")
    with pytest.raises(FixtureError, match="holds no"):
        folder_images(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(FixtureError, match=r"broken\.jpg: not a readable image"):
        folder_images(tmp_path)
    gif = tmp_path / "g"
    Image.new("RGB", (4, 4)).save(gif.with_suffix(".png"), "GIF")  # a GIF in a .png file
    (tmp_path / "broken.jpg").unlink()
    with pytest.raises(FixtureError, match=r"g\.png: GIF images are not sent inline"):
        folder_images(tmp_path)


def test_generated_images_are_deterministic_cached_and_rebuilt_when_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_LOCUST_CACHE", str(tmp_path / "cache"))
    spec = ImageSpec(320, 240, "PNG", rgba=True, seed=3)
    path = ensure_image(spec)
    assert path.parent == generator.cache_dir() and str(tmp_path / "cache" / "images") in str(path)
    first = path.read_bytes()
    with Image.open(path) as img:
        assert img.size == (320, 240) and img.mode == "RGBA" and img.format == "PNG"
    stamp = path.stat().st_mtime_ns
    assert ensure_image(spec) == path and path.stat().st_mtime_ns == stamp  # cached, not redrawn
    path.write_bytes(b"torn")
    assert ensure_image(spec).read_bytes() == first  # rebuilt, identical pixels and bytes
    other = tmp_path / "elsewhere"
    assert ensure_image(spec, other).read_bytes() == first  # same spec, same file anywhere
    jpeg = ensure_image(ImageSpec(320, 240, "JPEG", seed=3), other)
    with Image.open(jpeg) as img:
        assert img.format == "JPEG" and img.mode == "RGB"


def test_image_sets_cover_the_resolutions_and_variants_asked_for() -> None:
    small = IMAGE_SETS["small"]
    assert len(small) <= 6  # a demo prepares every image of the default set
    full = IMAGE_SETS["full"]
    sizes = {(s.width, s.height) for s in full}
    assert {(640, 480), (4032, 3024), (7680, 4320)} <= sizes
    assert {s.format for s in small} == {"JPEG", "PNG"} and any(s.rgba for s in small)
    assert len({s.name for s in full}) == len(full)
    with pytest.raises(FixtureError, match="image set 'huge' is not known"):
        load_images(None, "huge")


def test_unwritable_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    monkeypatch.setenv("GEMINI_LOCUST_CACHE", str(blocker))
    with pytest.raises(FixtureError, match="GEMINI_LOCUST_CACHE"):
        ensure_image(ImageSpec(64, 48, seed=1))
