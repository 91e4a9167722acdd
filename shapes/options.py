"""The shape options: registration with Locust's parser, and reading them back, validated.

Every value is registered as a string (default "" = not given) and parsed here, so the command
line, config files, LOCUST_* variables and the web UI form (which keeps strings for string
defaults) all go through the same checks and the same one-line errors naming the option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shapes.durations import EXAMPLES as DURATION_EXAMPLES
from shapes.durations import parse_duration
from shapes.errors import ShapeOptionError
from shapes.schedules import STAGE_NAMES, step_stage_names

NO_SHAPE = "none"
SHAPE_NAMES = ("ramp", "step", "spike", "soak", "arrival", "capacity")
DEFAULT_MAX_USERS = "100"


@dataclass(frozen=True)
class OptionSpec:
    flag: str
    default: str
    help: str
    shapes: tuple[str, ...]

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("--peak-users", "", "ramp: users at the top of the ramp", ("ramp",)),
    OptionSpec("--ramp-up", "", "ramp: time to go linearly from 0 to --peak-users (e.g. 2m)", ("ramp",)),
    OptionSpec("--hold", "0s", "ramp: time to hold --peak-users", ("ramp",)),
    OptionSpec("--ramp-down", "0s", "ramp: time to go linearly from --peak-users to 0", ("ramp",)),
    OptionSpec("--step-users", "", "step: users added at each step", ("step",)),
    OptionSpec("--step-duration", "", "step, capacity: length of each step (e.g. 1m)", ("step", "capacity")),
    OptionSpec("--steps", "", "step: number of steps", ("step",)),
    OptionSpec("--base-users", "", "spike: baseline users", ("spike",)),
    OptionSpec("--spike-users", "", "spike: users added on top of the baseline during the spike", ("spike",)),
    OptionSpec("--spike-at", "", "spike: time from the start to the spike (e.g. 1m)", ("spike",)),
    OptionSpec("--spike-duration", "", "spike: length of the spike (e.g. 30s)", ("spike",)),
    OptionSpec(
        "--recovery", "", "spike: time at the baseline after the spike, to watch recovery", ("spike",)
    ),
    OptionSpec("--soak-users", "", "soak: users to hold for the whole --run-time", ("soak",)),
    OptionSpec("--warm-up", "0s", "soak: time to go linearly from 0 to --soak-users", ("soak",)),
    OptionSpec("--rate", "", "arrival: target arrivals per second (Poisson, open model)", ("arrival",)),
    OptionSpec(
        "--max-users",
        DEFAULT_MAX_USERS,
        "arrival, capacity: most users the generator may start to keep up with the rate",
        ("arrival", "capacity"),
    ),
    OptionSpec("--start-rate", "", "capacity: arrival rate of the first step, per second", ("capacity",)),
    OptionSpec("--rate-step", "", "capacity: arrival rate added at each step, per second", ("capacity",)),
    OptionSpec(
        "--stage-classes",
        "",
        "which user classes a stage adds, e.g. spike=StreamingUser or step-2=VisionUser,TextUser;step-3=...",
        ("ramp", "step", "spike", "soak", "arrival"),
    ),
)
OPTION_DESTS = frozenset(spec.dest for spec in OPTIONS) | {"shape"}


def add_shape_arguments(parser: Any) -> None:
    """Register --shape and every shape parameter; call from an init_command_line_parser listener.

    Plain add_argument with include_in_web_ui (argument groups never reach the web UI). --slo is
    not registered here: metrics/ owns it and the capacity shape reads it.
    """
    parser.add_argument(
        "--shape",
        default=NO_SHAPE,
        choices=[NO_SHAPE, *SHAPE_NAMES],
        env_var="LOCUST_SHAPE",
        include_in_web_ui=True,
        help="load shape; 'none' keeps Locust's own -u/-r/-t",
    )
    for spec in OPTIONS:
        parser.add_argument(
            spec.flag,
            default=spec.default,
            type=str,
            env_var=f"LOCUST_{spec.dest.upper()}",
            include_in_web_ui=True,
            help=spec.help,
        )


class OptionReader:
    """Reads one shape's options off a parsed-options namespace, with errors naming the option."""

    def __init__(self, options: Any, shape: str) -> None:
        self.options = options
        self.shape = shape

    def raw(self, flag: str) -> str:
        value = getattr(self.options, flag.removeprefix("--").replace("-", "_"), None)
        return "" if value is None else str(value).strip()

    def _require(self, flag: str, example: str) -> str:
        raw = self.raw(flag)
        if not raw:
            raise ShapeOptionError(f"{flag} is required for --shape {self.shape} (e.g. {flag} {example})")
        return raw

    def count(self, flag: str, minimum: int = 1, example: str = "10") -> int:
        raw = self._require(flag, example)
        try:
            value = int(raw)
        except ValueError:
            raise ShapeOptionError(f"{flag}: {raw!r} is not a whole number (e.g. {flag} {example})") from None
        if value < minimum:
            raise ShapeOptionError(f"{flag}: must be at least {minimum}, got {value}")
        return value

    def rate(self, flag: str, allow_zero: bool = False, example: str = "5") -> float:
        raw = self._require(flag, example)
        try:
            value = float(raw.removesuffix("/s"))
        except ValueError:
            raise ShapeOptionError(
                f"{flag}: {raw!r} is not a number per second (e.g. {flag} {example})"
            ) from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise ShapeOptionError(f"{flag}: must be {'0 or more' if allow_zero else 'above 0'}, got {raw!r}")
        return value

    def duration(self, flag: str, positive: bool = True) -> float:
        seconds = parse_duration(self._require(flag, "30s"), flag)
        if positive and seconds <= 0:
            raise ShapeOptionError(f"{flag}: must be longer than 0 ({DURATION_EXAMPLES})")
        return seconds

    def run_time(self, required: bool) -> float | None:
        """Locust's -t/--run-time: seconds (Locust already parsed it) or a string from elsewhere."""
        value = getattr(self.options, "run_time", None)
        if value in (None, "", 0):
            if required:
                raise ShapeOptionError(f"--run-time (-t) is required for --shape {self.shape} (e.g. -t 10m)")
            return None
        seconds = parse_duration(value, "--run-time")
        if seconds <= 0:
            raise ShapeOptionError("--run-time: must be longer than 0")
        return seconds


