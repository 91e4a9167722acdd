"""Scenario levers (prompt size, image mode and size, own fixture files, the mix) and where the
prepared requests of each scenario live.

Requests are built once per process, before users run (users.mix.prepare_scenarios, called at
init by lifecycle/), and kept in the run context's users part (users/state.py). A user that finds
none there (a test driving a user class directly) builds its own with `specs_for`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from core.options import OptionError
from fixtures.loading import FixtureError
from users.call import CallSpec
from users.images import IMAGE_MODES, INLINE_LIMIT_BYTES, MAX_SIDE_DEFAULT
from users.scenarios import scenario_options
from users.settings import GeminiSettings
from users.state import users_state

PROMPT_SIZES = ("short", "medium", "long", "mixed")
IMAGE_MODE_CHOICES = ("raw", "optimized", "both")
IMAGE_SETS = ("small", "full")
MIN_IMAGE_SIDE = 64


def add_scenario_arguments(parser: Any) -> None:
    parser.add_argument(
        "--prompt-size",
        default="mixed",
        choices=PROMPT_SIZES,
        help="which prompts and posts are sent: their length bucket, or mixed for all",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--image-mode",
        default="optimized",
        choices=IMAGE_MODE_CHOICES,
        help="vision: send images raw, optimized (resized JPEG), or both to compare them in one run",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--max-image-side",
        default=MAX_SIDE_DEFAULT,
        type=int,
        help="vision, optimized mode: longest image side in pixels after resizing",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--inline-limit-mb",
        default=INLINE_LIMIT_BYTES / 1024 / 1024,
        type=float,
        help="largest inline request in MiB (100: the API's limit since 2026-01-12, enforced by the emulator "
        "too; it was 20 before)",
    )
    parser.add_argument(
        "--image-set",
        default="small",
        choices=IMAGE_SETS,
        help="generated shelf photos: small (5 images, 640x480 to 7680x4320) or full (10)",
    )
    parser.add_argument(
        "--images-dir", default="", help="vision: a folder of your own .jpg/.png/.webp images"
    )
    parser.add_argument(
        "--prompts-file",
        default="",
        help="stream: your own chat prompts (.jsonl with a prompt field, or one prompt per line)",
    )
    parser.add_argument(
        "--posts-file", default="", help="moderation: your own labelled posts (.jsonl: id, text, label)"
    )
    parser.add_argument(
        "--mix",
        default="",
        help="scenario weights, e.g. moderation=3,vision=1,stream=1 (scenarios left out do not run; "
        "empty: the classes' own weights)",
        include_in_web_ui=True,
    )
    for spec in scenario_options():
        spec.add_to(parser)


@dataclass(frozen=True, slots=True)
class ScenarioSettings:
    prompt_size: str = "mixed"
    image_mode: str = "optimized"
    max_image_side: int = MAX_SIDE_DEFAULT
    inline_limit_bytes: int = INLINE_LIMIT_BYTES
    image_set: str = "small"
    images_dir: str = ""
    prompts_file: str = ""
    posts_file: str = ""
    mix: str = ""
    # The values of the options registered scenarios declare (users/scenarios.py), by flag.
    extra: tuple[tuple[str, str], ...] = ()

    def option(self, flag: str) -> str:
        """A registered scenario's own option, as given ("" when not given and without a default)."""
        return dict(self.extra).get(flag, "")

    @property
    def image_modes(self) -> tuple[str, ...]:
        return IMAGE_MODES if self.image_mode == "both" else (self.image_mode,)

    def sizes(self) -> tuple[str, ...]:
        return ("short", "medium", "long") if self.prompt_size == "mixed" else (self.prompt_size,)

    @classmethod
    def from_options(cls, options: Any) -> ScenarioSettings:
        """Validated levers; `options` may be None (a test's bare Environment): defaults then."""

        def get(name: str, default: Any) -> Any:
            value = getattr(options, name, default) if options is not None else default
            return default if value is None else value

        prompt_size = str(get("prompt_size", "mixed")).strip().lower()
        _choice("--prompt-size", prompt_size, PROMPT_SIZES)
        image_mode = str(get("image_mode", "optimized")).strip().lower()
        _choice("--image-mode", image_mode, IMAGE_MODE_CHOICES)
        image_set = str(get("image_set", "small")).strip().lower()
        _choice("--image-set", image_set, IMAGE_SETS)
        max_side = _number("--max-image-side", get("max_image_side", MAX_SIDE_DEFAULT), int)
        if max_side < MIN_IMAGE_SIDE:
            raise OptionError(
                f"--max-image-side {max_side} is too small: use at least {MIN_IMAGE_SIDE} pixels"
            )
        limit_mb = _number(
            "--inline-limit-mb", get("inline_limit_mb", INLINE_LIMIT_BYTES / 1024 / 1024), float
        )
        if limit_mb <= 0:
            raise OptionError(
                f"--inline-limit-mb {limit_mb:g} must be above 0 (the API's limit is 20 or 100)"
            )
        return cls(
            prompt_size=prompt_size,
            image_mode=image_mode,
            max_image_side=max_side,
            inline_limit_bytes=int(limit_mb * 1024 * 1024),
            image_set=image_set,
            images_dir=str(get("images_dir", "")).strip(),
            prompts_file=str(get("prompts_file", "")).strip(),
            posts_file=str(get("posts_file", "")).strip(),
            mix=str(get("mix", "")).strip(),
            extra=tuple(
                (spec.flag, spec.raw(options) if options is not None else spec.default)
                for spec in scenario_options()
            ),
        )

    def public(self) -> dict[str, Any]:
        """For run.json: every lever (no secrets here)."""
        return asdict(self)


