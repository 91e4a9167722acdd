"""One run context per Locust Environment: the one place where every room keeps its per-run state.

Locust hands every listener, user and shape the same `Environment`; the suite attaches one
`RunContext` to it, once, as `environment.gemini`. Each room keeps its own typed part of the run in
a slot keyed by that part's class (users: settings and prepared calls; shapes: the pacer and the
stage; metrics: the role's metrics; lifecycle: the emulator and results folder), so no room has to
import the rooms above it, nothing lives in module globals, and two environments in one process (as
in tests) never share state.

    ctx = run_context(environment)
    pacer = ctx.get(ArrivalPacer)              # None until someone put one
    state = ctx.ensure(ScenarioState)          # made on first use
    ctx.put(MasterMetrics(...), as_=LlmMetrics)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ATTRIBUTE = "gemini"


class RunContext:
    """Typed slots, one per kind of per-run state."""

    def __init__(self) -> None:
        self._slots: dict[type, Any] = {}

    def get(self, kind: type[T]) -> T | None:
        return self._slots.get(kind)

    def require(self, kind: type[T]) -> T:
        """The slot's value; a LookupError naming what is missing when nobody set it up."""
        value = self._slots.get(kind)
        if value is None:
            raise LookupError(f"the run has no {kind.__name__} yet: it is set up at Locust's init")
        return value

    def ensure(self, kind: type[T], factory: Callable[[], T] | None = None) -> T:
        """The slot's value, made by `factory` (default: the class itself) on first use."""
        value = self._slots.get(kind)
        if value is None:
            value = (factory or kind)()
            self._slots[kind] = value
        return value

    def put(self, value: T, as_: type | None = None) -> T:
        """Set a slot: keyed by `as_` (a base class that readers ask for) or by the value's class."""
        self._slots[as_ or type(value)] = value
        return value

    def drop(self, kind: type) -> Any:
        return self._slots.pop(kind, None)


def run_context(environment: Any) -> RunContext:
    """The environment's run context, attached on first use."""
    context = getattr(environment, ATTRIBUTE, None)
    if context is None:
        context = RunContext()
        setattr(environment, ATTRIBUTE, context)
    return context
