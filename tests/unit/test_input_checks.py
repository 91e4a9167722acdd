"""The checks behind "every bad input is one line" (issue 13), one input at a time, without Locust:
emulator config, price file, fixture text files, images, and whether --host is reachable.

tests/e2e/test_hostile_inputs.py runs the same kinds of input through the real command line.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.options import OptionError
from emulator.profiles import ConfigError, load_profile
from fixtures.chat import load_chat_prompts
from fixtures.images import MAX_IMAGE_PIXELS, SourceImage, folder_images, read_image
from fixtures.loading import FixtureError, read_json
from fixtures.moderation import load_posts
from lifecycle import reachable
from users.images import prepare
from users.pricing import PriceTable, PricingError

BINARY = b"\xff\xfe\x00\x81" + bytes(range(256))


# ---- emulator config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "must be a JSON object, got a list"),
        ({"max_request_bytes": "lots"}, "max_request_bytes must be a whole number >= 1, got 'lots'"),
        ({"max_request_bytes": True}, "max_request_bytes must be a whole number"),
        ({"max_request_bytes": 0}, "max_request_bytes must be a whole number >= 1"),
        ({"quota_tier": ["free"]}, "quota_tier ['free'] unknown"),
        ({"quotas": [1]}, "quotas must be an object"),
        ({"quotas": {"m": {"rpm": "ten"}}}, "quotas.m.rpm must be a whole number"),
        ({"quotas": {"m": {"tpm": -1}}}, "quotas.m.tpm must be a whole number >= 0"),
        ({"models": ["gemini-2.5-flash"]}, "models must be an object"),
        ({"models": {"m": 3}}, "models.m must be an object, got a number"),
        ({"models": {"m": {"capacity": "many"}}}, "models.m.capacity must be a whole number"),
        ({"models": {"m": {"capacity": 2.5}}}, "models.m.capacity must be a whole number"),
        ({"models": {"m": {"thinking": "yes"}}}, "models.m.thinking must be true or false"),
        ({"models": {"m": {"display_name": 5}}}, "models.m.display_name must be a string"),
        ({"models": {"m": {"ttft_median_ms": -1}}}, "models.m.ttft_median_ms must be a number >= 0"),
        ({"models": {"m": {"ttft_sigma": float("nan")}}}, "models.m.ttft_sigma must be a number >= 0"),
        ({"models": {"m": {"queue_timeout_status": 500}}}, "queue_timeout_status must be 503 or 504"),
        ({"model_defaults": {"output_tokens_per_s": "fast"}}, "model_defaults.output_tokens_per_s"),
        ({"faults": {"stall_seconds": float("inf")}}, "fault 'stall_seconds' must be a number"),
    ],
)
def test_a_wrongly_typed_emulator_config_is_one_config_error(config: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile("realistic", config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_emulator_config_files_that_are_not_json_text(tmp_path: Path) -> None:
    cases = {
        "binary.json": (BINARY, "cannot read it as UTF-8 text (bad byte at offset 0): give a JSON file"),
        "deep.json": ("[" * 100_000, "is not valid JSON"),
        "digits.json": ('{"max_request_bytes": ' + "9" * 5000 + "}", "is not valid JSON: Exceeds the limit"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ConfigError) as caught:
            load_profile("realistic", path)
        text = str(caught.value)
        assert message in text and str(path) in text and "set_int_max_str_digits" not in text
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # reading it would block start-up for ever
    with pytest.raises(ConfigError, match=": not a regular file"):
        load_profile("realistic", fifo)


def test_a_good_emulator_config_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    # A byte-order mark (Windows editors) and whole-number floats are fine.
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(
            {"max_request_bytes": 1000.0, "models": {"m": {"capacity": 3.0, "thinking": True}}}
        ).encode()
    )
    profile = load_profile("realistic", path)
    assert profile.max_request_bytes == 1000 and profile.models["m"].capacity == 3
    assert isinstance(profile.models["m"].capacity, int) and profile.models["m"].thinking is True


# ---- price file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BINARY, "cannot read it as UTF-8 text"),
        ("[1, 2]", "is not valid: expected {'models'"),
        ('"models"', "is not valid: expected {'models'"),
        ('{"models": ["gemini-2.5-flash"]}', "is not valid: expected {'models'"),
        ('{"models": {"m": 0.3}}', "m must be an object like"),
        ('{"models": {"m": {"input": [1], "output": 1}}}', r"m.input must be a number >= 0, got [1]"),
        ("[" * 100_000, "is not valid JSON"),
        ('{"models": {"m": {"input": ' + "9" * 5000 + ', "output": 1}}}', "is not valid JSON (Exceeds"),
    ],
    ids=["binary", "list", "string", "models-list", "price-number", "price-list", "deep", "digits"],
)
def test_any_bytes_in_a_price_file_are_one_pricing_error(
    tmp_path: Path, content: bytes | str, message: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PricingError) as caught:
        PriceTable.load(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text
    assert isinstance(caught.value, OptionError)  # the command line prints it and exits 2


def test_special_price_files_are_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "prices.json"
    os.mkfifo(fifo)
    with pytest.raises(PricingError, match=": not a regular file"):
        PriceTable.load(fifo)
    with pytest.raises(PricingError, match=": is a folder, not a file"):
        PriceTable.load(tmp_path)
    with pytest.raises(PricingError, match="pricing file .*missing.json: file not found"):
        PriceTable.load(tmp_path / "missing.json")


# ---- posts and prompts ------------------------------------------------------------------------


def test_text_fixture_files_that_are_binary_or_malformed(tmp_path: Path) -> None:
    zeros = tmp_path / "prompts.txt"
    zeros.write_bytes(b"a fine first line\n\x00\x00\x00")
    # NUL bytes are valid UTF-8: only the control character gives the binary file away.
    with pytest.raises(FixtureError, match=r"prompts\.txt:2: holds the control character"):
        load_chat_prompts(zeros)
    digits = tmp_path / "posts.jsonl"
    digits.write_text('{"id": "a", "text": "t", "label": "benign", "n": ' + "1" * 5000 + "}\n")
    with pytest.raises(FixtureError, match=r"posts\.jsonl:1: not valid JSON \(Exceeds") as caught:
        load_posts(digits)
    assert "set_int_max_str_digits" not in str(caught.value)
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n")
    with pytest.raises(FixtureError, match=r"deep\.jsonl:1: not valid JSON \(nested too deeply\)"):
        load_posts(deep)
    schema = tmp_path / "schema.json"
    schema.write_text("[" * 100_000)
    with pytest.raises(FixtureError, match="nested too deeply"):
        read_json(schema)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(FixtureError, match=r"fifo\.jsonl: not a regular file"):
        load_posts(fifo)


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "hello there", "label": "benign"}\n')
    assert [p.id for p in load_posts(path)] == ["a"]


# ---- images -----------------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height over almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """Noisy pixels, so the compressed data is long enough to be cut in half."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, bytes((i * 37) % 251 for i in range(size[0] * size[1] * 3))).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "cut.jpg",
            encoded("JPEG")[: len(encoded("JPEG")) // 2],
            "not a readable image (truncated or corrupt",
        ),
        ("cut.png", encoded("PNG")[: len(encoded("PNG")) // 2], "not a readable image (truncated or corrupt"),
        ("short.png", png_declaring(400, 300), "not a readable image (truncated or corrupt"),
        ("noise.jpg", b"\xff\xd9" + bytes(range(256)) * 4, "not a readable image (no JPEG, PNG or WebP"),
        ("bomb.png", png_declaring(20_000, 20_000), "declares more than 179 megapixels"),
        ("big.png", png_declaring(12_000, 9_000), "12000x9000 is 108 megapixels"),
    ],
    ids=["truncated-jpeg", "truncated-png", "short-png", "noise", "bomb", "over-limit"],
)
# fixtures.images silences Pillow's own warning at import; pytest restores its filters per test.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_bad_image_file_is_one_line_naming_it(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(FixtureError) as caught:
        folder_images(tmp_path)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / name}: ") and message in text, text
    assert "BytesIO" not in text and "\n" not in text
    if "megapixels" in message:
        assert f"limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels" in text


