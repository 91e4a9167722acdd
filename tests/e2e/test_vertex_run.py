"""Vertex AI end to end, offline: `locust --backend vertex` against a separately started emulator,
signed in with a service-account key file whose token endpoint is that emulator (the real
google-auth library signs the JWT and exchanges it there). Tokens live 6 s, so each run renews
them mid-run, and no call may fail for it. Nothing a run writes may hold the key or a token.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.locust_child import read_rows, run_locust
from tests.service_account import write_service_account

TOKEN_LIFETIME_S = 6  # renewed a quarter before expiry: 1.5 s of margin on a busy machine
TOKEN_SHAPE = re.compile(r"ya29\.[0-9A-Za-z_\-.]{8,}")
FAILURES = {
    "rate_limited",
    "server_error",
    "timeout",
    "connection",
    "client_error",
    "invalid_response",
    "shed",
}


def key_pieces(pem: str) -> list[str]:
    """The PEM body's lines: any one of them in an output is the private key leaking."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def leaks(text: str, pem: str) -> list[str]:
    found = [f"private key line {i}" for i, line in enumerate(key_pieces(pem)) if line in text]
    found += [f"token {m.group()[:14]}..." for m in TOKEN_SHAPE.finditer(text)]
    return found + (["PEM header"] if "PRIVATE KEY-----" in text else [])


def emulator_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/emulator/stats", timeout=10) as reply:
        return json.load(reply)


@pytest.fixture
def vertex_env(clean_env: dict[str, str]) -> dict[str, str]:
    env = dict(clean_env)
    for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI"):
        env.pop(name, None)
    env["NO_GCE_CHECK"] = "True"  # google-auth must never probe a metadata server from a test
    return env


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_a_vertex_run_signs_in_renews_its_token_mid_run_and_fails_no_call(
    repo_root: Path, tmp_path: Path, vertex_env: dict[str, str], start_emulator, transport: str
) -> None:
    emulator = start_emulator(token_lifetime=TOKEN_LIFETIME_S, time_scale=0.05)
    url = emulator.url
    account = write_service_account(tmp_path / "sa.json", token_uri=f"{url}/token", project_id="p")
    out = tmp_path / "run"
    env = {**vertex_env, "GOOGLE_APPLICATION_CREDENTIALS": str(account.path)}
    proc = run_locust(
        repo_root, env, "--backend", "vertex", "--project", "p", "--location", "us-central1",
        "--host", url, "--max-cost", "1", "--transport", transport, "--mix", "moderation=2,stream=1",
        "-u", "4", "-r", "4", "-t", "16s", "--results-dir", str(out),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-4000:]

    calls = [row for path in out.glob("requests-*.csv") for row in read_rows(path)]
    assert len(calls) >= 8, console[-3000:]
    failed = [
        (row["error_kind"], row["error_message"][:200]) for row in calls if row["error_kind"] in FAILURES
    ]
    assert not failed, failed[:5]
    assert {row["transport"] for row in calls} == {transport}

    # Signed in once, then renewed in the background as each token neared its end.
    auth = [row for path in out.glob("auth-*.csv") for row in read_rows(path)]
    refreshes = [row for row in auth if row["event"] == "refresh"]
    assert len(refreshes) >= 2, auth
    assert not [row for row in auth if row["event"] == "refresh_failed"], auth
    stats = emulator_stats(url)["oauth"]
    assert stats["tokens_issued"] >= 2 and stats["refusals_by_status"] == {"401": 0, "403": 0}, stats

    # The emulator saw Vertex calls (priced at the regional rate, under the budget).
    run = json.loads((out / "run.json").read_text())
    assert (run["settings"]["backend"], run["settings"]["project"], run["settings"]["location"]) == (
        "vertex",
        "p",
        "us-central1",
    )
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Vertex AI sign-in" in report and "Access-token renewals" in report

    # Neither the private key nor any token is in the console or any file of the run.
    assert not leaks(console, account.private_key_pem), leaks(console, account.private_key_pem)
    for path in (p for p in out.rglob("*") if p.is_file()):
        found = leaks(path.read_text(encoding="utf-8", errors="replace"), account.private_key_pem)
        assert not found, (path.name, found)


