"""The API key is written nowhere, in no form: a key planted in every error path each transport can
reach is searched for in everything a run writes (console, every file of the results folder, the
report), raw and in the forms a library prints it; a key with a trailing CR is refused at start-up.

The server here is a stand-in for the real API on loopback that echoes the key it receives in its
error messages (raw, repr'd, JSON-escaped, percent-encoded, base64'd) and in bodies that are not
JSON (a plain-text error, a 200 whose JSON is cut off after a piece of the key).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import random
import string
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest

from tests.e2e.locust_child import run_locust
from tests.e2e.services import QuietHandler, loopback_server

# Letters only: none of a key's 8-character pieces turns up by chance in a report's base64 charts.
TOKEN = "".join(random.SystemRandom().choice(string.ascii_letters) for _ in range(24))
# Valid in a header (printable ASCII, no space), so it passes the start-up check; its quote,
# backslash, percent and markup characters make every escaped form differ from the raw one; not of
# the Google shape, so only the known-secret matcher can hide it.
KEY = "sk-e2e\"q\\u'o%/&<e>-" + TOKEN
PIECE = 8  # core.secrets.MIN_FRAGMENT: a piece of the key this long must be hidden too


def leaked_forms(key: str) -> dict[str, str]:
    """What must appear nowhere, computed here rather than by the code under test."""
    forms = {
        "raw": key,
        "repr": repr(key)[1:-1],
        "repr of repr": repr(repr(key))[1:-1],
        "json": json.dumps(key)[1:-1],
        "json of repr": json.dumps(repr(key))[1:-1],
        "percent": quote(key, safe=""),
        "percent-plus": quote_plus(key),
        "html": html.escape(key),
        "csv": key.replace('"', '""'),
        "base64": base64.b64encode(key.encode()).decode()[:-4],
    }
    # Any 8 letters of the key's random part: every escaped form keeps letters as they are.
    for start in range(0, len(TOKEN) - PIECE + 1):
        forms[f"piece {start}"] = TOKEN[start : start + PIECE]
    return forms


def leaks_in(text: str, key: str = KEY) -> list[str]:
    return [name for name, form in leaked_forms(key).items() if form in text]


class EchoingApi(QuietHandler):
    """Answers every call with an error that holds the key it was sent, in turn one of CASES."""

    CASES = ("json-400", "text-403", "cut-json-200", "json-500")
    served: Counter[str] = Counter()
    keys: set[str] = set()
    lock = threading.Lock()
    refuse_models_get = False

    def do_GET(self) -> None:
        # models.get before load: the model is served, unless this key is to be refused with an echo.
        key = self.headers.get("x-goog-api-key") or ""
        with self.lock:
            self.keys.add(key)
        if not self.refuse_models_get:
            name = urlsplit(self.path).path.rpartition("/")[2]
            self._send(200, "application/json", json.dumps({"name": f"models/{name}"}).encode())
            return
        self._send_error(403, "PERMISSION_DENIED", f"key {key} is denied ({key!r})")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        key = self.headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [""])[0]
        with self.lock:
            case = self.CASES[sum(self.served.values()) % len(self.CASES)]
            self.served[case] += 1
            self.keys.add(key)
        echoed = f"{key} | {key!r} | {json.dumps(key)} | key={quote(key, safe='')} | {base64.b64encode(key.encode()).decode()}"
        stream = "alt=sse" in url.query
        if case == "json-400":
            self._send_error(400, "INVALID_ARGUMENT", f"API key not valid: {echoed}")
        elif case == "text-403":
            self._send(403, "text/plain", f"forbidden: {echoed}".encode())
        elif case == "cut-json-200":
            # Unparseable, and the key at a place where a message cut at 120 bytes keeps a piece of it.
            data = b'{"candidates": [{"content": {"parts": [{"text": "' + b"x" * 60 + key.encode()
            self._send(
                200,
                "text/event-stream" if stream else "application/json",
                b"data: " + data + b"\r\n\r\n" if stream else data,
            )
        else:
            self._send_error(500, "INTERNAL", f"internal error for {key!r} ({repr(key)!r})")

    def _send_error(self, code: int, status: str, message: str) -> None:
        """The API's JSON error body."""
        body = {"error": {"code": code, "status": status, "message": message}}
        self._send(code, "application/json", json.dumps(body).encode())


