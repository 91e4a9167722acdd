"""The one error type of the shapes package: a bad or missing option, worded for the person typing it."""

from __future__ import annotations


class ShapeOptionError(ValueError):
    """A shape or SLO option is missing or malformed. The message is one line and names the option."""
