"""Where scenarios plug in: a scenario is one module with one user class, registered here.

    @register_scenario
    class ToyUser(PreparedCalls, GeminiUser):
        scenario = "toy"                            # its name in --mix and in the results
        options = (OptionSpec("--toy-words", "3", "toy: words per prompt"),)
        build_specs = staticmethod(build_toy_specs)  # (GeminiSettings, ScenarioSettings) -> [CallSpec]

--mix knows every registered name, the parser and the web UI's form get every scenario's options
(read back with `ScenarioSettings.option("--toy-words")`), and preparation builds the calls of each
registered class Locust loaded. The built-in scenarios register themselves when their modules are
imported (loaded here on first use); a user's own scenario module is imported by Locust when it is
passed with -f (`-f locustfile.py,my_scenario.py`).

The registry is a process-wide table of kinds of user (code), never of a run's state.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from core.options import OptionSpec

BUILTIN_MODULES = ("users.moderation", "users.vision", "users.streaming", "users.app")

_SCENARIOS: dict[str, type] = {}
UserClass = TypeVar("UserClass", bound=type)


def register_scenario(cls: UserClass) -> UserClass:
    """Class decorator: add a scenario user class. Its `scenario` name must be new, and it needs a
    `build_specs`; a clash is a programming error (ValueError) caught at import."""
    name = str(getattr(cls, "scenario", "") or "").strip()
    if not name or "=" in name or "," in name:
        raise ValueError(f"{cls.__name__}.scenario {name!r} cannot name a scenario in --mix")
    if not callable(getattr(cls, "build_specs", None)):
        raise ValueError(f"{cls.__name__} has no build_specs: it cannot prepare its calls")
    known = _SCENARIOS.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"scenario {name!r} is already registered by {known.__name__}")
    _SCENARIOS[name] = cls
    return cls


def scenario_classes() -> dict[str, type]:
    """Every registered scenario class, by scenario name (the built-ins first)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    # The built-ins in a fixed order whichever was imported first, then the others as registered.
    order = {module: index for index, module in enumerate(BUILTIN_MODULES)}
    ranked = sorted(_SCENARIOS.items(), key=lambda item: order.get(item[1].__module__, len(order)))
    return dict(ranked)


def scenario_names() -> tuple[str, ...]:
    return tuple(scenario_classes())


def scenario_options() -> tuple[OptionSpec, ...]:
    """The options every registered scenario declares, each flag once."""
    by_flag: dict[str, OptionSpec] = {}
    for cls in scenario_classes().values():
        for spec in getattr(cls, "options", ()):
            by_flag.setdefault(spec.flag, spec)
    return tuple(by_flag.values())


def scenario_of(cls: Any) -> str:
    """The scenario name of a user class (its class name when it is not a scenario)."""
    return str(getattr(cls, "scenario", "") or cls.__name__)
