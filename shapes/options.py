"""Shape options: their declaration (OptionSpec) and reading them back, validated.

Every value is registered as a string (default "" = not given) and parsed here, so the command
line, config files, LOCUST_* variables and the web UI form (which keeps strings for string
defaults) all go through the same checks and the same one-line errors naming the option.
"""

from __future__ import annotations

import math
from typing import Any

from core.options import OptionError
from shapes.durations import EXAMPLES as DURATION_EXAMPLES
from shapes.durations import parse_duration


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
            raise OptionError(f"{flag} is required for --shape {self.shape} (e.g. {flag} {example})")
        return raw

    def count(self, flag: str, minimum: int = 1, example: str = "10") -> int:
        raw = self._require(flag, example)
        try:
            value = int(raw)
        except ValueError:
            raise OptionError(f"{flag}: {raw!r} is not a whole number (e.g. {flag} {example})") from None
        if value < minimum:
            raise OptionError(f"{flag}: must be at least {minimum}, got {value}")
        return value

    def rate(self, flag: str, allow_zero: bool = False, example: str = "5") -> float:
        raw = self._require(flag, example)
        try:
            value = float(raw.removesuffix("/s"))
        except ValueError:
            raise OptionError(f"{flag}: {raw!r} is not a number per second (e.g. {flag} {example})") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise OptionError(f"{flag}: must be {'0 or more' if allow_zero else 'above 0'}, got {raw!r}")
        return value

    def duration(self, flag: str, positive: bool = True) -> float:
        seconds = parse_duration(self._require(flag, "30s"), flag)
        if positive and seconds <= 0:
            raise OptionError(f"{flag}: must be longer than 0 ({DURATION_EXAMPLES})")
        return seconds

    def run_time(self, required: bool) -> float | None:
        """Locust's -t/--run-time: seconds (Locust already parsed it) or a string from elsewhere."""
        value = getattr(self.options, "run_time", None)
        if value in (None, "", 0):
            if required:
                raise OptionError(f"--run-time (-t) is required for --shape {self.shape} (e.g. -t 10m)")
            return None
        seconds = parse_duration(value, "--run-time")
        if seconds <= 0:
            raise OptionError("--run-time: must be longer than 0")
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
        raise OptionError(f"{flag} is not supported with --shape capacity (its stages are rate steps)")
    mapping: dict[str, tuple[str, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        stage, sep, classes_text = part.partition("=")
        stage = stage.strip()
        names = tuple(n.strip() for n in classes_text.replace("+", ",").split(",") if n.strip())
        if not sep or not stage or not names:
            raise OptionError(f"{flag}: {part.strip()!r} should read STAGE=UserClass[,UserClass...]")
        if stage not in stage_names:
            raise OptionError(
                f"{flag}: --shape {shape} has no stage {stage!r} (stages: {', '.join(stage_names)})"
            )
        if known_classes:
            unknown = [n for n in names if n not in known_classes]
            if unknown:
                raise OptionError(
                    f"{flag}: unknown user class {unknown[0]!r} (known: {', '.join(sorted(known_classes))})"
                )
        mapping[stage] = names
    return mapping
