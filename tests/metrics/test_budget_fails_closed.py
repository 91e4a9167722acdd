"""The budget fails closed end to end (issue 14): against an emulator the user started and passed
with --host (the code path of a real host), a model with no price refuses to start, sending nothing."""

from __future__ import annotations

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
