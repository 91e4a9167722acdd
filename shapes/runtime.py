"""Per-environment run state and its wiring to Locust: stages, pacing, capacity samples, messages.

The shape runs on the master (or the only process). Workers make the calls, so they learn the
current stage, their share of the arrival rate and whether to collect samples from one message the
shape sends each tick (MSG_STATE); they send pacer feedback and samples back inside Locust's
3-second worker report. In a local run the same calls happen in-process, without messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from locust.runners import MasterRunner, WorkerRunner

from core.context import run_context
from shapes import pacing
from shapes.clock import REAL_CLOCK, Clock
from shapes.collector import SampleCollector

logger = logging.getLogger(__name__)

MSG_STATE = "gemini_shapes_state"
REPORT_SAMPLES = "gemini_shapes_samples"
REPORT_PACER = "gemini_shapes_pacer"


@dataclass
class StageLog:
    """Stage names with epoch boundaries, in order; the last one stays open until the run ends."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def enter(self, name: str, start_epoch: float) -> None:
        if self.entries and self.entries[-1]["end"] is None:
            if self.entries[-1]["name"] == name:
                return
            self.entries[-1]["end"] = start_epoch
        self.entries.append({"name": name, "start": start_epoch, "end": None})

    def close(self, end_epoch: float) -> None:
        if self.entries and self.entries[-1]["end"] is None:
            self.entries[-1]["end"] = max(end_epoch, self.entries[-1]["start"])

    def as_list(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.entries]


@dataclass
class ShapeRuntime:
    stage: str = ""
    stage_log: StageLog = field(default_factory=StageLog)
    collector: SampleCollector = field(default_factory=SampleCollector)
    capacity: dict[str, Any] | None = None
    # master: the latest pacer feedback of each worker, by client id
    pacer_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    fresh_pacer_report: bool = False  # a worker reported since the shape last sized the pool
    open_model: bool = False
    wired: bool = False
    clock: Clock = REAL_CLOCK  # what the shape, the pacer, the stage log and the samples read the time from

    def begin_run(self) -> None:
        self.stage = ""
        self.stage_log = StageLog()
        self.capacity = None
        self.pacer_reports.clear()
        self.collector.clear()
        self.open_model = False


def runtime_for(environment: Any) -> ShapeRuntime:
    """The environment's shape state, kept in its run context."""
    return run_context(environment).ensure(ShapeRuntime)


def use_clock(environment: Any, clock: Clock) -> None:
    """Make every time reading and wait of this package for `environment` go through `clock`.

    Call before shapes.setup() (a shape reads its clock when it is built, a pacer when it is first
    activated). Production code never needs it: the real clock is the default. Tests pass a ManualClock.
    """
    runtime = runtime_for(environment)
    runtime.clock = clock
    runtime.collector.clock = clock


def is_master(environment: Any) -> bool:
    return isinstance(environment.runner, MasterRunner)


def is_worker(environment: Any) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def worker_count(environment: Any) -> int:
    runner = environment.runner
    return max(1, int(getattr(runner, "worker_count", 1) or 1)) if is_master(environment) else 1


def publish(environment: Any, stage: str, rate: float | None, collect: bool) -> None:
    """Apply the shape's state here, and on a master send it to every worker (rate split evenly)."""
    runtime = runtime_for(environment)
    runtime.stage = stage
    if is_master(environment):
        runtime.open_model = rate is not None
        runtime.collector.enabled = collect
        share = None if rate is None else rate / worker_count(environment)
        environment.runner.send_message(MSG_STATE, {"stage": stage, "rate": share, "collect": collect})
        return
    _apply_state(environment, stage, rate, collect)


def _apply_state(environment: Any, stage: str, rate: float | None, collect: bool) -> None:
    runtime = runtime_for(environment)
    runtime.stage = stage
    runtime.collector.enabled = collect
    runtime.collector.forward = is_worker(environment)
    runtime.open_model = rate is not None
    if rate is None:
        pacing.deactivate(environment)
    else:
        pacing.activate(environment, rate, runtime.clock)


def pacer_signal(environment: Any) -> dict[str, Any] | None:
    """Pacer feedback for sizing the user pool: the local pacer's, or the sum of the workers'."""
    runtime = runtime_for(environment)
    if is_master(environment):
        # Workers report every 3 s and the shape ticks every second: size the pool once per new
        # report, from the latest report of every worker, or a backlog would be counted thrice.
        reports = list(runtime.pacer_reports.values())
        if not reports or not runtime.fresh_pacer_report:
            return None
        runtime.fresh_pacer_report = False
        return {
            "waiting_avg": sum(r.get("waiting_avg", 0.0) for r in reports),
            "backlog": sum(int(r.get("backlog", 0)) for r in reports),
            "max_lag_ms": max(r.get("max_lag_ms", 0.0) for r in reports),
            "rate": sum(r.get("rate", 0.0) for r in reports),
        }
    pacer = pacing.get_pacer(environment)
    return pacer.take_signal() if pacer else None


def end_run(environment: Any, end_epoch: float | None = None) -> None:
    """Close the open stage and stop pacing and collecting (test_stop, or the shape's last tick)."""
    runtime = runtime_for(environment)
    runtime.stage_log.close(end_epoch if end_epoch is not None else runtime.clock.now())
    runtime.stage = ""
    runtime.open_model = False
    runtime.collector.enabled = False
    pacing.deactivate(environment)


def wire(environment: Any) -> None:
    """Register the listeners and the message handler this package needs (once per environment).

    Call from the `init` event on every node: workers need the message handler before the first
    spawn, the master needs the worker-report listener.
    """
    runtime = runtime_for(environment)
    if runtime.wired:
        return
    runtime.wired = True
    events = environment.events
    events.request.add_listener(runtime.collector.on_request)
    events.test_stop.add_listener(lambda environment, **_: end_run(environment))

    if is_worker(environment):

        def on_state(environment: Any, msg: Any, **_: Any) -> None:
            data = msg.data or {}
            _apply_state(environment, str(data.get("stage", "")), data.get("rate"), bool(data.get("collect")))

        environment.runner.register_message(MSG_STATE, on_state)

        def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            pacer = pacing.get_pacer(environment)
            if pacer is not None:
                data[REPORT_PACER] = pacer.take_signal()
            unsent = runtime.collector.drain_unsent()
            if unsent:
                data[REPORT_SAMPLES] = unsent

        events.report_to_master.add_listener(on_report)

    if is_master(environment):

        def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            if REPORT_PACER in data:
                runtime.pacer_reports[client_id] = data[REPORT_PACER]
                runtime.fresh_pacer_report = True
            if REPORT_SAMPLES in data and runtime.collector.enabled:
                runtime.collector.extend(data[REPORT_SAMPLES])

        events.worker_report.add_listener(on_worker_report)