def test_a_key_the_token_endpoint_refuses_stops_the_run_before_any_load(
    repo_root: Path, tmp_path: Path, vertex_env: dict[str, str], start_emulator
) -> None:
    """No token, no run: the first sign-in happens before the load, and its failure is one line."""
    emulator = start_emulator(time_scale=0.05)
    account = write_service_account(tmp_path / "sa.json", token_uri=f"{emulator.url}/nowhere", project_id="p")
    proc = run_locust(
        repo_root, {**vertex_env, "GOOGLE_APPLICATION_CREDENTIALS": str(account.path)},
        "--backend", "vertex", "--project", "p", "--host", emulator.url, "--max-cost", "1",
        "--transport", "http", "-u", "1", "-t", "5s", "--results-dir", str(tmp_path / "run"),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    lines = [line for line in console.splitlines() if "no access token" in line]
    assert lines and "Traceback" not in console, console[-3000:]
    assert not leaks(console, account.private_key_pem)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--transport", "legacy"), "--transport legacy cannot reach Vertex AI"),
        (("--location", "nowhere 1"), "is not a Vertex AI location"),
    ],
)
def test_what_a_vertex_run_cannot_do_is_one_line_and_exit_2(
    repo_root: Path, tmp_path: Path, vertex_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    proc = run_locust(
        repo_root, vertex_env, "--backend", "vertex", "-u", "1", "-t", "3s",
        "--results-dir", str(tmp_path / "run"), *args,
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    assert message in console and "Traceback" not in console, console[-3000:]


def test_missing_credentials_say_what_to_set(
    repo_root: Path, tmp_path: Path, vertex_env: dict[str, str], start_emulator
) -> None:
    """A --host and no usable credentials: one line naming the ways in, no call sent."""
    emulator = start_emulator(time_scale=0.05)
    env = {**vertex_env, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")}
    proc = run_locust(
        repo_root, env, "--backend", "vertex", "--project", "p", "--host", emulator.url,
        "--max-cost", "1", "-u", "1", "-t", "3s", "--results-dir", str(tmp_path / "run"),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2, console[-3000:]
    lines = [line for line in console.splitlines() if "no Google Cloud credentials for Vertex AI" in line]
    assert len(lines) == 1 and "GOOGLE_APPLICATION_CREDENTIALS" in lines[0], console[-3000:]
    assert "Traceback" not in console, console[-3000:]
    assert emulator_stats(emulator.url)["requests_total"] == 0


def test_each_worker_of_a_distributed_vertex_run_signs_in_once(
    repo_root: Path, tmp_path: Path, vertex_env: dict[str, str]
) -> None:
    """--processes 2 against the bundled emulator: the options (backend, project) reach the workers
    with the first spawn message, each signs in once before its users start, and the master (which
    sends no calls) does not."""
    from tests.metrics.llm_helpers import own_master_port

    out = tmp_path / "run"
    proc = run_locust(
        repo_root, vertex_env, "--backend", "vertex", "--project", "dist-project", "--transport", "http",
        "--processes", "2", *own_master_port(), "--mix", "moderation=1", "-u", "4", "-r", "4", "-t", "6s",
        "--results-dir", str(out),
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-4000:]
    auth_logs = sorted(path.name for path in out.glob("auth-*.csv"))
    assert len(auth_logs) == 2 and all(name.startswith("auth-worker-") for name in auth_logs), auth_logs
    for path in out.glob("auth-*.csv"):
        assert [row["event"] for row in read_rows(path)] == ["refresh"], path.name
    calls = [row for path in out.glob("requests-*.csv") for row in read_rows(path)]
    assert calls and not [row for row in calls if row["error_kind"] in FAILURES], calls[:3]
    assert console.count("signed in for project dist-project") == 2, console[-3000:]
