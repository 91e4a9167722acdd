"""Locust's web UI lists its extra options once per process instead of once per page.

Locust's `argument_parser.ui_extra_args_dict()` rebuilds the parser and, for each option, a dict of
every web-UI option: quadratic in their number. With the suite's options it cost about 0.25 s per
call on this machine, and the web UI calls it twice before it first answers (profiled with
cProfile: most of the gap to bare Locust). Its result depends only on the parser and the command
line, both fixed once Locust has started, so the first result serves every later call.
"""

from __future__ import annotations

import copy
from typing import Any

from locust import argument_parser

_original = argument_parser.ui_extra_args_dict


def install() -> None:
    """Replace the function web.py calls with a per-process memo of it (idempotent)."""
    if getattr(argument_parser.ui_extra_args_dict, "memoized", False):
        return
    cache: dict[tuple[str, ...] | None, dict[str, dict[str, Any]]] = {}

    def ui_extra_args_dict(args: Any = None) -> dict[str, dict[str, Any]]:
        key = None if args is None else tuple(args)
        if key not in cache:
            cache[key] = _original(args)
        return copy.deepcopy(cache[key])  # callers may change what they get

    ui_extra_args_dict.memoized = True  # type: ignore[attr-defined]
    argument_parser.ui_extra_args_dict = ui_extra_args_dict
