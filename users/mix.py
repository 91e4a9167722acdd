"""The scenario mix: which scenario users run and with what weight (--mix), and preparing their
requests before the load starts. The scenario figures of a finished run (moderation accuracy and
consistency, raw against optimized images) are reports/scenario_analysis.py's.

    --mix moderation=3,vision=1,stream=1

Names are the classes' `scenario` attribute. Scenarios left out of a non-empty --mix do not run;
an empty --mix keeps every class at its own weight. The weights live on the classes (`weight`),
which Locust's dispatcher reads on the master (or the only process); workers keep every class so
they can run whatever the master hands them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from core.options import OptionError
from users.moderation import TextModerationUser
from users.scenario_options import ScenarioSettings
from users.streaming import StreamingUser
from users.vision import VisionUser

logger = logging.getLogger(__name__)
SCENARIO_CLASSES: dict[str, type] = {
    cls.scenario: cls for cls in (TextModerationUser, VisionUser, StreamingUser)
}
MAX_WEIGHT = 1000


def parse_mix(text: str, known: tuple[str, ...] = tuple(SCENARIO_CLASSES)) -> dict[str, int]:
    """{scenario: weight} from "moderation=3,vision=1"; OptionError naming --mix when it is wrong."""
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


def _all_scenario_classes(environment: Environment) -> list[type]:
    """Every class the locustfile offered, remembered before a mix first narrowed the list."""
    remembered = getattr(environment, "gemini_all_user_classes", None)
    if remembered is None:
        remembered = list(environment.user_classes)
        environment.gemini_all_user_classes = remembered
    return remembered


def _default_weights(classes: list[type]) -> dict[type, int]:
    saved = {}
    for cls in classes:
        saved[cls] = cls.__dict__.get("_gemini_default_weight", cls.weight)
        cls._gemini_default_weight = saved[cls]
    return saved


def apply_mix(environment: Environment) -> None:
    """Set each scenario class's weight from --mix and drop the classes it leaves out.

    Call from init (headless and web UI) and from test_start (the web UI form may have changed
    --mix). No-op on workers. Raises OptionError naming --mix.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    text = str(getattr(environment.parsed_options, "mix", "") or "")
    classes = _all_scenario_classes(environment)
    by_scenario = {getattr(cls, "scenario", cls.__name__): cls for cls in classes}
    weights = parse_mix(text, tuple(by_scenario))
    defaults = _default_weights(classes)
    chosen = []
    for cls in classes:
        weight = weights.get(getattr(cls, "scenario", cls.__name__), 0) if weights else defaults[cls]
        if weight > 0 or cls.fixed_count:
            cls.weight = weight or cls.weight
            chosen.append(cls)
    environment.user_classes[:] = chosen
    applied = ", ".join(f"{getattr(c, 'scenario', c.__name__)}={c.weight}" for c in chosen)
    previous = getattr(environment, "gemini_mix_applied", None)
    environment.gemini_mix_applied = applied
    if applied == previous:
        return
    if text:
        logger.info("scenario mix: %s", applied)
    runner = environment.runner
    if previous is not None and runner is not None and getattr(runner, "_users_dispatcher", None) is not None:
        # A web-UI rerun reuses the dispatcher of the previous run, which read the class list and
        # weights when it was built; Locust builds a new one when it is None. This runs in
        # test_start, before anything is spawned.
        runner._users_dispatcher = None


def active_scenarios(environment: Environment, scenario: ScenarioSettings) -> list[type]:
    """Scenario classes this process may run: in the locustfile, and not left out by --mix."""
    weights = parse_mix(scenario.mix, tuple(SCENARIO_CLASSES))
    classes = getattr(environment, "gemini_all_user_classes", None) or environment.user_classes
    return [
        cls
        for cls in classes
        if hasattr(cls, "build_specs") and (not weights or weights.get(getattr(cls, "scenario", ""), 0) > 0)
    ]


def prepare_scenarios(environment: Environment) -> None:
    """Validate the scenario options and build every active scenario's requests, once per process.

    Needs environment.gemini_settings. Call after it is set: in init (local / master) and in
    test_start (workers; and the web UI, whose form may have changed the options: a rebuild only
    happens when an option changed). On the master only options and files are checked: it sends
    no requests. Raises OptionError, FixtureError or ImageLimitError (all ValueError) with one line.
    """
    scenario = ScenarioSettings.from_options(environment.parsed_options)
    settings = environment.gemini_settings
    key = (
        scenario,
        settings.model,
        settings.max_output_tokens,
        settings.temperature,
        settings.thinking_budget,
    )
    if getattr(environment, "gemini_specs_key", None) == key:
        return
    classes = active_scenarios(environment, scenario)
    environment.gemini_scenarios = scenario
    if isinstance(environment.runner, MasterRunner):
        _check_files(scenario, classes)
        environment.gemini_specs_key = key
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
    environment.gemini_specs = specs
    environment.gemini_specs_key = key


def _check_files(scenario: ScenarioSettings, classes: list[type]) -> None:
    from fixtures.chat import load_chat_prompts
    from fixtures.images import folder_images
    from fixtures.moderation import load_posts

    names = {cls.scenario for cls in classes}
    if "moderation" in names and scenario.posts_file:
        load_posts(scenario.posts_file)
    if "stream" in names and scenario.prompts_file:
        load_chat_prompts(scenario.prompts_file)
    if "vision" in names and scenario.images_dir:
        folder_images(scenario.images_dir)
