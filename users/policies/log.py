"""The policy log, policy-<role>-<hostname>-<pid>.csv (core/results.POLICY_LOG): every change of a
process's client policy (a limit, the master's shared signal, a breaker's state, the limiter's
rates), one row each (metrics.event_log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core import results as layout
from metrics.event_log import EventLog


class PolicyLog(EventLog):
    def __init__(self, environment: Any, role: str, wall_clock: Callable[[], float] = time.time) -> None:
        super().__init__(environment, layout.POLICY_LOG, role)
        self.wall_clock = wall_clock

    def event(self, component: str, event: str, value: float, detail: str = "") -> None:
        self.write(
            {
                "timestamp": round(self.wall_clock(), 6),
                "node": self.node,
                "component": component,
                "event": event,
                "value": round(value, 6),
                "detail": detail,
            }
        )
