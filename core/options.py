"""The one error type for a bad option, whichever room checks it.

Every option check (Gemini settings, scenario levers, shapes, --slo, budget, pricing) raises
`OptionError` with one line that names the option and says how to fix it. The command line prints
that line and exits 2; the web UI's start form shows it and starts nothing.
"""

from __future__ import annotations


class OptionError(ValueError):
    """A missing or malformed option; the message is one line, names the option and how to fix it."""
