"""The users' part of the run context: this process's settings, prices, levers and prepared calls.

Kept in the environment's run context (core/context.py), set at Locust's init by lifecycle/ (or by
a test with `use_settings`), read by every user. Nothing here lives on a class or in a module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.context import run_context

if TYPE_CHECKING:
    from users.call import CallSpec
    from users.pricing import PriceTable
    from users.scenario_options import ScenarioSettings
    from users.settings import GeminiSettings
    from users.vertex import VertexAccess


@dataclass
class UsersState:
    settings: GeminiSettings | None = None
    prices: PriceTable | None = None
    scenarios: ScenarioSettings | None = None  # the levers the prepared calls were built with
    specs: dict[str, list[CallSpec]] = field(default_factory=dict)  # prepared calls, by scenario
    specs_key: tuple[Any, ...] | None = None  # the options `specs` were built from
    offered_classes: list[type] | None = None  # every class the locustfile offered, before a mix
    mix_applied: str | None = None
    # Prepared calls re-targeted at a second model (users/retarget.py), by (id(spec), model).
    retargeted: dict[tuple[int, str], tuple[CallSpec, CallSpec]] = field(default_factory=dict)
    preparation: Any = None  # users.preparation.Preparation, on nodes that prepare
    # Vertex runs: this process's way in (path, token source), and what it was built from.
    vertex: VertexAccess | None = None
    vertex_key: tuple[Any, ...] | None = None
    # Set when the process starts to quit: a user Locust still spawns after that (a start racing a
    # Ctrl-C) makes no call, since the emulator and the request log are already going away.
    quitting: bool = False
    _user_numbers: dict[str, Iterator[int]] = field(default_factory=dict)

    def next_user_number(self, scenario: str) -> int:
        """0, 1, 2 ... for the users of one scenario in this process, across the whole run."""
        return next(self._user_numbers.setdefault(scenario, itertools.count()))


def users_state(environment: Any) -> UsersState:
    return run_context(environment).ensure(UsersState)


def use_settings(environment: Any, settings: GeminiSettings, prices: PriceTable) -> UsersState:
    """Set this run's Gemini settings and prices (init does it; tests driving users do it too)."""
    state = users_state(environment)
    state.settings = settings
    state.prices = prices
    return state


def settings_of(environment: Any) -> GeminiSettings:
    settings = users_state(environment).settings
    if settings is None:
        raise LookupError("no Gemini settings yet: they are set at Locust's init (users.state.use_settings)")
    return settings
