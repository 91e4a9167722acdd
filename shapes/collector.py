"""Per-call samples for judging capacity steps, fed by Locust's request event.

Each sample is a plain tuple (start epoch, e2e ms, ttft ms or None, error kind, cost USD, schedule
lag ms or None, time per output token ms or None) so a worker can ship its samples to the master inside its 3-second report. A step
owns the calls that *started* in it: the rate in force when a call began is the rate it measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.slo import WindowStats
from shapes.clock import REAL_CLOCK, Clock

Sample = tuple[float, float | None, float | None, str, float, float | None, float | None]
GENERIC_FAILURE = "failure"  # a failed call whose context carries no Outcome (not a Gemini user)


def sample_from_request(
    response_time: float | None,
    exception: BaseException | None,
    context: Mapping[str, Any] | None,
    start_time: float | None = None,
    clock: Clock = REAL_CLOCK,
) -> Sample:
    """A sample from one request event; prefers the Outcome dict the suite puts in context["outcome"].

    `clock` dates a call whose event carries no start time (its end, less its response time).
    """
    outcome = (context or {}).get("outcome") if isinstance(context, Mapping) else None
    if outcome is not None:
        # The suite sends the Outcome itself; a plain dict of its fields (tests, other tools) works too.
        get = outcome.get if isinstance(outcome, Mapping) else lambda name: getattr(outcome, name, None)
        return (
            float(get("start_time") or start_time or clock.now()),
            _float_or_none(get("e2e_ms")),
            _float_or_none(get("ttft_ms")),
            str(get("error_kind") or ""),
            float(get("cost_usd") or 0.0),
            _float_or_none(get("schedule_lag_ms")),
            _float_or_none(get("tpot_ms")),
        )
    e2e = _float_or_none(response_time)
    started = start_time if start_time is not None else clock.now() - (e2e or 0.0) / 1000.0
    return (float(started), e2e, None, GENERIC_FAILURE if exception else "", 0.0, None, None)


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


class SampleCollector:
    """Keeps samples while a capacity search runs; off (and free) otherwise."""

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self.clock = clock
        self.enabled = False
        self.forward = False  # a worker forwards its samples to the master instead of keeping them
        self._samples: list[Sample] = []
        self._unsent: list[Sample] = []  # worker side: collected since the last report to the master

    def on_request(
        self,
        response_time: float | None = None,
        exception: BaseException | None = None,
        context: Mapping[str, Any] | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        """Listener for environment.events.request."""
        if self.enabled:
            self.add(sample_from_request(response_time, exception, context, start_time, self.clock))

    def add(self, sample: Sample) -> None:
        (self._unsent if self.forward else self._samples).append(sample)

    def extend(self, samples: Iterable[Iterable[Any]]) -> None:
        """Samples that arrived from a worker (msgpack turns tuples into lists)."""
        for sample in samples:
            self._samples.append(tuple(sample))  # type: ignore[arg-type]

    def drain_unsent(self) -> list[Sample]:
        unsent, self._unsent = self._unsent, []
        return unsent

    def window(self, start_epoch: float, end_epoch: float) -> WindowStats:
        stats = WindowStats(duration_s=max(0.0, end_epoch - start_epoch))
        for started, e2e, ttft, kind, cost, lag, tpot in self._samples:
            if start_epoch <= started < end_epoch:
                stats.add(error_kind=kind, e2e_ms=e2e, ttft_ms=ttft, cost_usd=cost, lag_ms=lag, tpot_ms=tpot)
        return stats

    def forget_before(self, epoch: float) -> None:
        """Drop samples of windows already judged, so a long search keeps little in memory."""
        self._samples = [s for s in self._samples if s[0] >= epoch]

    def clear(self) -> None:
        self._samples.clear()
        self._unsent.clear()