def test_generated_images_are_not_decoded_twice_but_user_images_are(tmp_path: Path) -> None:
    # A header-only read (the suite's own drawn images) does not decode: a damaged body passes it.
    path = tmp_path / "short.png"
    path.write_bytes(png_declaring(400, 300))
    assert read_image(path).width == 400
    with pytest.raises(FixtureError, match="truncated or corrupt"):
        read_image(path, decode=True)


def test_an_image_the_pipeline_cannot_decode_names_its_file(tmp_path: Path) -> None:
    # The pipeline's own guard, for an image that reached it without a decode at start-up.
    path = tmp_path / "short.png"
    source = SourceImage("short.png", path, png_declaring(400, 300), "image/png", 400, 300, "RGB")
    with pytest.raises(FixtureError) as caught:
        prepare(source, "optimized", max_side=128)
    assert str(caught.value).startswith(f"{path}: not a readable image (OSError: image file is truncated")


# ---- --host reachable -------------------------------------------------------------------------


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_a_listening_loopback_host_passes(no_proxy: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        reachable.check_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")


def test_a_refused_loopback_port_is_one_option_error(no_proxy: None) -> None:
    host = f"http://127.0.0.1:{closed_loopback_port()}"
    with pytest.raises(OptionError) as caught:
        reachable.check_reachable(host)
    text = str(caught.value)
    assert text.startswith(f"--host {host}: cannot connect") and "connection refused" in text
    assert "drop --host" in text


class _Refuse:
    """A stand-in for socket.create_connection: records where it was asked to connect, raises."""

    def __init__(self, error: OSError) -> None:
        self.error = error
        self.targets: list[tuple[str, int]] = []

    def __call__(self, target: tuple[str, int], timeout: float) -> socket.socket:
        self.targets.append(target)
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (socket.gaierror(-2, "Name or service not known"), "the name api.example.test does not resolve"),
        (TimeoutError("timed out"), "no answer within 5 s"),
        (OSError(101, "Network is unreachable"), "Network is unreachable"),
    ],
    ids=["no-such-name", "silent", "no-route"],
)
def test_every_connect_failure_is_one_line(
    no_proxy: None, monkeypatch: pytest.MonkeyPatch, error: OSError, reason: str
) -> None:
    # No real lookup or connect: the failure is what the stand-in raises.
    refuse = _Refuse(error)
    monkeypatch.setattr(reachable.socket, "create_connection", refuse)
    with pytest.raises(OptionError, match=f"cannot connect to api.example.test:443 \\({reason}\\)"):
        reachable.check_reachable("https://api.example.test")
    assert refuse.targets == [("api.example.test", 443)]


def test_through_a_proxy_the_proxy_is_what_must_answer(
    monkeypatch: pytest.MonkeyPatch, no_proxy: None
) -> None:
    refuse = _Refuse(ConnectionRefusedError(111, "Connection refused"))
    monkeypatch.setattr(reachable.socket, "create_connection", refuse)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    with pytest.raises(OptionError, match="through the proxy proxy.example.test:3128"):
        reachable.check_reachable("https://api.example.test")
    assert refuse.targets == [("proxy.example.test", 3128)]
    monkeypatch.setenv("NO_PROXY", "api.example.test")  # bypassed: the host itself again
    with pytest.raises(OptionError):
        reachable.check_reachable("https://api.example.test")
    assert refuse.targets[-1] == ("api.example.test", 443)


def test_a_port_out_of_range_is_one_line() -> None:
    with pytest.raises(OptionError, match="the port is not a number from 1 to 65535"):
        reachable.check_reachable("http://127.0.0.1:99999")
