"""At the stop, every logical call is accounted for: a user Locust kills in the middle of a call is
recorded as `cancelled`, with its attempts and their kinds, through the normal path (the request
event, hence the request log and the LLM stats) before its greenlet dies; and --stop-timeout lets a
call under way finish instead.

Real parts: Locust's LocalRunner stops the users as in a run, against a real emulator.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent.event
import pytest
from locust import constant
from locust.env import Environment
from transport_helpers import API_KEY

from core import outcome
from core.outcome import Outcome
from metrics.llm_stats import LlmStats
from metrics.recorder import RequestLog
from users.call import CallSpec, CallTimer
from users.errors import CallError
from users.pricing import PriceTable
from users.retry import RetryPolicy
from users.settings import GeminiSettings
from users.state import use_settings

SPEC = CallSpec(scenario="stop-test", model="gemini-3.5-flash-lite", parts=("Tell me about queues.",))
STREAM = CallSpec(
    scenario="stop-test", model="gemini-3.5-flash-lite", parts=("A long story, please.",), stream=True,
    max_output_tokens=200,
)  # fmt: skip
WAIT_S = 30.0  # bounds a broken feature only: every wait below ends on an event
# Emulated time x10 (the emulator's own time scale): a stall of 3 emulated s is 30 real s, so a stream
# is still stalled when the stop comes.
EMULATOR_CONFIG = {"model_defaults": {"output_tokens_min": 100}, "faults": {"stall_seconds": 3.0}}


class Ceiling(random.Random):
    """Backoff of exactly the policy's ceiling: no jitter in a test that waits for it."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Watched:
    """A user's transport that says when an attempt has failed (the user goes into its backoff)."""

    def __init__(self, inner: Any, failed: gevent.event.Event) -> None:
        self.inner, self.failed, self.name = inner, failed, inner.name

    def call(self, spec: CallSpec, timer: CallTimer) -> Any:
        try:
            return self.inner.call(spec, timer)
        except CallError:
            self.failed.set()
            raise

    def close(self) -> None:
        self.inner.close()


