"""The run's policies as one chain: each attempt admitted by every component in order, settled by
the same components in reverse once it is answered, failed, refused or cut off.

An attempt the breaker sends to its fallback model leaves the chain there: the limiter and AIMD
govern the run's model, and the fallback model has its own quota.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core import outcome as kinds
from users.errors import CallError

Clock = Callable[[], float]


class Shed(CallError):
    """The client's policy chose not to send the attempt (an open breaker with no fallback)."""

    def __init__(self, message: str) -> None:
        super().__init__(kinds.SHED, message)


@dataclass(slots=True)
class Attempt:
    """One attempt as the policies see it; `model` changes when a breaker sends it elsewhere."""

    scenario: str
    model: str
    request_bytes: int = 0
    fallback: bool = False
    admitted: list[Any] = field(default_factory=list)  # the components that let it through
    probe: bool = False  # a half-open breaker's probe


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an admitted attempt ended. `sent` False: it never reached the server (refused further
    down the chain, or the run stopped while it waited)."""

    sent: bool
    kind: str = ""  # "" for an answer
    http_status: int | None = None
    retry_after_s: float | None = None
    prompt_tokens: int | None = None

    @property
    def congestion(self) -> bool:
        """The server said slow down: a 429, or a 503 (overloaded)."""
        return self.sent and (
            self.kind == kinds.RATE_LIMITED or (self.kind == kinds.SERVER_ERROR and self.http_status == 503)
        )

    @property
    def answered(self) -> bool:
        return self.sent and not self.kind


NOT_SENT = Settlement(sent=False)


HELD_MIN_MS = 1.0


@dataclass(slots=True)
class HeldTime:
    """How long the policy has held one call's attempts, a hold under way counted up to now."""

    throttle_ms: float = 0.0
    since: float | None = None  # perf_counter() when the current hold began

    def begin(self, now: float) -> None:
        self.since = now

    def end(self, now: float) -> bool:
        """Close a hold under way (counted into throttle_ms when it lasted HELD_MIN_MS or more: an
        admission that did not wait takes microseconds of CPU, which is no hold); True when there was
        one under way."""
        if self.since is None:
            return False
        held_ms = max(0.0, now - self.since) * 1000.0
        if held_ms >= HELD_MIN_MS:
            self.throttle_ms += held_ms
        self.since = None
        return True


class Component(Protocol):
    name: str

    def admit(self, attempt: Attempt) -> None:
        """Let the attempt through: may wait, raise Shed, or redirect it (attempt.model, .fallback)."""
        ...

    def settle(self, attempt: Attempt, settlement: Settlement) -> None: ...


class PolicyChain:
    def __init__(self, label: str, components: tuple[Component, ...]) -> None:
        self.label = label
        self.components = components

    def component(self, name: str) -> Any:
        return next((c for c in self.components if c.name == name), None)

    def admit(self, attempt: Attempt) -> None:
        try:
            for component in self.components:
                if attempt.fallback:
                    break
                component.admit(attempt)
                attempt.admitted.append(component)
        except BaseException:
            self.settle(attempt, NOT_SENT)
            raise

    def settle(self, attempt: Attempt, settlement: Settlement) -> None:
        admitted, attempt.admitted = attempt.admitted, []
        for component in reversed(admitted):
            component.settle(attempt, settlement)


class EventLog(Protocol):
    def event(self, component: str, event: str, value: float, detail: str = "") -> None: ...


@dataclass(slots=True)
class BuildContext:
    """What a policy's `build` gets: the checked settings, the run's model, the clock and sleep its
    waits use (injected in tests), the policy log, and whether this process follows a master."""

    settings: Any  # users.policies.options.PolicySettings
    model: str
    clock: Clock
    sleep: Callable[[float], object]
    log: EventLog
    follower: bool = False
