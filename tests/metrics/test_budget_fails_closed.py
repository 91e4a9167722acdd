"""The budget fails closed end to end (issue 14): against an emulator the user started and passed
with --host (the code path of a real host), a model with no price refuses to start, sending nothing;
a priced Gemini 3 model stops on its budget; a model the host does not serve stops before load."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FAKE_KEY = "AIzaSyFAKE-e2e-test-key-0123456789abcdef"


def test_unpriced_model_against_a_given_host_refuses_to_start(
    start_emulator, run_headless, tmp_path: Path
) -> None:
    emulator = start_emulator()
    proc, output = run_headless(
        tmp_path / "r", "-u", "1", "-r", "1", "-t", "5s", "--host", emulator.url,
        "--api-key", FAKE_KEY, "--model", "some-unpriced-model",
    )  # fmt: skip
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    refusals = [line for line in proc.stderr.splitlines() if "some-unpriced-model" in line]
    assert len(refusals) == 1, output[-3000:]
    assert "no price known" in refusals[0] and "--pricing FILE" in refusals[0]
    assert FAKE_KEY not in output
    assert emulator.stats()["requests_total"] == 0


def test_a_gemini_3_run_against_a_given_host_stops_on_its_budget(
    start_emulator, run_headless, tmp_path: Path
) -> None:
    """Priced from the catalogue, thinking counted at the output price: a tiny budget ends the run."""
    emulator = start_emulator(profile="fast")
    out = tmp_path / "r"
    proc, output = run_headless(
        out, "-u", "2", "-r", "2", "-t", "300s", "--host", emulator.url, "--api-key", FAKE_KEY,
        "--model", "gemini-3.8-flash", "--max-cost", "0.001", "--mix", "moderation=1",
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, output[-3000:]
    assert "cost budget reached" in output and "Traceback" not in output
    run = json.loads((out / "run.json").read_text())
    assert run["budget"]["reached"] is True and run["budget"]["spent_usd"] >= 0.001
    logged = [row for path in out.glob("requests-*.csv") for row in csv.DictReader(path.open())]
    answered = [row for row in logged if not row["error_kind"]]
    assert answered and all(row["model"] == "gemini-3.8-flash" for row in logged)
    # Thinking is billed: its part of the cost is there, at the output price.
    assert all(int(row["thoughts_tokens"]) > 0 for row in answered)
    assert all(0 < float(row["thoughts_cost_usd"]) < float(row["cost_usd"]) for row in answered)
    assert FAKE_KEY not in output


def test_a_model_the_host_does_not_serve_stops_before_load_with_the_apis_message(
    start_emulator, run_headless, tmp_path: Path
) -> None:
    """One models.get before load: a priced model id the host answers 404 is one line and exit 2,
    not a run of 404s."""
    emulator = start_emulator()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"gemini-9-imaginary": {"input": 1.0, "output": 2.0}}}))
    proc, output = run_headless(
        tmp_path / "r", "-u", "1", "-r", "1", "-t", "5s", "--host", emulator.url, "--api-key", FAKE_KEY,
        "--model", "gemini-9-imaginary", "--pricing", str(prices),
    )  # fmt: skip
    assert proc.returncode == 2, output[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "gemini-9-imaginary" in line and "404" in line]
    assert len(lines) == 1 and "is not found" in lines[0], output[-3000:]
    assert "Traceback" not in output and FAKE_KEY not in output
    stats = emulator.stats()
    assert stats["requests_total"] == 1  # the models.get, nothing else
