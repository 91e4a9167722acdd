"""Every hostile input through the real `locust --headless` command: exit 2, one error line naming
the input and what is wrong with it, and no traceback (issue 13).

Each input is made in tmp_path; each run fails at start-up, before any load, so -t only bounds a
run that would wrongly go ahead. The one host case connects to a loopback port that was just
closed: no traffic leaves the machine.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

FAKE_KEY = "AIzaSyFAKE-hostile-input-key-0123456789"
NOISE = random.Random(13)  # the same "random bytes" on every run, so a failure can be replayed


def noise(size: int) -> bytes:
    # A leading 0xff byte can never start UTF-8 text, so every "binary" file is binary.
    return b"\xff" + NOISE.randbytes(size - 1)


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares width x height over a few bytes of pixel data: Pillow reads
    the size from the header, so this is a decompression bomb without the memory it would take."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def closed_loopback_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then closed, so a connect is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Hostile:
    """One hostile input: how to make it in a folder; the options that use it (given its path)
    and what the one error line must say beside naming it."""

    make: Callable[[Path], Path]
    options: Callable[[Path], tuple[str, ...]]
    says: str


def image_folder(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        images = folder / "images"
        images.mkdir()
        (images / name).write_bytes(data)
        return images / name

    return make


def empty_folder(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir()
    return images


def a_file(name: str, data: bytes | str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path

    return make


def vision(path: Path) -> tuple[str, ...]:
    folder = path if path.is_dir() else path.parent
    return ("--mix", "vision=1", "--images-dir", str(folder))


WHOLE_JPEG = jpeg()
HOSTILE = {
    "truncated-jpeg": Hostile(
        image_folder("cut.jpg", WHOLE_JPEG[: len(WHOLE_JPEG) // 2]), vision, "truncated or corrupt"
    ),
    # Past twice Pillow's own limit: Pillow refuses it on open (DecompressionBombError).
    "bomb-20000x20000-png": Hostile(
        image_folder("bomb.png", png_declaring(20_000, 20_000)), vision, "limit of 100 megapixels"
    ),
    # Under Pillow's refusal, over the suite's limit: refused from the header, never decoded.
    "bomb-12000x9000-png": Hostile(
        image_folder("big.png", png_declaring(12_000, 9_000)), vision, "12000x9000 is 108 megapixels"
    ),
    "random-bytes-jpeg": Hostile(image_folder("noise.jpg", noise(4096)), vision, "not a readable image"),
    "empty-images-folder": Hostile(empty_folder, vision, "holds no .jpg/.jpeg/.png/.webp images"),
    "binary-pricing": Hostile(
        a_file("prices.json", noise(2048)), lambda p: ("--pricing", str(p)), "cannot read it as UTF-8 text"
    ),
    "pricing-of-wrong-types": Hostile(
        a_file("prices.json", json.dumps({"models": {"gemini-2.5-flash": ["0.30", "2.50"]}})),
        lambda p: ("--pricing", str(p)),
        "gemini-2.5-flash must be an object",
    ),
    "binary-emulator-config": Hostile(
        a_file("emulator.json", noise(2048)),
        lambda p: ("--emulator-config", str(p)),
        "cannot read it as UTF-8 text",
    ),
    "emulator-config-of-wrong-types": Hostile(
        a_file("emulator.json", json.dumps({"models": {"gemini-2.5-flash": {"capacity": "many"}}})),
        lambda p: ("--emulator-config", str(p)),
        "models.gemini-2.5-flash.capacity must be a whole number",
    ),
    "binary-posts": Hostile(
        a_file("posts.jsonl", noise(2048)), lambda p: ("--posts-file", str(p)), "cannot read it as UTF-8"
    ),
    # NUL bytes decode as UTF-8: only the control characters give a binary file away.
    "nul-bytes-posts": Hostile(
        a_file("posts.jsonl", b"\x00" * 512), lambda p: ("--posts-file", str(p)), "control character"
    ),
    "malformed-posts": Hostile(
        a_file("posts.jsonl", '["id", "text", "label"]\n'),
        lambda p: ("--posts-file", str(p)),
        "expected a JSON object, got list",
    ),
    "binary-prompts": Hostile(
        a_file("prompts.txt", noise(2048)),
        lambda p: ("--mix", "stream=1", "--prompts-file", str(p)),
        "cannot read it as UTF-8",
    ),
    "malformed-prompts": Hostile(
        a_file("prompts.jsonl", '{"prompt": 42}\n'),
        lambda p: ("--mix", "stream=1", "--prompts-file", str(p)),
        "field 'prompt' must be str",
    ),
}


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "/ERROR/" in line]


def run_locust(repo_root: Path, env: dict, out: Path, *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "-u", "1", "-r", "1", "-t", "5s",
         "--results-dir", str(out), *args],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def check_one_line(code: int, output: str, names: str, says: str) -> None:
    assert "Traceback" not in output, output[-4000:]
    assert code == 2, (code, output[-3000:])
    errors = error_lines(output)
    assert len(errors) == 1, output[-3000:]
    assert names in errors[0] and says in errors[0], errors[0]
    assert "BytesIO" not in output, errors[0]
    assert "DecompressionBombWarning" not in output, output[-3000:]  # no stray lines before it


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_input_is_one_line_and_exit_2(
    repo_root: Path, tmp_path: Path, clean_env: dict, case: str
) -> None:
    hostile = HOSTILE[case]
    path = hostile.make(tmp_path)
    code, output = run_locust(repo_root, clean_env, tmp_path / "run", *hostile.options(path))
    check_one_line(code, output, str(path), hostile.says)


def test_a_host_that_refuses_connections_is_found_before_load(
    repo_root: Path, tmp_path: Path, clean_env: dict
) -> None:
    host = f"http://127.0.0.1:{closed_loopback_port()}"
    code, output = run_locust(repo_root, clean_env, tmp_path / "run", "--host", host, "--api-key", FAKE_KEY)
    check_one_line(code, output, f"--host {host}", "connection refused")
    assert "drop --host" in error_lines(output)[0]
    # Found before load: no results folder was even begun, so no call was made.
    assert not (tmp_path / "run").exists()
    assert FAKE_KEY not in output


def test_a_special_file_is_refused_unread(repo_root: Path, tmp_path: Path, clean_env: dict) -> None:
    # A FIFO (like /dev/zero or /dev/urandom) would block start-up forever or never end if read.
    fifo = tmp_path / "posts.jsonl"
    os.mkfifo(fifo)
    code, output = run_locust(repo_root, clean_env, tmp_path / "run", "--posts-file", str(fifo))
    check_one_line(code, output, str(fifo), "not a regular file")