def parse_stage_classes(
    text: str, shape: str, stage_names: tuple[str, ...], known_classes: dict[str, Any] | None
) -> dict[str, tuple[str, ...]]:
    """`stage=ClassA,ClassB;stage2=ClassC` -> {stage: (class names)}, checked against the shape's
    stage names and, when given, the user classes Locust loaded."""
    flag = "--stage-classes"
    if not text.strip():
        return {}
    if shape == "capacity":
        raise ShapeOptionError(f"{flag} is not supported with --shape capacity (its stages are rate steps)")
    mapping: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        stage, sep, classes_text = part.partition("=")
        stage = stage.strip()
        names = tuple(n.strip() for n in classes_text.replace("+", ",").split(",") if n.strip())
        if not sep or not stage or not names:
            raise ShapeOptionError(f"{flag}: {part.strip()!r} should read STAGE=UserClass[,UserClass...]")
        if stage not in stage_names:
            raise ShapeOptionError(
                f"{flag}: --shape {shape} has no stage {stage!r} (stages: {', '.join(stage_names)})"
            )
        if known_classes:
            unknown = [n for n in names if n not in known_classes]
            if unknown:
                raise ShapeOptionError(
                    f"{flag}: unknown user class {unknown[0]!r} (known: {', '.join(sorted(known_classes))})"
                )
        mapping[stage] = names
    return mapping


def stage_names_for(shape: str, steps: int = 0) -> tuple[str, ...]:
    return step_stage_names(steps) if shape == "step" else STAGE_NAMES.get(shape, ())