@pytest.fixture
def echoing_api() -> Iterator[str]:
    EchoingApi.served = Counter()
    EchoingApi.keys = set()
    EchoingApi.refuse_models_get = False
    with loopback_server(EchoingApi) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.mark.parametrize("transport", ["genai", "legacy", "http"])
def test_a_key_in_every_error_path_is_written_nowhere(
    repo_root: Path, tmp_path: Path, clean_env: dict, echoing_api: str, transport: str
) -> None:
    out = tmp_path / "run"
    env = {**clean_env, "GEMINI_API_KEY": KEY}
    proc = run_locust(
        repo_root, env, "-u", "4", "-r", "4", "-t", "4s", "--host", echoing_api, "--transport", transport,
        "--mix", "moderation=1,stream=1", "--results-dir", str(out),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode != 2 and (out / "report.html").exists(), console[-3000:]

    # The key was sent, and every kind of echo reached the run.
    assert EchoingApi.keys == {KEY}
    assert set(EchoingApi.served) == set(EchoingApi.CASES), EchoingApi.served
    logged = list(csv.DictReader(next(out.glob("requests-*.csv")).open(encoding="utf-8")))
    kinds = {row["error_kind"] for row in logged}
    assert {"client_error", "server_error", "invalid_response"} <= kinds, kinds
    # ... and the messages held it: redaction, not luck, kept it out.
    assert any("***" in row["error_message"] for row in logged)
    assert "***" in (out / "locust_failures.csv").read_text(encoding="utf-8")

    assert not leaks_in(console), (leaks_in(console), console[-3000:])
    files = [path for path in out.rglob("*") if path.is_file()]
    assert {"report.html", "locust_failures.csv", "run.json"} <= {path.name for path in files}
    for path in files:
        found = leaks_in(path.read_text(encoding="utf-8", errors="replace"))
        assert not found, (path.name, found)


def test_a_key_refused_on_models_get_is_one_line_without_the_key(
    repo_root: Path, tmp_path: Path, clean_env: dict, echoing_api: str
) -> None:
    EchoingApi.refuse_models_get = True
    out = tmp_path / "run"
    proc = run_locust(
        repo_root, {**clean_env, "GEMINI_API_KEY": KEY}, "-u", "1", "-t", "5s", "--host", echoing_api,
        "--max-cost", "1", "--results-dir", str(out),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    lines = [line for line in console.splitlines() if "refused the API key on models.get (HTTP 403" in line]
    assert len(lines) == 1 and "***" in lines[0] and "Traceback" not in console, console[-3000:]
    assert EchoingApi.keys == {KEY} and not EchoingApi.served  # the key was sent; no call followed
    assert not leaks_in(console), (leaks_in(console), console[-3000:])
    for path in (p for p in out.rglob("*") if p.is_file()) if out.exists() else ():
        assert not leaks_in(path.read_text(encoding="utf-8", errors="replace")), path.name


@pytest.mark.parametrize(
    ("where", "key", "fragment"),
    [
        ("GEMINI_API_KEY", f"sk-e2e-{TOKEN}\r", "GEMINI_API_KEY ends with a carriage return"),
        ("--api-key", f"sk-e2e-{TOKEN[:12]}\t{TOKEN[12:]}", "--api-key has a tab"),
    ],
    ids=["env-trailing-cr", "option-tab"],
)
def test_a_key_with_whitespace_is_refused_at_start_up_without_showing_it(
    repo_root: Path, tmp_path: Path, clean_env: dict, echoing_api: str, where: str, key: str, fragment: str
) -> None:
    out = tmp_path / "run"
    if where == "GEMINI_API_KEY":
        env, args = {**clean_env, "GEMINI_API_KEY": key}, ("--host", echoing_api)
    else:
        env, args = clean_env, ("--api-key", key)  # the bundled emulator
    proc = run_locust(repo_root, env, "-u", "1", "-t", "5s", "--results-dir", str(out), *args)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    lines = [line for line in console.splitlines() if fragment in line]
    assert len(lines) == 1 and "Traceback" not in console, console[-3000:]
    assert not leaks_in(console, key), console[-3000:]
    assert not EchoingApi.served, "nothing is sent with a refused key"
    for path in (p for p in out.rglob("*") if p.is_file()) if out.exists() else ():
        assert not leaks_in(path.read_text(errors="replace"), key), path
