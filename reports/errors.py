"""The one error a report's input can raise (a module of its own: every reader imports it)."""

from __future__ import annotations


class ReportInputError(Exception):
    """Bad input for a report; str(error) is one line saying what is wrong and how to fix it."""
