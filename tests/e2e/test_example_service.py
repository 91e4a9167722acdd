"""The example moderation service (examples/moderation_service) against the bundled emulator.

It runs as a user would run it, `python -m examples.moderation_service --port N`, with
GEMINI_BASE_URL at a `fast` emulator: a verdict comes back with the caller's x-request-id, and the
emulator saw that id on the model call (GET /emulator/sends); bad input and model failures are
JSON errors; the pool is a real bottleneck; SIGTERM ends it promptly with code 0; the API key is
never printed. Only loopback traffic.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emulator.launcher import EmulatorProcess
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
# Letters only, so a piece of it cannot turn up by chance in a log line.
KEY = "emulator-key-" + "".join(random.SystemRandom().choice(string.ascii_letters) for _ in range(20))
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 5.0
# No proxy between the test, the service and the emulator: all of it is loopback.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def emulator_options() -> dict[str, Any]:
    return {"profile": "fast", "time_scale": 0.0, "seed": 11}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of a GET, or of a POST when there is a body; errors included."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with LOOPBACK.open(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def moderate(
    service: Service, payload: Any, request_id: str | None = None
) -> tuple[int, dict[str, str], Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json", **({"x-request-id": request_id} if request_id else {})}
    return call(f"{service.url}/moderate", body, headers)


class Service:
    """The example service as a child process on a free loopback port, its output in files."""

    def __init__(self, emulator_url: str, folder: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = folder / "stdout.txt", folder / "stderr.txt"
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and "API_KEY" not in k}
        env.update(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=emulator_url, PYTHONUNBUFFERED="1")
        env.pop("GOOGLE_GEMINI_BASE_URL", None)  # the SDK's own variable would not be the emulator
        command = [sys.executable, "-m", "examples.moderation_service", "--port", str(self.port), *args]
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=stderr)
        wait_until(
            self._healthy, READY_TIMEOUT_S, f"the example service on port {self.port} to answer /healthz"
        )

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the service exited with code {self.proc.returncode}:\n{self.output()}")
        try:
            return call(f"{self.url}/healthz")[2] == {"status": "ok"}
        except OSError:  # not listening yet
            return False

    def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"still running {EXIT_TIMEOUT_S:g} s after SIGTERM:\n{self.output()}"
            ) from None
        return code, time.monotonic() - started

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_service(emulator: EmulatorProcess, tmp_path: Path) -> Iterator[Any]:
    """Factory: a service of this test's own (extra flags allowed), killed at teardown if still up."""
    started: list[Service] = []

    def start(*args: str) -> Service:
        folder = tmp_path / f"service{len(started)}"
        folder.mkdir()
        started.append(Service(emulator.url, folder, *args))
        return started[-1]

    yield start
    for service in started:
        service.close()


