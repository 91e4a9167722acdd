"""The distributed signal: N workers follow ONE AIMD limit (and split the limiter's rates), so they
do not each overshoot the project's quota.

    worker ──MSG_COUNTS (about once a second: answered, congested, longest RetryInfo)──▶ master
    master ──MSG_SIGNAL (run-wide limit, workers, each worker's share, hold)──────────▶ workers

The master runs the one AimdController on the sums, every TICK_S, with bounds scaled to the
workers connected (each share at least --aimd-min, so the shares add up to the signal exactly), and
sends a signal when the limit, the number of workers or a hold changed; it logs `signal` events
(value = run-wide limit, detail = workers). A worker's limit is exactly limit / workers, logged as a
`limit` event on every signal (detail names the signal it follows). A signal that arrives before the
worker's test starts (the master sends one at its test_start, before the spawn message) is kept and
applied when the worker builds its policy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import gevent

from users.policies.aimd import AimdController, Counts
from users.policies.options import PolicySettings

logger = logging.getLogger(__name__)

MSG_COUNTS = "gemini_policy_counts"
MSG_SIGNAL = "gemini_policy_signal"
TICK_S = 1.0


@dataclass(frozen=True, slots=True)
class Signal:
    limit: float | None  # the run-wide AIMD limit; None without aimd
    workers: int
    hold_until: float = 0.0  # epoch s: hold new attempts until then (the latest RetryInfo reported)

    @property
    def share(self) -> float | None:
        return None if self.limit is None else self.limit / self.workers

    def detail(self) -> str:
        return f"signal={self.limit:g} workers={self.workers}"

    def as_message(self) -> dict[str, Any]:
        return {"limit": self.limit, "workers": self.workers, "hold_until": self.hold_until}

    @classmethod
    def from_message(cls, data: Any) -> Signal:
        data = data or {}
        limit = data.get("limit")
        return cls(
            None if limit is None else float(limit),
            max(1, int(data.get("workers") or 1)),
            float(data.get("hold_until") or 0.0),
        )


class MasterSignal:
    """The master's side: gathers the workers' counts, runs the controller, shares the limit out."""

    def __init__(self, environment: Any, log: Any, clock: Any = time.monotonic) -> None:
        self.environment = environment
        self.log = log
        self.clock = clock
        self.settings: PolicySettings | None = None
        self.controller: AimdController | None = None
        self.workers = 0
        self.pending = Counts()
        self.sent: Signal | None = None
        self.held_until = 0.0
        self._loop: gevent.Greenlet | None = None
        environment.runner.register_message(MSG_COUNTS, self._on_counts)

    def _on_counts(self, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        self.pending.answered += int(data.get("answered") or 0)
        self.pending.congested += int(data.get("congested") or 0)
        self.pending.hold_until = max(self.pending.hold_until, float(data.get("hold_until") or 0.0))

    def start(self, settings: PolicySettings) -> None:
        """A test starts: a fresh controller, the first signal sent before the spawn messages."""
        self.stop()
        self.settings = settings
        self.pending = Counts()
        self.sent = None
        self.held_until = 0.0
        self.workers = self._connected()
        self.controller = None
        if settings.aimd is not None:
            bounds = self._bounds(self.workers)
            self.controller = AimdController(settings.aimd, *bounds)
        self._publish()
        self._loop = gevent.spawn(self._forever)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None

    def _connected(self) -> int:
        return max(1, int(getattr(self.environment.runner, "worker_count", 1) or 1))

    def _bounds(self, workers: int) -> tuple[float, float]:
        aimd = self.settings.aimd  # type: ignore[union-attr]
        minimum = aimd.minimum * workers
        return minimum, max(minimum, aimd.maximum)

    def _forever(self) -> None:
        while True:
            gevent.sleep(TICK_S)
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not end the signal for the run
                logger.exception("client policy: the shared signal's update failed")

    def tick(self) -> None:
        workers = self._connected()
        counts, self.pending = self.pending, Counts()
        if self.controller is not None:
            if workers != self.workers:
                self.controller.bound(*self._bounds(workers))
            if counts.congested:
                self.controller.congested(self.clock())
            elif counts.answered:
                self.controller.answered(counts.answered)
        self.workers = workers
        self._publish(counts.hold_until)

    def _publish(self, hold_until: float = 0.0) -> None:
        limit = None if self.controller is None else self.controller.limit
        before = self.sent
        new_hold = hold_until > self.held_until
        self.held_until = max(self.held_until, hold_until)
        signal = Signal(limit, self.workers, self.held_until)
        if before is not None and (before.limit, before.workers) == (limit, self.workers) and not new_hold:
            return
        if limit is not None and (before is None or (before.limit, before.workers) != (limit, self.workers)):
            self.log.event("aimd", "signal", limit, str(self.workers))
        self.sent = signal
        self.environment.runner.send_message(MSG_SIGNAL, signal.as_message())


class WorkerSignal:
    """A worker's side: follows the master's signal and sends its counts about once a second."""

    def __init__(self, environment: Any, apply: Any) -> None:
        self.environment = environment
        self.apply = apply  # Signal -> None: hands it to this process's policy, when it has one
        self.latest: Signal | None = None
        self._loop: gevent.Greenlet | None = None
        environment.runner.register_message(MSG_SIGNAL, self._on_signal)

    def _on_signal(self, msg: Any, **_: Any) -> None:
        self.latest = Signal.from_message(msg.data)
        self.apply(self.latest)

    def start(self, drain: Any) -> None:
        """Send what `drain()` (-> Counts) gathered, every TICK_S, until stop()."""
        self.stop()
        self._loop = gevent.spawn(self._forever, drain)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None

    def _forever(self, drain: Any) -> None:
        while True:
            gevent.sleep(TICK_S)
            counts = drain()
            if counts:
                self.environment.runner.send_message(
                    MSG_COUNTS,
                    {
                        "answered": counts.answered,
                        "congested": counts.congested,
                        "hold_until": counts.hold_until,
                    },
                )
