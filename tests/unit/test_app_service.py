"""Fetching an app run's model calls from the model host (lifecycle/app_service.py): whatever the
host answers, the finish gets rows or a one-line reason, never an exception; and the checks of the
app options."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest

from core.options import OptionError
from lifecycle.app_service import check_app_options, fetch_model_calls
from tests.e2e.services import QuietHandler, loopback_server


class SendLog(QuietHandler):
    """GET /emulator/sends answers `reply` (bytes) with `status`."""

    reply = b"{}"
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self._send(self.status, "application/json", self.reply)


@pytest.fixture
def host() -> Iterator[str]:
    with loopback_server(SendLog) as server:
        yield f"http://127.0.0.1:{server.server_port}"


def answer(reply: object, status: int = 200) -> None:
    SendLog.reply = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
    SendLog.status = status


def record(first: float, **more: object) -> dict[str, object]:
    return {"first_received": first, "last_end": first + 1, "calls": 1, "model_ms": 900.0, "queue_ms": 1.0,
            "prompt_tokens": 10, "output_tokens": 5, "thoughts_tokens": 0, "model": "m", "status": 200,
            "sent": [first + 0.5], **more}  # fmt: skip


def test_the_records_of_the_run_become_rows(host: str) -> None:
    answer(
        {"sends": {"in": record(100.0), "before": record(10.0), "busy": {"received": 100.0}}, "dropped": 3}
    )
    rows, attribution = fetch_model_calls(host, 99.0, 200.0)
    assert attribution.error is None and attribution.records == 1 and attribution.dropped == 3
    (row,) = rows
    # last_sent is when the last call ended (last_end), not the latest request's last piece (sent)
    assert row["request_id"] == "in" and row["last_sent"] == 101.0 and row["first_received"] == 100.0
    assert row["model_ms"] == 900.0 and row["status"] == 200


@pytest.mark.parametrize(
    ("reply", "status", "why"),
    [
        ({}, 404, "/emulator/sends on the model host: it is not the suite's emulator"),
        ({}, 500, "it answered HTTP 500"),
        (b"<html>not json", 200, "could not be read: JSONDecodeError"),
        ([1, 2], 200, "not a send log"),
        ({"sends": {"a": 7}, "dropped": 0}, 200, "the record of 'a' is not an object"),
        (
            {"sends": {"a": record(100.0, calls="two")}, "dropped": 0},
            200,
            "holds a figure that is not a number",
        ),
        ({"sends": {}, "dropped": "many"}, 200, "not a send log"),
    ],
)
def test_a_reply_of_another_shape_is_a_reason_not_an_exception(
    host: str, reply: object, status: int, why: str
) -> None:
    answer(reply, status)
    rows, attribution = fetch_model_calls(host, 99.0, 200.0)
    assert rows == [] and attribution.records == 0
    assert attribution.error is not None and why in attribution.error and "\n" not in attribution.error


def test_a_host_with_a_password_never_shows_it() -> None:
    rows, attribution = fetch_model_calls("http://user:hunter2secret@127.0.0.1", 0.0, 1.0)
    assert rows == [] and attribution.error is not None
    assert "hunter2" not in attribution.error + attribution.source


def options(**values: str) -> argparse.Namespace:
    return argparse.Namespace(**{"mix": "", "app_url": "", "app_command": "", **values})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"app_url": "http://127.0.0.1:8/x"}, "--app-url is given but --mix does not run the app user"),
        ({"mix": "app=1", "app_command": "serve"}, "--app-url does not say where to call it"),
        ({"mix": "app=1", "app_url": "http://127.0.0.1:{port}/x"}, "filled only by --app-command's {port}"),
    ],
)
def test_app_options_that_do_not_fit_together(values: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        check_app_options(options(**values))
    check_app_options(options(mix="app=1", app_url="http://127.0.0.1:{port}/x", app_command="s {port}"))
