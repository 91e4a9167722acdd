"""Durations written the way Locust writes them: 30s, 2m, 1h, 1h30m, or a bare number of seconds.

Locust's own parse_timespan takes whole numbers only; fractions (1.5s, 500ms) are accepted here too
because short stages make fast tests and fine-grained spikes.
"""

from __future__ import annotations

import re

from core.options import OptionError

_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Units in descending order, each at most once: 1h30m, 2m10s, 1s500ms.
_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?$"
)
EXAMPLES = "e.g. 30s, 2m, 1h, 1h30m"


def parse_duration(text: str | float | int, option: str) -> float:
    """Seconds in `text`; raises OptionError naming `option` when it is not a duration."""
    if isinstance(text, bool):
        raise OptionError(f"{option}: expected a duration ({EXAMPLES}), got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        cleaned = str(text).strip().lower().replace(" ", "")
        if not cleaned:
            raise OptionError(f"{option}: missing duration ({EXAMPLES})")
        if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
            seconds = float(cleaned)
        else:
            match = _DURATION.fullmatch(cleaned)
            if not match or not any(match.groupdict().values()):
                raise OptionError(f"{option}: {text!r} is not a duration ({EXAMPLES})")
            seconds = sum(float(v) * _UNIT_SECONDS[unit] for unit, v in match.groupdict().items() if v)
    if seconds < 0 or seconds != seconds:  # NaN check without importing math
        raise OptionError(f"{option}: duration must be zero or more, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form for logs and help: 90 -> '1m30s', 0.5 -> '0.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
