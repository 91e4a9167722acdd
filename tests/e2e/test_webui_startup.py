"""The web UI answers while requests are still being prepared, says so, and a start waits for them.

Preparation is held open by the test itself: --images-dir holds a named pipe, and reading it blocks
until the test writes a real image into it. So "still preparing" is a state the test controls, not a
race it hopes to win.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image

from tests.e2e.locust_child import stop_child


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.status, reply.read().decode()


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "locust exited before its web UI answered"
        try:
            status, body = get(url)
            if status == 200:
                return body
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer in {timeout} s"
        time.sleep(0.05)  # why: poll interval; nothing announces that a socket accepts


def test_web_ui_answers_during_preparation_and_a_start_waits_for_it(
    repo_root: Path, clean_env: dict, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    gate = images / "shelf.png"
    os.mkfifo(gate)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**clean_env, "GEMINI_LOCUST_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "--web-port", str(port), "--results-dir", str(tmp_path / "run"),
         "--mix", "vision=1", "--images-dir", str(images)],
        cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    swarm_reply: dict = {}
    try:
        page = wait_for_page(base + "/", proc)
        assert 'id="gemini-notice"' in page and "Preparing requests" in page
        assert "Preparing requests" in json.loads(get(base + "/gemini/notice")[1])["notice"]

        # A start while preparation is held open: the request waits instead of failing.
        form = urllib.parse.urlencode({"user_count": "1", "spawn_rate": "1", "host": ""}).encode()

        def start() -> None:
            with urllib.request.urlopen(base + "/swarm", data=form, timeout=120) as reply:
                swarm_reply.update(json.loads(reply.read()))

        starter = threading.Thread(target=start, daemon=True)
        starter.start()
        starter.join(
            timeout=1.0
        )  # why: a start that does NOT return is the point; give it a moment to wrongly return
        assert starter.is_alive() and not swarm_reply, f"the start did not wait: {swarm_reply} {output}"

        # Release preparation: write a real image into the pipe.
        picture = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, "PNG")
        with open(gate, "wb") as pipe:
            pipe.write(picture.getvalue())
        starter.join(timeout=120)
        assert swarm_reply.get("success") is True, swarm_reply
        assert json.loads(get(base + "/gemini/notice")[1])["notice"] == ""
        assert 'id="gemini-notice"' not in get(base + "/")[1]
    finally:
        stop_child(proc)
        reader.join(timeout=10)
    text = "".join(output)
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode in (0, 1), text[-3000:]