class Run:
    """One Locust environment with a LocalRunner and one user, the suite's recording wired in."""

    def __init__(self, url: str, folder: Path, *, spec: CallSpec, retries: int, backoff_s: float,
                 stop_timeout: float, timeout_s: float = 10.0) -> None:  # fmt: skip
        from users.base import GeminiUser

        self.failed = gevent.event.Event()
        run = self

        class StopUser(GeminiUser):
            scenario = "stop-test"
            think_time = constant(0)

            def next_call(self) -> CallSpec:
                return spec

            def on_start(self) -> None:
                super().on_start()
                self.retry_policy = RetryPolicy(
                    retries=retries, base_s=backoff_s, cap_s=backoff_s, honor_retry_info=False, rng=Ceiling()
                )
                self.transport = Watched(self.transport, run.failed)

        options = argparse.Namespace(
            model=spec.model, transport="http", api_key=API_KEY, max_output_tokens=60, temperature=0.0,
            timeout=timeout_s, retries=retries, results_dir=str(folder),
        )  # fmt: skip
        self.env = Environment(
            user_classes=[StopUser], host=url, parsed_options=options, stop_timeout=stop_timeout
        )
        use_settings(self.env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
        self.events: list[dict[str, Any]] = []
        self.env.events.request.add_listener(lambda **event: self.events.append(event))
        self.log = RequestLog(self.env)
        self.stats = LlmStats(keep_current_window=False)
        self.env.events.request.add_listener(lambda context, **_: self.stats.log(context["outcome"]))
        self.runner = self.env.create_local_runner()

    def start(self) -> None:
        self.runner.start(1, spawn_rate=100)

    def stop(self) -> None:
        """What a run's end does: stop the users, then close the request log (lifecycle/finish.py)."""
        self.runner.stop()
        self.log.close()

    def outcomes(self) -> list[Outcome]:
        return [event["context"]["outcome"] for event in self.events]

    def logged(self) -> list[dict[str, str]]:
        assert self.log.path is not None, "nothing was written to the request log"
        with self.log.path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def close(self) -> None:
        self.runner.quit()
        if not self.log.closed:
            self.log.close()


@pytest.fixture(scope="module")
def emulator(start_emulator):  # noqa: ANN001, ANN201
    return start_emulator("fast", EMULATOR_CONFIG, time_scale=10.0)


def served(emulator) -> int:  # noqa: ANN001
    routes = emulator.stats()["requests_by_route"]
    return sum(n for route, n in routes.items() if "generatecontent" in route.lower())


def stopped_run(
    emulator,
    tmp_path,
    faults: dict,
    event_of: Callable[[Run], Any],
    **run_options: Any,  # noqa: ANN001
) -> tuple[Run, int]:
    """A Run with these faults on, stopped once the event `event_of(run)` is set; with the calls the
    emulator had served before it."""
    emulator.set_faults({"reset": True, **faults})
    before = served(emulator)
    run = Run(emulator.url, tmp_path, **run_options)
    try:
        run.start()
        assert event_of(run).wait(WAIT_S), "the run never reached the moment to stop it"
        run.stop()
    finally:
        run.close()
        emulator.set_faults({"reset": True})
    return run, before


def test_a_call_backing_off_at_the_stop_is_cancelled_with_its_attempts(emulator, tmp_path) -> None:  # noqa: ANN001
    # A minute's backoff after a first 503: only the stop can end this call.
    run, before = stopped_run(
        emulator, tmp_path, {"server_503": 1.0}, lambda run: run.failed,
        spec=SPEC, retries=3, backoff_s=60.0, stop_timeout=0.0,
    )  # fmt: skip

    [cancelled] = run.outcomes()
    assert cancelled.error_kind == outcome.CANCELLED and not cancelled.failed
    assert (cancelled.attempts, cancelled.attempt_kinds) == (1, outcome.SERVER_ERROR)
    assert 0 <= cancelled.backoff_ms < 60_000 and cancelled.e2e_ms >= cancelled.backoff_ms
    assert "backing off" in cancelled.error_message and "server_error (HTTP 503)" in cancelled.error_message
    assert served(emulator) - before == cancelled.attempts
    # Locust counts the call, neither as a failure nor with a time (it measured the stop, not the API).
    [event] = run.events
    assert event["exception"] is None and event["response_time"] is None
    assert run.env.stats.total.num_requests == 1 and run.env.stats.total.num_failures == 0
    # Recorded through the normal path: the request log (still open) and the LLM stats have it.
    [row] = run.logged()
    assert (row["error_kind"], row["attempts"], row["attempt_kinds"]) == ("cancelled", "1", "server_error")
    total = run.stats.row(None)
    assert (total["requests"], total["cancelled"], total["failures"], total["attempts"]) == (1, 1, 0, 1)
    assert total["e2e_p50_ms"] is None, "a cancelled call is not timed"


def test_a_stream_in_flight_at_the_stop_is_cancelled_with_its_chunks(emulator, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import users.base

    chunked = gevent.event.Event()

    class NotifyingTimer(CallTimer):
        def chunk(self, *, has_text: bool, has_thought: bool = False) -> None:
            super().chunk(has_text=has_text, has_thought=has_thought)
            chunked.set()

    monkeypatch.setattr(users.base, "CallTimer", NotifyingTimer)
    # Stopped at the first chunk: the stream is stalled mid-way, 30 s to go, with a 10 s read timeout.
    run, before = stopped_run(
        emulator, tmp_path, {"stream_stall": 1.0, "stall_seconds": 3.0}, lambda run: chunked,
        spec=STREAM, retries=3, backoff_s=0.01, stop_timeout=0.0,
    )  # fmt: skip

    [cancelled] = run.outcomes()
    assert cancelled.error_kind == outcome.CANCELLED
    assert (cancelled.attempts, cancelled.attempt_kinds) == (1, outcome.CANCELLED)
    assert "in flight" in cancelled.error_message
    assert cancelled.chunk_count > 0 and cancelled.ttft_ms is not None, "the chunks that arrived are kept"
    assert served(emulator) - before == 1
    assert [row["error_kind"] for row in run.logged()] == ["cancelled"]


def test_stop_timeout_lets_a_call_under_way_finish(emulator, tmp_path) -> None:  # noqa: ANN001
    # The stop comes in the backoff; --stop-timeout 30 lets the call make its retry and end.
    run, before = stopped_run(
        emulator, tmp_path, {"server_503": 1.0}, lambda run: run.failed,
        spec=SPEC, retries=1, backoff_s=0.3, stop_timeout=30.0,
    )  # fmt: skip

    [finished] = run.outcomes()
    assert (finished.error_kind, finished.http_status) == (outcome.SERVER_ERROR, 503)
    assert (finished.attempts, finished.attempt_kinds) == (2, "server_error;server_error")
    assert served(emulator) - before == 2
    assert [row["error_kind"] for row in run.logged()] == ["server_error"]


def test_a_stop_on_its_way_lands_before_the_call_not_in_its_first_request(
    emulator, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    """Locust kills a waiting user with a callback the hub runs later; if the user wakes first (its
    wait or its pacer slot ends in the same loop turn), the kill must land before the call starts."""
    import gevent

    import shapes

    class KillingPacer:
        """A pacer slot granted just as the stop kills the user (kill without blocking: a callback)."""

        def wait_for_slot(self) -> tuple[float, float]:
            gevent.getcurrent().kill(block=False)
            return 0.0, 0.0

    monkeypatch.setattr(shapes, "get_pacer", lambda environment: KillingPacer())
    emulator.set_faults({"reset": True})
    before = served(emulator)
    run = Run(emulator.url, tmp_path, spec=SPEC, retries=0, backoff_s=0.0, stop_timeout=0.0)
    user = run.env.user_classes[0](run.env)
    user.on_start()
    try:
        calling = gevent.spawn(user.one_call)
        calling.join(WAIT_S)
    finally:
        user.on_stop()
        run.close()
    assert calling.dead and isinstance(calling.value, gevent.GreenletExit)
    assert run.events == [] and served(emulator) == before, "no call started, none counted"
