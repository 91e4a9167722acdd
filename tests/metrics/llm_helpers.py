"""Helpers for the metrics tests: run the suite's locustfile (plus metrics.llm), read what it wrote."""

from __future__ import annotations

import csv
import json
import socket
import sys
from pathlib import Path
from typing import Any

LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfile.py"
FAKE_KEY = "AIzaSyFAKE-metrics-test-key-0123456789"
# Not loopback by the budget rule (0.0.0.0 is not 127/8), yet a connection to it stays on this
# machine (port 9 is discard, nothing listens): if a refusal ever broke, no packet would leave.
NOT_LOOPBACK = "http://0.0.0.0:9"
# Users stop at their next wait, so no call is cut off mid-flight and every count can match exactly.
FAST = ("--emulator-profile", "fast", "--stop-timeout", "3")


def own_master_port() -> tuple[str, ...]:
    """--processes binds *:5557 by default: concurrent runs would share (and cross-connect) workers."""
    port = str(free_port())
    return ("--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port)


def locust_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def aggregated(path: Path) -> dict[str, str]:
    rows = read_rows(path)
    return next(row for row in rows if row.get("Name", row.get("scenario")) == "Aggregated")


def llm_requests(folder: Path) -> int:
    return int(aggregated(folder / "llm_stats.csv")["requests"])


def locust_requests(folder: Path) -> int:
    return int(aggregated(folder / "locust_stats.csv")["Request Count"])


def emulator_served(folder: Path) -> int:
    """generateContent and streamGenerateContent calls the bundled emulator answered (its own count,
    emulator_stats.json)."""
    stats = json.loads((folder / "emulator_stats.json").read_text())
    assert stats["in_flight"] == 0, "a call was still in flight when the emulator was asked"
    return sum(n for route, n in stats["requests_by_route"].items() if "generatecontent" in route.lower())


def run_json(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "run.json").read_text())
