"""Helpers for the shapes tests: parsed options built the way Locust builds them.

Waiting helpers (ScriptedTicks in tests/shapes/waiting.py, wait_until in tests/waiting.py) are
imported by full name: pytest loads conftest.py files itself and they are not meant to be imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest
from locust.argument_parser import default_args_dict

from shapes.registry import all_shape_options


def make_options(**values: Any) -> argparse.Namespace:
    """Locust's defaults, the shape options' defaults, then `values` (keys are dests: peak_users)."""
    options = argparse.Namespace(**default_args_dict())
    options.shape = "none"
    for spec in all_shape_options():
        setattr(options, spec.dest, spec.default)
    options.slo = None
    options.headless = True
    for key, value in values.items():
        setattr(options, key, value)
    return options


@pytest.fixture
def options_factory() -> Callable[..., argparse.Namespace]:
    return make_options