def _choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{flag} {value!r} is not known: choose one of {', '.join(choices)}")


def _number(flag: str, raw: Any, kind: type) -> Any:
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} {raw!r} is not a valid {kind.__name__}") from None


SpecBuilder = Callable[[GeminiSettings, ScenarioSettings], list[CallSpec]]
Item = TypeVar("Item")


def sized_in_fixed_order(
    items: Iterable[Item],
    size_of: Callable[[Item], str],
    scenario: ScenarioSettings,
    *,
    seed: int,
    empty: str,
) -> list[Item]:
    """The fixture items of the --prompt-size bucket(s), shuffled in an order fixed by `seed` (the same
    for every user and every run). FixtureError(empty), a one-line message, when none is left."""
    chosen = [item for item in items if size_of(item) in scenario.sizes()]
    if not chosen:
        raise FixtureError(empty)
    random.Random(seed).shuffle(chosen)
    return chosen


def scenario_settings(environment: Any) -> ScenarioSettings:
    """This run's levers, read once from the options and kept in the run context."""
    state = users_state(environment)
    if state.scenarios is None:
        state.scenarios = ScenarioSettings.from_options(getattr(environment, "parsed_options", None))
    return state.scenarios


def specs_for(
    environment: Any, scenario: str, build: SpecBuilder, settings: GeminiSettings
) -> list[CallSpec]:
    """The prepared requests of one scenario; built here only when nobody prepared them ahead."""
    store = users_state(environment).specs
    specs = store.get(scenario)
    if specs is None:
        specs = build(settings, scenario_settings(environment))
        store[scenario] = specs
    return specs


class PreparedCalls:
    """Mixin for scenario users (before GeminiUser in the bases): each user walks its scenario's
    prepared requests in order, wrapping round, from its own starting point (`start_index`).

    The class gives `build_specs` (a staticmethod SpecBuilder) and `scenario`; GeminiUser gives
    `environment` and `settings`.
    """

    build_specs: Any
    scenario: Any
    environment: Any
    settings: GeminiSettings
    _next: int = 0

    def on_start(self) -> None:
        super().on_start()  # type: ignore[misc]
        self._next = self.start_index()

    def start_index(self) -> int:
        """Where this user starts in the list; every user starts at the first request by default."""
        return 0

    def specs(self) -> list[CallSpec]:
        return specs_for(self.environment, self.scenario, self.build_specs, self.settings)

    def next_call(self) -> CallSpec:
        specs = self.specs()
        spec = specs[self._next % len(specs)]
        self._next += 1
        return spec