@pytest.fixture(scope="module")
def service(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service shared by the module's request tests (pool 4, the default 20 ms pre-processing)."""
    running = Service(emulator.url, tmp_path_factory.mktemp("service"))
    yield running
    running.close()


def sent_to_model(emulator: EmulatorProcess, request_id: str) -> dict[str, Any] | None:
    return call(f"{emulator.url}/emulator/sends")[2]["sends"].get(request_id)


def test_a_verdict_comes_back_and_the_request_id_reaches_the_model(
    service: Service, emulator: EmulatorProcess
) -> None:
    status, headers, body = moderate(
        service, {"text": "What a lovely day for a walk.", "id": "p1"}, "e2e-id-1"
    )

    assert status == 200, body
    assert body["verdict"] in {"benign", "violating"}  # the suite's labels
    assert 0 <= body["confidence"] <= 1
    assert isinstance(body["categories"], list)
    assert body["request_id"] == "e2e-id-1" and body["id"] == "p1"
    assert headers["x-request-id"] == "e2e-id-1"
    assert "model;dur=" in headers["Server-Timing"]
    record = sent_to_model(emulator, "e2e-id-1")
    assert record is not None, "the emulator never saw the request id on the model call"
    assert record["status"] == 200


def test_a_marked_post_is_violating_and_a_blocked_one_too(service: Service) -> None:
    # The emulator's markers: :low is answered (flagged by the model), the default level is blocked.
    status, _, judged = moderate(service, {"text": "I hate you all [[unsafe:hate:low]]"})
    assert status == 200 and judged["verdict"] == "violating" and judged["categories"] == ["hate"]
    status, _, blocked = moderate(service, {"text": "I hate you all [[unsafe:hate]]"})
    assert status == 200 and blocked == {
        **blocked,
        "verdict": "violating",
        "confidence": 1.0,
        "categories": ["hate"],
    }


def test_a_request_without_an_id_gets_a_fresh_one(service: Service, emulator: EmulatorProcess) -> None:
    status, headers, body = moderate(service, {"text": "hello"})

    assert status == 200, body
    assert body["request_id"] and headers["x-request-id"] == body["request_id"]
    assert sent_to_model(emulator, body["request_id"]) is not None


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"this is not json", "not JSON"),
        (b'["a list"]', "JSON object"),
        ({"id": "p1"}, '"text" is missing'),
        ({"text": "   "}, "blank"),
        ({"text": "x" * 10_001}, "at most 10000"),
    ],
    ids=["not-json", "not-an-object", "no-text", "blank-text", "too-long"],
)
def test_bad_input_is_a_400_with_a_json_error(service: Service, payload: Any, says: str) -> None:
    status, headers, body = moderate(service, payload, "e2e-bad")

    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"] == "bad_request" and says in body["message"], body
    assert body["request_id"] == "e2e-bad"


def test_a_model_error_is_a_502_with_its_status(start_service: Any, emulator: EmulatorProcess) -> None:
    service = start_service("--model", "no-such-model")

    status, _, body = moderate(service, {"text": "hello"}, "e2e-404")

    assert status == 502, body
    assert (
        body["error"] == "model_error" and body["model_status"] == 404 and body["model_error"] == "NOT_FOUND"
    )
    assert sent_to_model(emulator, "e2e-404")["status"] == 404


def test_the_pool_is_the_bottleneck(start_service: Any) -> None:
    # One worker, 1 s of pre-processing each: of two requests sent at once, one waits for the other.
    # Half of that is the margin for the second to be sent late on a busy machine.
    service = start_service("--pool", "1", "--preprocess-ms", "1000")

    with ThreadPoolExecutor(2) as threads:
        answers = list(threads.map(lambda n: moderate(service, {"text": f"post {n}"}), range(2)))

    timings = [
        dict(span.split(";dur=") for span in headers["Server-Timing"].split(", "))
        for _, headers, _ in answers
    ]
    assert [status for status, _, _ in answers] == [200, 200]
    assert all(float(timing["pre"]) >= 990 for timing in timings), timings
    assert max(float(timing["queue"]) for timing in timings) >= 500, timings


def test_sigterm_ends_it_promptly_with_code_0(start_service: Any) -> None:
    service = start_service()
    assert moderate(service, {"text": "hello"})[0] == 200  # the Gemini client is open now

    code, seconds = service.stop()

    assert code == 0, service.output()
    assert seconds < EXIT_TIMEOUT_S
    output = service.output()
    assert "Traceback" not in output and "Unclosed" not in output, output


def test_the_api_key_never_appears_in_its_output(start_service: Any) -> None:
    service = start_service("--model", "no-such-model")
    moderate(service, {"text": "hello"})  # a model error
    moderate(service, b"not json")  # a bad request
    call(f"{service.url}/no-such-route")
    service.stop()

    output = service.output()
    assert f"listening on {service.url}, pool 4, model no-such-model, Gemini at http://127.0.0.1:" in output
    assert KEY not in output and KEY[-20:] not in output, output


def test_its_schema_is_the_suites_moderation_verdict() -> None:
    from examples.moderation_service.app import VERDICT_SCHEMA

    suite = json.loads((REPO_ROOT / "fixtures" / "schemas" / "moderation_verdict.json").read_text())
    assert suite == VERDICT_SCHEMA
