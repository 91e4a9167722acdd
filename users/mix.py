"""The scenario mix: which scenario users run and with what weight (--mix), and preparing their
requests before the load starts. The scenario figures of a finished run (moderation accuracy and
consistency, raw against optimized images) are reports/scenario_analysis.py's.

    --mix moderation=3,vision=1,stream=1

Names are the registered scenarios' names (users/scenarios.py). Scenarios left out of a non-empty
--mix do not run; an empty --mix keeps every class at its own weight. A weight other than the
class's own runs as a subclass of the same name carrying that weight, so a user's class is never
changed: Locust's dispatcher on the master (or the only process) reads the weights from the list;
workers keep every class so they can run whatever the master hands them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from core.options import OptionError
from users.scenario_options import ScenarioSettings
from users.scenarios import scenario_names, scenario_of
from users.state import settings_of, users_state

logger = logging.getLogger(__name__)
MAX_WEIGHT = 1000


def parse_mix(text: str, known: tuple[str, ...] | None = None) -> dict[str, int]:
    """{scenario: weight} from "moderation=3,vision=1"; OptionError naming --mix when it is wrong."""
    known = known if known is not None else scenario_names()
    weights: dict[str, int] = {}
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        name, sep, raw = (s.strip() for s in piece.partition("="))
        if not sep or not name:
            raise OptionError(f"--mix {text!r}: {piece!r} is not name=weight (e.g. moderation=3,vision=1)")
        if name not in known:
            raise OptionError(f"--mix {text!r}: no scenario named {name!r}; known: {', '.join(known)}")
        if name in weights:
            raise OptionError(f"--mix {text!r}: {name!r} is given twice")
        try:
            weight = int(raw)
        except ValueError:
            raise OptionError(f"--mix {text!r}: weight {raw!r} of {name} is not a whole number") from None
        if not 0 <= weight <= MAX_WEIGHT:
            raise OptionError(f"--mix {text!r}: weight of {name} must be 0 to {MAX_WEIGHT}")
        weights[name] = weight
    if text.strip() and not any(weights.values()):
        raise OptionError(f"--mix {text!r}: give at least one scenario a weight above 0")
    return weights


def default_weight(cls: type) -> int:
    """A class's weight in an empty --mix: its own, or 0 for one that runs only when named (the app
    user needs its --app-url). Locust drops classes of weight 0 before we see them: hence the flag."""
    return cls.weight if getattr(cls, "in_default_mix", True) else 0


def _offered_classes(environment: Environment) -> list[type]:
    """Every class the locustfile offered, remembered before a mix first narrowed the list."""
    state = users_state(environment)
    if state.offered_classes is None:
        state.offered_classes = list(environment.user_classes)
    return state.offered_classes


def _weighted(cls: type, weight: int) -> type:
    """`cls` at another weight: a subclass of the same name, so the class itself stays as written."""
    if weight == cls.weight:
        return cls
    return type(
        cls.__name__,
        (cls,),
        {"weight": weight, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )


def apply_mix(environment: Environment) -> None:
    """Weigh the scenario classes by --mix and drop the classes it leaves out.

    Call from init (headless and web UI) and from test_start (the web UI form may have changed
    --mix). No-op on workers. Raises OptionError naming --mix.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    text = str(getattr(environment.parsed_options, "mix", "") or "")
    offered = _offered_classes(environment)
    weights = parse_mix(text, tuple(scenario_of(cls) for cls in offered))
    chosen = []
    for cls in offered:
        weight = weights.get(scenario_of(cls), 0) if weights else default_weight(cls)
        if weight > 0 or cls.fixed_count:
            chosen.append(_weighted(cls, weight or cls.weight))
    environment.user_classes[:] = chosen
    applied = ", ".join(f"{scenario_of(c)}={c.weight}" for c in chosen)
    state = users_state(environment)
    previous, state.mix_applied = state.mix_applied, applied
    if applied == previous:
        return
    if text:
        logger.info("scenario mix: %s", applied)
    runner = environment.runner
    if previous is not None and runner is not None and getattr(runner, "_users_dispatcher", None) is not None:
        # A web-UI rerun reuses the dispatcher of the previous run, which read the class list and
        # weights when it was built; Locust builds a new one when it is None (Locust has no public
        # call for it). This runs in test_start, before anything is spawned.
        runner._users_dispatcher = None


def active_scenarios(environment: Environment, scenario: ScenarioSettings) -> list[type]:
    """Scenario classes this process may run: in the locustfile, and not left out by --mix."""
    weights = parse_mix(scenario.mix)
    classes = users_state(environment).offered_classes or environment.user_classes
    return [
        cls
        for cls in classes
        if hasattr(cls, "build_specs")
        and (weights.get(scenario_of(cls), 0) if weights else default_weight(cls)) > 0
    ]


def prepare_scenarios(environment: Environment) -> None:
    """Validate the scenario options and build every active scenario's requests, once per process.

    Needs the run's settings (users.state.use_settings). Call after they are set: in init (local / master) and in
    test_start (workers; and the web UI, whose form may have changed the options: a rebuild only
    happens when an option changed). On the master only options and files are checked: it sends
    no requests. Raises OptionError, FixtureError or ImageLimitError (all ValueError) with one line.
    """
    scenario = ScenarioSettings.from_options(environment.parsed_options)
    settings = settings_of(environment)
    state = users_state(environment)
    key = (
        scenario,
        settings.model,
        settings.max_output_tokens,
        settings.temperature,
        settings.thinking_budget,
        settings.thinking_level,
    )
    if state.specs_key == key:
        return
    classes = active_scenarios(environment, scenario)
    state.scenarios = scenario
    if isinstance(environment.runner, MasterRunner):
        _check_files(scenario, classes)
        state.specs_key = key
        return
    specs: dict[str, list[Any]] = {}
    for cls in classes:
        started = time.perf_counter()
        specs[cls.scenario] = cls.build_specs(settings, scenario)
        logger.info(
            "%s: %d requests prepared in %.1fs",
            cls.scenario,
            len(specs[cls.scenario]),
            time.perf_counter() - started,
        )
    state.specs = specs
    state.retargeted.clear()  # built from the old specs: keep none of them alive
    state.specs_key = key


def check_scenario_inputs(environment: Environment, options: Any) -> None:
    """The active scenarios' own checks (options, fixture files) for these options, without building
    a request: what a start form or a comparison checks before anything runs. Raises OptionError or
    FixtureError with one line."""
    scenario = ScenarioSettings.from_options(options)
    _check_files(scenario, active_scenarios(environment, scenario))


def _check_files(scenario: ScenarioSettings, classes: list[type]) -> None:
    """The master builds no calls, but a bad fixture file must still stop it at start-up."""
    for cls in classes:
        check = getattr(cls, "check_inputs", None)
        if check is not None:
            check(scenario)
