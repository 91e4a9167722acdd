"""The one error type for a bad option, whichever room checks it.

Every option check (Gemini settings, scenario levers, shapes, --slo, budget, pricing) raises
`OptionError` with one line that names the option and says how to fix it. The command line prints
that line and exits 2; the web UI's start form shows it and starts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """A missing or malformed option; the message is one line, names the option and how to fix it."""


@dataclass(frozen=True)
class OptionSpec:
    """One plug-in option (a shape's, a scenario's): registered as a string ("" = not given) and
    parsed by the code that reads it, so the command line, config files, LOCUST_* variables and
    the web UI's form (which keeps strings) all meet the same checks."""

    flag: str
    default: str
    help: str
    web_ui: bool = True

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, parser: Any) -> None:
        """Register on Locust's parser (plain add_argument: argument groups never reach the web UI)."""
        parser.add_argument(
            self.flag,
            default=self.default,
            type=str,
            env_var=f"LOCUST_{self.dest.upper()}",
            include_in_web_ui=self.web_ui,
            help=self.help,
        )

    def raw(self, options: Any) -> str:
        """The value as given, trimmed; "" when absent."""
        value = getattr(options, self.dest, None) if options is not None else None
        return "" if value is None else str(value).strip()
